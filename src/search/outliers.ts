import { fail } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import type { Pixels } from '../../data/images.js';
import type { RawVector } from '../indexer/collection.js';
import { cutExcerpts, excerptVectors, excerptWords, MIN_EXCERPTS, type NoveltyReference, type SortedScores } from './excerpts.js';
import { codeDistance, NEIGHBOR_RANK, neighborTable, rawById, rawDistance, TABLE_K } from './neighbors.js';

/**
 * How unusual an item is, from the collection alone (labels are never read):
 * - `reconstruction`: the model's reconstruction error, stored when the item was added;
 * - `neighbors`: distance in code space to the item's NEIGHBOR_RANK-th nearest other item (sparse surroundings);
 * - `raw`: the same in the baseline's space (pixels, TF-IDF), among the item's TABLE_K code neighbours re-ranked;
 * - `combined`: the mean of the three as percentiles among the collection's items. One-class Fashion-MNIST, all ten
 *   classes (docs/benchmarks.md): mean AUROC 0.931, against 0.929 for the mean of the `reconstruction` and `neighbors`
 *   percentiles (the default before that ten-class run) and 0.925 for the best single score (`raw`).
 */
export const OUTLIER_SCORES = ['combined', 'reconstruction', 'neighbors', 'raw'] as const;
export type OutlierScore = (typeof OUTLIER_SCORES)[number];

/** See docs/benchmarks.md (bench:outliers-oneclass) for how the scores compare; `combined` ranks best on average. */
export const DEFAULT_SCORE: OutlierScore = 'combined';

type PartScore = Exclude<OutlierScore, 'combined'>;

/** Every item's scores, in id order, with each score sorted for percentiles and each part's percentile per item. */
export interface ItemScores {
  ids: Int32Array;
  values: Record<OutlierScore, Float32Array>;
  sorted: SortedScores;
  /** each part's percentile among the collection's items, the inputs of `combined` */
  percentiles: Record<PartScore, Float32Array>;
}

/** Share of the finite values of a sorted array below `v` (NaN sorts last in a Float32Array). */
export function percentileOf(sorted: Float32Array, v: number): number {
  let n = sorted.length;
  while (n > 0 && Number.isNaN(sorted[n - 1]!)) n--;
  if (n === 0 || Number.isNaN(v)) return Number.NaN;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo / n;
}

/** The combined score from the parts' percentiles (those that have one: an unscored item has no reconstruction error). */
export function combine(...p: number[]): number {
  const known = p.filter((v) => !Number.isNaN(v));
  return known.length === 0 ? Number.NaN : known.reduce((a, b) => a + b, 0) / known.length;
}

/** Each part's percentile on a reference scale (`sorted`: the collection's items, or excerpts) and the `combined` score made from them. */
function combinedOf(sorted: Record<PartScore, Float32Array>, v: Record<PartScore, Float32Array>): { percentiles: Record<PartScore, Float32Array>; combined: Float32Array } {
  const pct = (k: PartScore) => v[k].map((x) => percentileOf(sorted[k], x));
  const percentiles = { reconstruction: pct('reconstruction'), neighbors: pct('neighbors'), raw: pct('raw') };
  const combined = Float32Array.from({ length: v.raw.length }, (_, i) => combine(percentiles.reconstruction[i]!, percentiles.neighbors[i]!, percentiles.raw[i]!));
  return { percentiles, combined };
}

/** A set's scores as the scale of percentiles: each part sorted, and the combined score of each member on that scale. */
function scaleOf(v: Record<PartScore, Float32Array>): { sorted: SortedScores; percentiles: Record<PartScore, Float32Array>; combined: Float32Array } {
  const parts = { reconstruction: v.reconstruction.slice().sort(), neighbors: v.neighbors.slice().sort(), raw: v.raw.slice().sort() };
  const { percentiles, combined } = combinedOf(parts, v);
  return { sorted: { ...parts, combined: combined.slice().sort() }, percentiles, combined };
}

/** Raw distance from `q` to the NEIGHBOR_RANK-th nearest of some items (its code neighbours). */
function rawKth(q: RawVector, neighbors: ArrayLike<number>, raw: (id: number) => RawVector | undefined, dist: (a: RawVector, b: RawVector) => number): number {
  const d: number[] = [];
  for (let t = 0; t < neighbors.length; t++) {
    const v = neighbors[t]! >= 0 ? raw(neighbors[t]!) : undefined;
    if (v) d.push(dist(q, v));
  }
  d.sort((a, b) => a - b);
  return d[Math.min(NEIGHBOR_RANK, d.length) - 1] ?? Number.NaN;
}

const SCORES = 'outlier-scores';

/** The scores of every item, computed once per generation. */
export function itemScores(c: Collection): ItemScores {
  return c.derived(SCORES, () => {
    const table = neighborTable(c);
    const recon = c.reconErrors();
    const n = table.ids.length;
    if (recon.ids.length !== n) throw fail('INTERNAL', 'reconstruction errors and codes disagree on the items');
    const reconstruction = Float32Array.from(recon.data);
    const neighbors = new Float32Array(n);
    for (let i = 0; i < n; i++) neighbors[i] = table.distances[i * TABLE_K + Math.min(NEIGHBOR_RANK, n - 1) - 1] ?? Number.NaN;
    const rawOf = rawById(c);
    const dist = rawDistance(c);
    const raw = Float32Array.from({ length: n }, (_, i) => rawKth(rawOf(table.ids[i]!)!, table.neighbors.subarray(i * TABLE_K, (i + 1) * TABLE_K), rawOf, dist));
    const { sorted, percentiles, combined } = scaleOf({ reconstruction, neighbors, raw });
    return { ids: table.ids, values: { reconstruction, neighbors, raw, combined }, sorted, percentiles };
  });
}

export interface ScoredItem {
  rank: number;
  key: string;
  label: string | null;
  /** the value of the score asked for (higher: more unusual) */
  score: number;
  /** share of the collection's items with a lower score */
  percentile: number;
  reconstruction: number | null;
  neighbors: number | null;
  raw: number | null;
}

export interface OutlierList {
  collection: string;
  score: OutlierScore;
  /** items ranked (those with no value of the score are left out) */
  count: number;
  offset: number;
  generation: number;
  items: ScoredItem[];
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The most unusual items of a collection by a score, worst first (`top` from `offset`). */
export function outliers(c: Collection, o: { score?: OutlierScore; top?: number; offset?: number } = {}): OutlierList {
  const score = o.score ?? DEFAULT_SCORE;
  const top = o.top ?? 20;
  const offset = o.offset ?? 0;
  return c.consistent(() => {
    const s = itemScores(c);
    const v = s.values[score];
    const order = Array.from(v.keys()).filter((i) => !Number.isNaN(v[i]!));
    order.sort((a, b) => v[b]! - v[a]! || s.ids[a]! - s.ids[b]!);
    const items = order.slice(offset, offset + top).flatMap((i, r) => {
      const row = c.rowOf(s.ids[i]!);
      if (!row) return [];
      return [{ rank: offset + r + 1, key: row.key, label: row.label, score: v[i]!, percentile: percentileOf(s.sorted[score], v[i]!), reconstruction: finite(s.values.reconstruction[i]!), neighbors: finite(s.values.neighbors[i]!), raw: finite(s.values.raw[i]!) }];
    });
    return { collection: c.name, score, count: order.length, offset, generation: c.stamp.generation, items };
  });
}

/** How unusual a query is for a collection: each score's value and its percentile among the collection's items. */
export interface Novelty {
  score: OutlierScore;
  value: number | null;
  percentile: number | null;
  reconstruction: { value: number | null; percentile: number | null };
  neighbors: { value: number | null; percentile: number | null };
  raw: { value: number | null; percentile: number | null };
  /** what the percentiles are among: the collection's items, or excerpts of its texts as long as a short text query */
  reference: NoveltyReference;
}

/**
 * The part scores of n queries (not items: their neighbours are all items), given their reconstruction errors.
 * `exclude[i]`, when given, is an item query i must not count among its neighbours (the item an excerpt was cut
 * from); -1 for none.
 */
function partScores(c: Collection, reconstruction: Float32Array, raws: readonly RawVector[], codes: Float32Array, exclude?: Int32Array): Record<PartScore, Float32Array> {
  const n = raws.length;
  const cd = c.manifest.codeDim;
  const toCode = codeDistance(c);
  const rawOf = rawById(c);
  const dist = rawDistance(c);
  const ef = Math.max(c.manifest.hnsw.ef, 2 * TABLE_K);
  const neighbors = new Float32Array(n);
  const raw = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const skip = exclude?.[i] ?? -1;
    const hits = c.search(codes.subarray(i * cd, (i + 1) * cd), TABLE_K + (skip >= 0 ? 1 : 0), ef).filter((h) => h.id !== skip).slice(0, TABLE_K);
    const kth = hits[Math.min(NEIGHBOR_RANK, hits.length) - 1];
    neighbors[i] = kth ? toCode(kth.distance) : Number.NaN;
    raw[i] = rawKth(raws[i]!, hits.map((h) => h.id), rawOf, dist);
  }
  return { reconstruction, neighbors, raw };
}

/**
 * Each score of n queries, with percentiles on a scale: by default the collection's items, or another reference
 * set's sorted scores (excerpts as long as a short text query).
 */
export function noveltyScores(c: Collection, input: Pixels, raws: readonly RawVector[], codes: Float32Array, scale: SortedScores = itemScores(c).sorted): { values: Record<OutlierScore, Float32Array>; percentiles: Record<OutlierScore, Float32Array> } {
  const values = partScores(c, c.model.reconstructionErrors(input, raws.length), raws, codes);
  const { percentiles, combined } = combinedOf(scale, values);
  return { values: { ...values, combined }, percentiles: { ...percentiles, combined: combined.map((x) => percentileOf(scale.combined, x)) } };
}

/**
 * The scale of a short text query's percentiles: the scores of excerpts of `words` words cut from the collection's
 * texts, each scored like a query with the item it was cut from left out. Computed once per generation and length.
 */
function excerptScale(c: Collection, ids: Int32Array, words: number): { sorted: SortedScores; count: number } {
  return c.derived(`novelty:excerpts:${words}`, () => {
    const e = excerptVectors(c, cutExcerpts(c, ids, words));
    return { sorted: scaleOf(partScores(c, e.errors, e.raws, e.codes, e.from)).sorted, count: e.from.length };
  });
}

/**
 * Collections up to this many items score their items for a query's novelty at once (about one graph search per
 * item, once per generation); larger ones report novelty once their scores exist (after an outliers request on the
 * same generation), so that a search after a write never waits for the whole collection.
 */
export const NOVELTY_INLINE_ITEMS = 20_000;

/** Whether a query's novelty can be answered now without scoring a large collection first. */
export function noveltyReady(c: Collection): boolean {
  return c.count <= NOVELTY_INLINE_ITEMS || c.hasCurrent(SCORES);
}

/**
 * How unusual a query (its model input, raw vector and code) is for the collection, on one state of it; null when
 * the collection is too large to score its items for it (see noveltyReady) unless `compute` asks for that.
 */
export function queryNovelty(c: Collection, input: Pixels, raw: RawVector, code: Float32Array, o: { compute?: boolean; text?: string } = {}): Novelty | null {
  return c.consistent(() => (o.compute || noveltyReady(c) ? novelty(c, input, raw, code, o.text) : null));
}

/**
 * The novelty of one query given by its model input, raw vector and code; a text query (`text`) with fewer words than the
 * median item is placed among excerpts of the collection's texts as long as it (see excerpts.ts), not among whole items
 * (unless fewer than MIN_EXCERPTS excerpts hold words of the model's vocabulary).
 */
export function novelty(c: Collection, input: Pixels, raw: RawVector, code: Float32Array, text?: string): Novelty {
  const items = itemScores(c);
  const words = text === undefined ? undefined : excerptWords(c, items.ids, text);
  const cut = words === undefined ? undefined : excerptScale(c, items.ids, words);
  const excerpts = cut && cut.count >= MIN_EXCERPTS ? cut : undefined;
  const { values, percentiles } = noveltyScores(c, input, [raw], code, excerpts?.sorted ?? items.sorted);
  const pair = (k: OutlierScore) => ({ value: finite(values[k][0]!), percentile: finite(percentiles[k][0]!) });
  const reference: NoveltyReference = excerpts && words !== undefined ? { of: 'excerpts', count: excerpts.count, words } : { of: 'items', count: items.ids.length };
  return { score: DEFAULT_SCORE, ...pair(DEFAULT_SCORE), reconstruction: pair('reconstruction'), neighbors: pair('neighbors'), raw: pair('raw'), reference };
}
