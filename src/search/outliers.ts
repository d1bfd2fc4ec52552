import { fail } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import type { Pixels } from '../../data/images.js';
import { codeDistance, NEIGHBOR_RANK, neighborTable, TABLE_K } from './neighbors.js';

/**
 * How unusual an item is, from the collection alone (labels are never read):
 * - `reconstruction`: the model's reconstruction error, stored when the item was added;
 * - `neighbors`: distance in code space to the item's NEIGHBOR_RANK-th nearest other item (sparse surroundings);
 * - `combined`: the mean of the two as percentiles among the collection's items.
 */
export const OUTLIER_SCORES = ['combined', 'reconstruction', 'neighbors'] as const;
export type OutlierScore = (typeof OUTLIER_SCORES)[number];

/** See docs/benchmarks.md (bench:outliers) for how the three compare; `combined` ranks best on average. */
export const DEFAULT_SCORE: OutlierScore = 'combined';

/** Every item's three scores, in id order, with each score sorted for percentiles. */
export interface ItemScores {
  ids: Int32Array;
  values: Record<OutlierScore, Float32Array>;
  sorted: Record<OutlierScore, Float32Array>;
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

/** The combined score of one item from its two percentiles (the neighbour one alone when it has no reconstruction error). */
function combine(pRecon: number, pNeighbors: number): number {
  return Number.isNaN(pRecon) ? pNeighbors : (pRecon + pNeighbors) / 2;
}

/** The three scores of every item, computed once per generation. */
export function itemScores(c: Collection): ItemScores {
  return c.derived('outlier-scores', () => {
    const table = neighborTable(c);
    const recon = c.reconErrors();
    const n = table.ids.length;
    if (recon.ids.length !== n) throw fail('INTERNAL', 'reconstruction errors and codes disagree on the items');
    const reconstruction = Float32Array.from(recon.data);
    const neighbors = new Float32Array(n);
    for (let i = 0; i < n; i++) neighbors[i] = table.distances[i * TABLE_K + Math.min(NEIGHBOR_RANK, n - 1) - 1] ?? Number.NaN;
    const sortedRecon = reconstruction.slice().sort();
    const sortedNeighbors = neighbors.slice().sort();
    const combined = new Float32Array(n);
    for (let i = 0; i < n; i++) combined[i] = combine(percentileOf(sortedRecon, reconstruction[i]!), percentileOf(sortedNeighbors, neighbors[i]!));
    return {
      ids: table.ids,
      values: { reconstruction, neighbors, combined },
      sorted: { reconstruction: sortedRecon, neighbors: sortedNeighbors, combined: combined.slice().sort() },
    };
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
      return [{ rank: offset + r + 1, key: row.key, label: row.label, score: v[i]!, percentile: percentileOf(s.sorted[score], v[i]!), reconstruction: finite(s.values.reconstruction[i]!), neighbors: finite(s.values.neighbors[i]!) }];
    });
    return { collection: c.name, score, count: order.length, offset, generation: c.generation, items };
  });
}

/** How unusual a query is for a collection: each score's value and its percentile among the collection's items. */
export interface Novelty {
  score: OutlierScore;
  value: number | null;
  percentile: number | null;
  reconstruction: { value: number | null; percentile: number | null };
  neighbors: { value: number | null; percentile: number | null };
}

/** Each score of n queries (not items: their neighbours are all items), with percentiles among the collection's items. */
export function noveltyScores(c: Collection, input: Pixels, codes: Float32Array, n: number): { values: Record<OutlierScore, Float32Array>; percentiles: Record<OutlierScore, Float32Array> } {
  const s = itemScores(c);
  const reconstruction = c.model.reconstructionErrors(input, n);
  const cd = c.manifest.codeDim;
  const dist = codeDistance(c);
  const ef = Math.max(c.manifest.hnsw.ef, 2 * NEIGHBOR_RANK);
  const neighbors = Float32Array.from({ length: n }, (_, i) => {
    const hits = c.search(codes.subarray(i * cd, (i + 1) * cd), NEIGHBOR_RANK, ef);
    return hits.length === 0 ? Number.NaN : dist(hits[hits.length - 1]!.distance);
  });
  const pRecon = reconstruction.map((v) => percentileOf(s.sorted.reconstruction, v));
  const pNeighbors = neighbors.map((v) => percentileOf(s.sorted.neighbors, v));
  const combined = pRecon.map((p, i) => combine(p, pNeighbors[i]!));
  const values = { reconstruction, neighbors, combined };
  const pct = (k: OutlierScore) => values[k].map((v) => percentileOf(s.sorted[k], v));
  return { values, percentiles: { reconstruction: pRecon, neighbors: pNeighbors, combined: pct('combined') } };
}

/** The novelty of one query given by its model input and code. */
export function novelty(c: Collection, input: Pixels, code: Float32Array): Novelty {
  const { values, percentiles } = noveltyScores(c, input, code, 1);
  const pair = (k: OutlierScore) => ({ value: finite(values[k][0]!), percentile: finite(percentiles[k][0]!) });
  return { score: DEFAULT_SCORE, ...pair(DEFAULT_SCORE), reconstruction: pair('reconstruction'), neighbors: pair('neighbors') };
}
