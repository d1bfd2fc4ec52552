import path from 'node:path';
import { decodeImage, MAX_UPLOAD_PIXELS, type DecodedImage } from '../../data/decode.js';
import { toBytes, toFloats, type Pixels } from '../../data/images.js';
import { textVector } from '../encoder/text.js';
import { isSparse } from '../encoder/sparse.js';
import { fail, isLatentdexError, messageOf, type LatentdexError } from '../errors.js';
import { listCollections } from '../indexer/build.js';
import { validateName } from '../indexer/paths.js';
import { Collection, type RawVector } from '../indexer/collection.js';
import type { ItemRow } from '../indexer/catalogue.js';
import { exactScan, graphScan, hammingScan, rowSetOf, sortedIndex, sparseScan, type CodeAndRaw, type Ranked, type Retriever, type RowSet } from '../indexer/retrieval.js';
import { filterKey, normaliseFilter, type ItemFilter } from '../indexer/filter.js';
import { distancesTo } from '../indexer/exact.js';
import { batchKnn } from '../indexer/knn-batch.js';
import type { SparseVector } from '../encoder/sparse.js';
import { decodeCursor, encodeCursor, optionsFingerprint, pageFingerprint } from './cursor.js';
import { collectionTwoStage, rerankOptions, twoStageName } from './rerank.js';
import { readRanking, groupOf, type GroupField, type RankingPlan } from './ranking.js';
import { queryNovelty, type Novelty } from './outliers.js';

export interface Hit {
  rank: number;
  key: string;
  label: string | null;
  distance: number;
  /** the preview's URL (image collections) */
  thumbnail?: string;
  snippet?: string;
  /** the hit's group when the query groups hits (group_by) */
  group?: string | null;
}

/** What a hit list needs of a retriever: its name and one query's ranking. */
type Ranker<Q> = Pick<Retriever<Q, unknown>, 'name' | 'search'>;

/** What each column of one request reads of its ranking, and the items a filter lets through (ids, increasing). */
export interface Plan {
  codes: RankingPlan;
  baseline: RankingPlan;
  filter: ItemFilter | undefined;
  allowed: Int32Array | null;
  /** fingerprint of the options (optionsFingerprint), which with the query's makes a cursor's (pageFingerprint) */
  fingerprint: string;
  /** the fingerprint the request's cursor carries, checked against the query's when it is run */
  cursorFingerprint?: string;
}

export interface HitList {
  method: string;
  hits: Hit[];
  latencyMs: number;
  /** share of hits whose label equals the query's (when both are known) */
  precision: number | null;
  /** whether hits follow this page (within max_distance, when given) */
  more: boolean;
  /** two-stage search whose ranking ended with its full shortlist (not with the items or the filter): the shortlist's rows */
  shortlist?: number;
}

export interface SearchResponse {
  collection: string;
  k: number;
  /** hits skipped before this page */
  offset: number;
  /** the collection's generation the answer was computed on */
  generation: number;
  /** cursor of the next page (same query, `cursor=`), null when neither column has more hits */
  next: string | null;
  query: { key: string | null; label: string | null; snippet?: string };
  /** the filter applied, with how many items it lets through */
  filter?: ItemFilter & { matched: number };
  codes: HitList;
  baseline?: HitList;
  /** |codes ∩ baseline| / k */
  overlap?: number;
  /** how unusual a query from outside is (searches by image or text asked for it); null: not computed (see NoveltyMode) */
  novelty?: Novelty | null;
}

/**
 * Whether a search by image or text also says how unusual the query is: 'if-ready' when that costs no more than
 * the search (collections up to NOVELTY_INLINE_ITEMS, or whose item scores exist; otherwise null), 'compute' even
 * when the collection's items must be scored first (about one graph search per item).
 */
export type NoveltyMode = 'if-ready' | 'compute';

export interface SearchOptions {
  /** hits per page (with maxDistance: the most hits returned, default MAX_DEPTH) */
  k?: number;
  /** hits skipped (pages); offset + k ≤ MAX_DEPTH */
  offset?: number;
  /** continues from a previous answer's `next` (instead of offset) */
  cursor?: string;
  ef?: number;
  /** also the exact baseline; naming it ('pixel', 'tfidf') checks that it is this collection's */
  compare?: boolean | 'pixel' | 'tfidf';
  /** two-stage search: rows the codes shortlist for the exact re-ranking (0: codes alone; default per kind) */
  rerank?: number;
  /** weight of the code distance in the re-ranking (texts) */
  blend?: number;
  /** texts: the best re-ranked rows folded into the query for a second re-ranking (0: none; default per kind) */
  feedback?: number;
  /** only items matching it are searched, in both columns */
  filter?: ItemFilter;
  /** codes column: only hits at most this far (the distance hits report) */
  maxDistance?: number;
  /** baseline column: only hits at most this far (its own distance) */
  baselineMaxDistance?: number;
  /** at most `perGroup` hits per label, group (text source) or folder (key prefix up to the last '/') */
  groupBy?: GroupField;
  perGroup?: number;
  /** how a filtered code search runs: the planner's choice (default), the filtered graph, or an exact scan */
  filterPlan?: FilterPlan;
}

export type FilterPlan = 'auto' | 'graph' | 'scan';

/** A query of a batch: an item's key, a code, or a text (text collections). */
export type BatchQuery = { key: string } | { code: number[] } | { text: string };

/** Deepest a ranking is paged (offset + k), and most hits a max_distance query returns. */
export const MAX_DEPTH = 1000;
/** Distances below this are float rounding of 0 (see rank). */
const SAME_DISTANCE = 1e-6;

/** Most queries one batch may hold. */
export const MAX_BATCH = 256;
/** A baseline named in a request ('pixel', 'tfidf') must be the collection's own: INVALID_ARGUMENT otherwise. */
export function checkBaseline(c: { name: string; kind: 'image' | 'text' }, compare: SearchOptions['compare']): void {
  const baseline = c.kind === 'image' ? 'pixel' : 'tfidf';
  if (typeof compare === 'string' && compare !== baseline) {
    throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds ${c.kind === 'image' ? 'images' : 'texts'}: its exact baseline is ${baseline}, not ${compare}; use compare=${baseline} (or compare=true)`);
  }
}

/** Most queries of a batch with thresholds or grouping (each may read MAX_DEPTH rows or more). */
export const MAX_DEEP_BATCH = 16;
/** Largest pixel matrix (values) a batch's baseline copies to floats for one product; larger ones scan per query. */
const BATCH_PRODUCT_VALUES = 16 * 1024 * 1024;
/** Most candidates read to fill a page when group-by skips hits. */
const MAX_SCAN_DEPTH = 4096;
/**
 * A filter letting through at most this many code values (rows × code dimension) is answered by an exact scan of
 * those rows instead of the filtered graph: below it the scan is faster and exact (`npm run bench:api`).
 */
export const FILTER_SCAN_VALUES = 1 << 18;

export interface EngineOptions {
  dataDir: string;
  maxK?: number;
  quiet?: boolean;
  /** how long an HTTP write waits for another process's write before COLLECTION_BUSY (default 5 s) */
  lockTimeoutMs?: number;
  /** graph saves are batched: at most one per this many ms (default 1 s) */
  persistDelayMs?: number;
}

/** A collection that could not be opened, with why (serve lists it instead of refusing to start). */
export interface Unavailable {
  name: string;
  available: false;
  error: { code: string; message: string };
}

/** How long a collection that failed to open is reported as failed before the next attempt. */
const RETRY_OPEN_MS = 5000;

/** How long a replaced version stays open for requests that still use it. */
const RETIRE_MS = 60_000;

/** What a query supplies: the query item's code and, for the baseline, its raw vector. */
export interface PreparedQuery {
  code: Float32Array;
  /** pixel bytes (image collections) or sparse TF-IDF (texts); null for a query by code */
  raw: RawVector | null;
  /** catalogue rowid of a query that is an item of the collection (excluded from its own results) */
  id: number | null;
  key: string | null;
  label: string | null;
  snippet?: string;
}

/** A squared pixel L2 as hits report it: in [0, 1] pixel units whether the pixels are stored as bytes or floats. */
function pixelDistance(c: Collection): (squared: number) => number {
  const scale = c.manifest.rawType === 'u8' ? 255 : 1;
  return (d) => Math.sqrt(d) / scale;
}

/** The first 240 characters of a text, for hit lists. */
function snippetOf(text: string): string {
  return text.length > 240 ? `${text.slice(0, 240)}…` : text;
}

function now(): number {
  return performance.now();
}

/** The query engine: opens collections lazily, answers by key, image, code or text, with the exact baseline beside. */
export class SearchEngine {
  private readonly open = new Map<string, Promise<Collection>>();
  private readonly failed = new Map<string, { error: LatentdexError; at: number }>();
  /** versions replaced by another process, closed once no request uses them */
  private retired: Collection[] = [];
  readonly maxK: number;
  private readonly active = new Set<Promise<unknown>>();

  constructor(readonly o: EngineOptions) {
    this.maxK = o.maxK ?? 100;
  }

  /** A message as clients may see it: the data directory's absolute path replaced by DATA_DIR. */
  publicMessage(message: string): string {
    const abs = path.resolve(this.o.dataDir);
    return message.split(`${abs}${path.sep}`).join('DATA_DIR/').split(abs).join('DATA_DIR');
  }

  names(): string[] {
    return listCollections(this.o.dataDir);
  }

  /**
   * The collection, up to date: every write committed by any process is in its graph and caches before this
   * resolves; a collection replaced by another process's build is reopened.
   */
  async collection(name: string): Promise<Collection> {
    validateName(name);
    for (let attempt = 0; attempt < 3; attempt++) {
      const p = this.opened(name);
      const c = await p;
      let state: 'current' | 'replaced';
      try {
        state = c.sync();
      } catch (e) {
        // Its files went bad under it: drop it, so that the next request reopens (and reports) it.
        if (this.open.get(name) === p) {
          this.open.delete(name);
          this.retire(c);
        }
        throw e;
      }
      if (state === 'current') return c;
      // Only the request that finds it replaced first retires it; others already hold the new promise.
      if (this.open.get(name) === p) {
        this.open.delete(name);
        this.retire(c);
      }
    }
    throw fail('COLLECTION_UNAVAILABLE', `collection '${name}' keeps being replaced; retry in a moment`);
  }

  private opened(name: string): Promise<Collection> {
    const p = this.open.get(name);
    if (p) return p;
    const f = this.failed.get(name);
    if (f && Date.now() - f.at < RETRY_OPEN_MS) return Promise.reject(f.error);
    const q = Collection.open(this.o.dataDir, name, { quiet: this.o.quiet, lockTimeoutMs: this.o.lockTimeoutMs ?? 5000, persistDelayMs: this.o.persistDelayMs ?? 1000 });
    this.open.set(name, q);
    q.then(
      () => this.failed.delete(name),
      (e: unknown) => {
        if (this.open.get(name) === q) this.open.delete(name);
        // A missing collection is not remembered: it may be built any moment.
        const err = isLatentdexError(e) ? e : fail('CORRUPT_COLLECTION', `collection '${name}' cannot be opened: ${messageOf(e)}`, e);
        if (err.code !== 'COLLECTION_NOT_FOUND' && this.names().includes(name)) this.failed.set(name, { error: err, at: Date.now() });
      },
    );
    return q;
  }

  /**
   * A replaced version is closed once no request can still use it: when the engine is idle, and at the latest
   * after RETIRE_MS (longer than any request may take: uploads are cut off at 30 s).
   */
  private retire(c: Collection): void {
    this.retired.push(c);
    if (this.active.size <= 1) this.closeRetired();
    else setTimeout(() => this.closeRetired(c), RETIRE_MS).unref();
  }

  private closeRetired(only?: Collection): void {
    const closing = only ? this.retired.filter((c) => c === only) : this.retired;
    this.retired = only ? this.retired.filter((c) => c !== only) : [];
    for (const c of closing) c.close({ save: false });
  }

  /** Every collection of the data directory: open ones, and those that cannot be opened with the reason. */
  async status(): Promise<(Collection | Unavailable)[]> {
    const out: (Collection | Unavailable)[] = [];
    for (const n of this.names()) {
      try {
        out.push(await this.collection(n));
      } catch (e) {
        const err = isLatentdexError(e) ? e : fail('INTERNAL', messageOf(e));
        out.push({ name: n, available: false, error: { code: err.code, message: this.publicMessage(err.message) } });
      }
    }
    return out;
  }

  checkK(k: number | undefined): number {
    const kk = k ?? 10;
    if (!Number.isInteger(kk) || kk < 1 || kk > this.maxK) throw fail('K_OUT_OF_RANGE', `k must be an integer from 1 to ${this.maxK}, got ${k}`);
    return kk;
  }

  /** `{ thumbnail }`: the URL of an image item's colour preview (the original, scaled down); text items have none. */
  thumbnail(c: { name: string; kind: 'image' | 'text' }, key: string): { thumbnail?: string } {
    return c.kind === 'image' ? { thumbnail: `/api/collections/${encodeURIComponent(c.name)}/items/${encodeURIComponent(key)}/preview` } : {};
  }

  private hit(c: Collection, row: ItemRow, rank: number, distance: number, groupBy?: GroupField): Hit {
    const h: Hit = { rank, key: row.key, label: row.label, distance, ...this.thumbnail(c, row.key) };
    if (row.text !== null) h.snippet = snippetOf(row.text);
    if (groupBy) h.group = groupOf(row, groupBy);
    return h;
  }

  private precision(hits: Hit[], label: string | null): number | null {
    if (label === null || hits.length === 0) return null;
    return hits.filter((h) => h.label === label).length / hits.length;
  }

  /** Checks a request's options and turns them into what each column reads of its ranking. */
  plan(c: Collection, o: SearchOptions): Plan {
    if (o.ef !== undefined && (!Number.isInteger(o.ef) || o.ef < 1 || o.ef > 4096)) throw fail('INVALID_ARGUMENT', `ef must be an integer from 1 to 4096, got ${o.ef}`);
    const threshold = o.maxDistance !== undefined || o.baselineMaxDistance !== undefined;
    for (const [name, v] of [['max_distance', o.maxDistance], ['baseline_max_distance', o.baselineMaxDistance]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw fail('INVALID_ARGUMENT', `${name} must be a number ≥ 0, got ${v}`);
    }
    checkBaseline(c, o.compare);
    if (o.baselineMaxDistance !== undefined && !o.compare) throw fail('INVALID_ARGUMENT', 'baseline_max_distance bounds the baseline column: add compare');
    const kOf = (bounded: boolean) => {
      if (!bounded) return this.checkK(o.k);
      const k = o.k ?? MAX_DEPTH;
      if (!Number.isInteger(k) || k < 1 || k > MAX_DEPTH) throw fail('K_OUT_OF_RANGE', `with max_distance, k (the most hits returned) must be an integer from 1 to ${MAX_DEPTH}, got ${o.k}`);
      return k;
    };
    const k = kOf(o.maxDistance !== undefined);
    const kBase = kOf(o.baselineMaxDistance !== undefined);
    if (o.cursor !== undefined && o.offset !== undefined) throw fail('INVALID_ARGUMENT', 'give offset or cursor, not both');
    const filter = normaliseFilter(o.filter);
    const fingerprint = optionsFingerprint({
      k, kBase, filter: filter ? filterKey(filter) : null, compare: Boolean(o.compare), rerank: rerankOptions(c.kind, o, o.maxDistance !== undefined), ef: o.ef ?? c.manifest.hnsw.ef,
      maxDistance: o.maxDistance ?? null, baselineMaxDistance: o.baselineMaxDistance ?? null, groupBy: o.groupBy ?? null, perGroup: o.groupBy ? (o.perGroup ?? 1) : null,
    });
    let offset = o.offset ?? 0;
    let cursorFingerprint: string | undefined;
    if (o.cursor !== undefined) {
      const cur = decodeCursor(o.cursor);
      if (cur.collection !== c.name) throw fail('INVALID_ARGUMENT', `this cursor pages collection '${cur.collection}', not '${c.name}'; send it with the request it came from`);
      const now = c.stamp;
      if (cur.version !== now.version) throw fail('STALE_CURSOR', `collection '${c.name}' was rebuilt since this cursor was made (or, on a replica, this server has not copied the new build yet); start again from the first page`);
      if (cur.generation > now.generation) {
        throw fail('STALE_CURSOR', `this server has not caught up yet with the collection '${c.name}' this cursor was made of (generation ${cur.generation}, here ${now.generation}); retry in a moment, or start again from the first page`);
      }
      if (cur.generation !== now.generation) {
        throw fail('STALE_CURSOR', `collection '${c.name}' changed since this cursor was made (generation ${cur.generation}, now ${now.generation}); start again from the first page`);
      }
      offset = cur.offset;
      cursorFingerprint = cur.options;
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + Math.max(k, kBase) > MAX_DEPTH) throw fail('INVALID_ARGUMENT', `offset must be an integer ≥ 0 with offset + k ≤ ${MAX_DEPTH}, got offset ${offset} and k ${Math.max(k, kBase)}`);
    const perGroup = o.perGroup ?? 1;
    if (o.perGroup !== undefined && !o.groupBy) throw fail('INVALID_ARGUMENT', 'per_group needs group_by (label, group or folder)');
    if (!Number.isInteger(perGroup) || perGroup < 1 || perGroup > MAX_DEPTH) throw fail('INVALID_ARGUMENT', `per_group must be an integer from 1 to ${MAX_DEPTH}, got ${o.perGroup}`);
    if (o.groupBy && !['label', 'group', 'folder'].includes(o.groupBy)) throw fail('INVALID_ARGUMENT', `group_by must be label, group or folder, got '${o.groupBy}'`);
    const base = { offset, groupBy: o.groupBy, perGroup, maxDepth: o.groupBy ? MAX_SCAN_DEPTH : MAX_DEPTH + 2 };
    return {
      codes: { ...base, k, maxDistance: o.maxDistance },
      baseline: { ...base, k: kBase, maxDistance: o.baselineMaxDistance },
      filter,
      allowed: filter ? c.matching(filter) : null,
      fingerprint,
      ...(cursorFingerprint === undefined ? {} : { cursorFingerprint }),
    };
  }

  /**
   * The hits a retriever's ranking gives for a plan: the query item itself and rows another process removed since
   * this request's sync are skipped; `first` is a ranking already computed (a batch's).
   */
  private rank<Q>(c: Collection, r: Ranker<Q>, ids: Int32Array | null, query: Q, q: PreparedQuery, distance: (d: number) => number, p: RankingPlan, only: RowSet | undefined, first?: Ranked[]): HitList {
    const t0 = now();
    const reachable = only ? only.rows.length : c.count;
    const search = (depth: number) => (first && first.length >= depth ? first.slice(0, depth) : r.search(query, depth, only));
    // rows read once per request, however many times a deeper pass reads the ranking again
    const rows = new Map<number, ItemRow | undefined>();
    const rowAt = (index: number) => {
      const id = ids ? ids[index]! : index;
      if (id === q.id) return undefined;
      if (!rows.has(id)) rows.set(id, c.rowOf(id));
      return rows.get(id);
    };
    // Float rounding leaves a copy a hair away from its query (1 − 1.000000002, or 6e-9 after a blend): a distance within
    // SAME_DISTANCE of 0 is 0, so that copies show 0, never a negative distance, and max_distance=0 finds them.
    const exact = (d: number) => {
      const v = distance(d);
      return v < SAME_DISTANCE ? 0 : v;
    };
    const { page, more } = readRanking(search, reachable, rowAt, exact, p);
    const hits = page.map((h, i) => this.hit(c, h.row, p.offset + i + 1, h.distance, p.groupBy));
    return { method: r.name, hits, latencyMs: now() - t0, precision: this.precision(hits, q.label), more };
  }

  /**
   * Nearest items by code: HNSW (float codes) or the exact Hamming scan (binary codes); with a re-ranking (texts by
   * default), the codes shortlist and the exact baseline orders the shortlist — one Retriever either way. A filter
   * runs inside the graph search, or as an exact scan of the rows it lets through when they are few.
   */
  codeNeighbors(c: Collection, q: PreparedQuery, p: Plan, o: Pick<SearchOptions, 'ef' | 'rerank' | 'blend' | 'feedback' | 'filterPlan'> = {}): HitList {
    if (!q.raw && (o.rerank || o.blend !== undefined || o.feedback)) throw fail('INVALID_ARGUMENT', 'a query by code has no raw vector to re-rank by; leave out rerank, blend and feedback');
    const ro = rerankOptions(c.kind, q.raw ? o : { rerank: 0 }, p.codes.maxDistance !== undefined);
    const cd = c.manifest.codeDim;
    // a two-stage search asks the codes for one fixed shortlist whatever the page: the graph keeps its breadth
    const ef = ro.shortlist > 0 && q.raw ? o.ef : this.efFor(c, p, o.ef);
    let codes: Retriever;
    let ids: Int32Array | null;
    let only: RowSet | undefined;
    if (c.binaryBits) {
      const bits = c.binaryBits;
      const h = c.derived('retriever:hamming', () => {
        const m = c.codeMatrix();
        return { r: hammingScan(`hamming-${bits}`, m.data.slice(), cd, bits), ids: m.ids.slice() };
      });
      codes = h.r;
      ids = h.ids;
      if (p.allowed) only = rowSetOf(ids, p.allowed);
    } else if (ro.shortlist > 0 || p.allowed) {
      // Re-ranking and filters work on rows of the collection's matrices (id order): graph answers are mapped to rows.
      const m = c.codeMatrix();
      ids = m.ids;
      if (p.allowed) only = rowSetOf(ids, p.allowed);
      // a scan when the allowed rows are few, or when the page reaches deep into them
      const few = only && (only.rows.length * cd <= FILTER_SCAN_VALUES || only.rows.length <= 4 * (p.codes.offset + p.codes.k + 2));
      const scan = only && (o.filterPlan === 'scan' || (o.filterPlan !== 'graph' && few));
      // one scanner per generation: its SIMD copy of the codes is made once, not per request
      if (scan) codes = c.derived('retriever:codes-exact', () => (c.manifest.space === 'cosine' ? exactScan('codes exact (filtered)', c.unitCodeMatrix().data, cd, 'cosine', { unitRows: true }) : exactScan('codes exact (filtered)', m.data, cd, 'l2')));
      else codes = graphScan(only ? 'hnsw (filtered)' : 'hnsw', (v, kk, f) => c.search(v, kk, ef, f), sortedIndex(ids), 0);
    } else {
      codes = graphScan('hnsw', (v, kk) => c.search(v, kk, ef), null, 0);
      ids = null;
    }
    if (ro.shortlist > 0 && q.raw) {
      // One shortlist for every page of this k (pages are slices of the same re-ranked shortlist).
      const fixed = { ...ro, shortlist: Math.max(ro.shortlist, p.codes.k + 2) };
      const inner = collectionTwoStage(c, twoStageName(c.kind, c.binaryBits ? `hamming-${c.binaryBits}` : codes.name, fixed), codes, fixed);
      // whether the ranking was read past a full shortlist: then it ends there, not where the items or the filter end
      let cut = false;
      const two: Ranker<CodeAndRaw<RawVector>> = {
        name: inner.name,
        search: (qq, d, only2) => {
          const res = inner.search(qq, Math.min(d, fixed.shortlist), only2);
          cut = d > fixed.shortlist && res.length === fixed.shortlist;
          return res;
        },
      };
      const self = q.id === null || ids === null ? undefined : sortedIndex(ids).get(q.id);
      const list = this.rank(c, two, ids, { code: q.code, raw: q.raw, ...(self === undefined ? {} : { self }) }, q, c.kind === 'image' ? pixelDistance(c) : (d) => d, p.codes, only);
      return cut && !list.more && p.codes.maxDistance === undefined ? { ...list, shortlist: fixed.shortlist } : list;
    }
    return this.rank(c, codes, ids, q.code, q, (d) => (!c.binaryBits && c.manifest.space === 'l2' ? Math.sqrt(d) : d), p.codes, only);
  }

  /**
   * The HNSW breadth of a request: the one asked for (or the collection's) while the page lies within it, else one
   * breadth for every deeper page (MAX_DEPTH + 2), so that deep pages are slices of one ranking too.
   */
  private efFor(c: Collection, p: Plan, ef: number | undefined): number {
    const base = ef ?? c.manifest.hnsw.ef;
    return p.codes.offset + p.codes.k + 2 <= base && !p.codes.groupBy && p.codes.maxDistance === undefined ? base : Math.max(base, MAX_DEPTH + 2);
  }

  /** The exact baseline's retriever over a collection (with its rows' ids) and how its distances are reported. */
  private baseline(c: Collection, raw: RawVector): { r: Ranker<RawVector>; ids: Int32Array; distance: (d: number) => number; dense?: { data: Pixels; dim: number; asQuery: (v: RawVector) => Float32Array } } {
    if (isSparse(raw)) {
      const rows = c.sparseRows();
      const r = sparseScan('tfidf-exact', rows);
      return { r: { name: r.name, search: (q, k, only) => r.search(q as SparseVector, k, only) }, ids: rows.idsView(), distance: (x) => x };
    }
    const d = c.manifest.rawDim;
    const b = c.derived('retriever:baseline', () => {
      const m = c.rawMatrix();
      return { r: exactScan('pixel-exact', m.data, d, 'l2', { unitRows: true }), ids: m.ids.slice(), data: m.data };
    });
    const bytes = c.manifest.rawType === 'u8';
    const asQuery = (v: RawVector) => (bytes ? Float32Array.from(toBytes(v as Pixels)) : toFloats(v as Pixels));
    return {
      r: { name: b.r.name, search: (q, k, only) => b.r.search(asQuery(q), k, only) },
      ids: b.ids,
      distance: pixelDistance(c),
      dense: { data: b.data, dim: d, asQuery },
    };
  }

  /** Exact brute-force search over raw vectors: pixel-space L2 over the stored bytes (images) or TF-IDF cosine over the full vocabulary (texts). */
  baselineNeighbors(c: Collection, q: PreparedQuery, p: Plan, first?: Ranked[]): HitList {
    if (!q.raw) throw fail('INVALID_ARGUMENT', 'a query by code has no raw vector; the exact baseline needs a key, an image or a text');
    const b = this.baseline(c, q.raw);
    return this.rank(c, b.r, b.ids, q.raw, q, b.distance, p.baseline, p.allowed ? rowSetOf(b.ids, p.allowed) : undefined, first);
  }

  /** Runs a prepared query: codes, and the exact baseline when `compare` is set. */
  run(c: Collection, q: PreparedQuery, o: SearchOptions): SearchResponse {
    // One generation for the whole answer: the graph, the matrices the re-ranking reads and the rows of the hits.
    return c.consistent(() => this.runNow(c, q, o, this.plan(c, o)));
  }

  private runNow(c: Collection, q: PreparedQuery, o: SearchOptions, p: Plan, first?: Ranked[]): SearchResponse {
    const fingerprint = pageFingerprint(p.fingerprint, q);
    if (p.cursorFingerprint !== undefined && p.cursorFingerprint !== fingerprint) {
      throw fail('INVALID_ARGUMENT', 'this cursor belongs to another query or to other options; send the first request again unchanged (its query, k, filters, compare, rerank, blend, feedback, ef, max_distance, group_by) with cursor added');
    }
    const codes = this.codeNeighbors(c, q, p, o);
    const out: SearchResponse = {
      collection: c.name,
      k: p.codes.k,
      offset: p.codes.offset,
      generation: c.stamp.generation,
      next: null,
      query: { key: q.key, label: q.label, ...(q.snippet ? { snippet: q.snippet } : {}) },
      ...(p.filter ? { filter: { ...p.filter, matched: p.allowed!.length } } : {}),
      codes,
    };
    if (o.compare) {
      out.baseline = this.baselineNeighbors(c, q, p, first);
      const a = new Set(codes.hits.map((h) => h.key));
      out.overlap = out.baseline.hits.filter((h) => a.has(h.key)).length / Math.max(1, Math.min(p.codes.k, Math.max(codes.hits.length, out.baseline.hits.length)));
    }
    // a next page only where one may be asked for (offset + k ≤ MAX_DEPTH)
    const after = p.codes.offset + p.codes.k;
    if ((codes.more || out.baseline?.more) && after + p.codes.k <= MAX_DEPTH) out.next = encodeCursor({ collection: c.name, generation: c.stamp.generation, version: c.stamp.version, offset: after, options: fingerprint });
    return out;
  }

  /** The query an item of the collection makes (its code and raw vector; it is left out of its own answer). */
  private itemQuery(c: Collection, key: string): PreparedQuery {
    const row = c.item(key);
    return { code: c.codeOf(row.id), raw: c.rawOf(row.id), id: row.id, key: row.key, label: row.label, ...(row.text === null ? {} : { snippet: snippetOf(row.text) }) };
  }

  private codeQuery(c: Collection, code: number[]): PreparedQuery {
    if (code.length !== c.manifest.codeDim) throw fail('INVALID_DIM', `code has ${code.length} values; collection '${c.name}' takes ${c.manifest.codeDim}`);
    if (code.some((v) => !Number.isFinite(Math.fround(v)))) throw fail('INVALID_ARGUMENT', 'code values must be finite float32 numbers (|v| < 3.4e38)');
    if (c.manifest.space === 'cosine' && code.every((v) => v === 0)) throw fail('INVALID_ARGUMENT', `a code of zeros has no direction, and collection '${c.name}' compares codes by cosine; send a code with a non-zero value`);
    return { code: Float32Array.from(code), raw: null, id: null, key: null, label: null };
  }

  private textQuery(c: Collection, text: string): PreparedQuery & { raw: RawVector; input: Pixels } {
    if (c.kind !== 'text') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds images; search it with an image or a key`);
    const v = textQueryVectors(c, text);
    return { code: c.model.encode(v.input, 1), raw: v.raw, id: null, key: null, label: null, snippet: snippetOf(text), input: v.input };
  }

  /** The answer to a query from outside and, when asked, its novelty: both on one state of the collection. */
  private runWithNovelty(c: Collection, q: PreparedQuery & { raw: RawVector }, input: Pixels, o: SearchOptions, mode?: NoveltyMode, text?: string): SearchResponse {
    return c.consistent(() => {
      const answer = this.runNow(c, q, o, this.plan(c, o));
      return mode ? { ...answer, novelty: queryNovelty(c, input, q.raw, q.code, { compute: mode === 'compute', ...(text === undefined ? {} : { text }) }) } : answer;
    });
  }

  async byKey(name: string, key: string, o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    return c.consistent(() => this.runNow(c, this.itemQuery(c, key), o, this.plan(c, o)));
  }

  /** Searches by an image file's bytes; `from` names it in errors and bounds its size (default: an HTTP upload's). */
  async byImage(name: string, image: Buffer, o: SearchOptions, from?: ImageOrigin, novelty?: NoveltyMode): Promise<SearchResponse> {
    const c = await this.collection(name);
    return this.byPixels(c, (await decodeQueryImage(c, image, from)).pixels, o, novelty);
  }

  /** Searches by an image already decoded to the collection's input size (see decodeQueryImage). */
  byPixels(c: Collection, px: Uint8Array, o: SearchOptions, novelty?: NoveltyMode): SearchResponse {
    return this.runWithNovelty(c, { code: c.model.encode(px, 1), raw: px, id: null, key: null, label: null }, px, o, novelty);
  }

  async byCode(name: string, code: number[], o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    // a code has no raw vector, so there is no baseline column; a baseline named for the other kind is still wrong
    checkBaseline(c, o.compare);
    return this.run(c, this.codeQuery(c, code), { ...o, compare: false });
  }

  async byText(name: string, text: string, o: SearchOptions, novelty?: NoveltyMode): Promise<SearchResponse> {
    const c = await this.collection(name);
    const { input, ...q } = this.textQuery(c, text);
    return this.runWithNovelty(c, q, input, o, novelty, text);
  }

  /**
   * Many queries (keys, codes or texts) answered together on one state of the collection, each answer equal to the
   * one the query would get alone; the exact pixel baseline of a plain batch is one batched product.
   */
  async batch(name: string, queries: BatchQuery[], o: SearchOptions): Promise<SearchResponse[]> {
    if (queries.length < 1 || queries.length > MAX_BATCH) throw fail('INVALID_ARGUMENT', `a batch holds 1 to ${MAX_BATCH} queries, got ${queries.length}`);
    if (o.cursor !== undefined) throw fail('INVALID_ARGUMENT', 'a batch pages with offset, not cursor');
    // Deep answers (thresholds, grouping) cost up to MAX_DEPTH or more rows each: fewer of them per batch.
    const deep = o.maxDistance !== undefined || o.baselineMaxDistance !== undefined || o.groupBy !== undefined;
    if (deep && queries.length > MAX_DEEP_BATCH) throw fail('INVALID_ARGUMENT', `a batch with max_distance or group_by holds at most ${MAX_DEEP_BATCH} queries, got ${queries.length}; split it`);
    const c = await this.collection(name);
    return c.consistent(() => {
      const p = this.plan(c, o);
      const prepared: (PreparedQuery & { input?: Pixels })[] = queries.map((q, i) => {
        try {
          return 'key' in q ? this.itemQuery(c, q.key) : 'code' in q ? this.codeQuery(c, q.code) : this.textQuery(c, q.text);
        } catch (e) {
          if (isLatentdexError(e)) throw fail(e.code, `queries[${i}]: ${e.message}`, e);
          throw e;
        }
      });
      const firsts = o.compare ? this.batchBaseline(c, prepared, p) : undefined;
      // a batch pages by offset (its answers carry no cursor); a text gets the novelty it would get alone
      return prepared.map((q, i) => {
        const answer: SearchResponse = { ...this.runNow(c, q, q.raw ? o : { ...o, compare: false }, p, firsts?.[i]), next: null };
        const query = queries[i]!;
        if (!('text' in query) || !q.input || !q.raw) return answer;
        return { ...answer, novelty: queryNovelty(c, q.input, q.raw, q.code, { text: query.text }) };
      });
    });
  }

  /**
   * The exact pixel baseline of many queries by one batched product (a plain plan over a dense collection), with
   * distances; undefined where the per-query scan applies (filters, thresholds, grouping, texts).
   */
  private batchBaseline(c: Collection, qs: PreparedQuery[], p: Plan): (Ranked[] | undefined)[] | undefined {
    const dense = qs.filter((q) => q.raw && !isSparse(q.raw));
    if (dense.length < 8 || p.allowed || p.baseline.maxDistance !== undefined || p.baseline.groupBy || c.count === 0) return undefined;
    const b = this.baseline(c, dense[0]!.raw!);
    // The product needs a float copy of the matrix: only for collections where that copy stays small.
    if (!b.dense || b.dense.data.length > BATCH_PRODUCT_VALUES) return undefined;
    const { data, dim, asQuery } = b.dense;
    // float32 products can swap near-ties: take a margin, then order by the exact distance
    const depth = Math.min(c.count, p.baseline.offset + p.baseline.k + 10);
    const all = new Float32Array(dense.length * dim);
    const queries = dense.map((q) => asQuery(q.raw!));
    queries.forEach((q, i) => all.set(q, i * dim));
    const floats = data instanceof Uint8Array ? Float32Array.from(data) : data;
    const rows = batchKnn(floats, dim, all, depth, 'l2');
    const l2 = distancesTo(data, dim, 'l2');
    let j = 0;
    return qs.map((q) => {
      if (!q.raw || isSparse(q.raw)) return undefined;
      const r = rows[j]!;
      const d = l2(queries[j++]!, r);
      // the batched product ranks by a rearranged sum: order ties and near-ties by the exact distance
      return Array.from(r, (index, t) => ({ index, distance: d[t]! })).sort((a, b) => a.distance - b.distance || a.index - b.index);
    });
  }

  /** Opens a collection and builds what its first query would otherwise pay for (baseline matrix, Hamming scan). */
  async warm(name: string): Promise<void> {
    const c = await this.collection(name);
    if (c.count === 0) return;
    const raw = c.kind === 'text' ? { index: new Uint32Array(0), value: new Float32Array(0) } : new Float32Array(c.manifest.rawDim);
    const probe: PreparedQuery = { code: new Float32Array(c.manifest.codeDim), raw, id: null, key: null, label: null };
    const p = this.plan(c, { k: 1 });
    this.codeNeighbors(c, probe, p);
    this.baselineNeighbors(c, probe, p);
  }

  /** Runs work that uses the collections; close() waits for it, so no request meets a freed model. */
  track<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    this.active.add(p);
    const done = () => {
      this.active.delete(p);
      if (this.active.size === 0 && this.retired.length) this.closeRetired();
    };
    p.then(done, done);
    return p;
  }

  /** Waits for tracked work, then closes every open collection (saving graphs that are ahead of their files). */
  async close(): Promise<void> {
    while (this.active.size > 0) await Promise.allSettled([...this.active]);
    this.closeRetired();
    for (const p of this.open.values()) {
      try {
        (await p).close();
      } catch {
        // failed opens hold nothing
      }
    }
    this.open.clear();
  }
}

/** Model input and sparse TF-IDF vectors of one free-text query; EMPTY_TEXT when it has no vocabulary word. */
export function textQueryVectors(c: Pick<Collection, 'model'>, text: string, what: 'query' | 'item' = 'query'): ReturnType<typeof textVector> {
  if (text.trim() === '') throw fail('EMPTY_TEXT', what === 'query' ? 'the query text is empty; type some words' : "the item's text is empty; send the words it holds");
  return textVector(c.model, text);
}

/** Where a query image comes from: its name in error messages and the most pixels it may have. */
export interface ImageOrigin {
  name: string;
  maxPixels: number;
}

/** An HTTP client's upload: a query needs no scan of hundreds of megapixels. */
const UPLOAD: ImageOrigin = { name: 'upload', maxPixels: MAX_UPLOAD_PIXELS };

/**
 * Decodes a query image exactly as the collection's images were prepared (size, channels, fit, background), with a
 * colour preview; INVALID_ARGUMENT for text collections.
 */
export async function decodeQueryImage(c: Pick<Collection, 'name' | 'model'>, image: Buffer, from: ImageOrigin = UPLOAD): Promise<DecodedImage> {
  const i = c.model.manifest.input;
  if (i.type !== 'pixels') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; search it with {text}`);
  return decodeImage(image, { width: i.width, height: i.height, channels: i.channels, fit: i.fit, background: i.background, resample: i.resample }, from.name, { preview: true, maxPixels: from.maxPixels });
}
