import { PackedCodes, packBits, toWords } from '../encoder/binary.js';
import { fitPca, fitSparseLsa, pcaProject, sparseProject, type Pca } from '../encoder/pca.js';
import type { SparseVector } from '../encoder/sparse.js';
import type { SparseRows } from './sparse-rows.js';
import { normaliseRows, type Metric } from './exact.js';
import { FlatScan } from './flat-scan.js';
import { hammingIndex } from './mih.js';
import { batchKnn } from './knn-batch.js';
import { fail } from '../errors.js';

/** A row of the matrix a retriever was built over, with its distance to the query. */
export interface Ranked {
  index: number;
  distance: number;
}

/** Rows a search may return (a filter's): row numbers of the matrix a retriever scans, increasing, and a test. */
export interface RowSet {
  readonly rows: Int32Array;
  has(row: number): boolean;
}

/** The rows of a matrix (given by its id column, increasing) whose ids are in `allowed` (increasing). */
export function rowSetOf(matrixIds: Int32Array, allowed: Int32Array): RowSet {
  const mask = new Uint8Array(matrixIds.length);
  const rows: number[] = [];
  for (let i = 0, j = 0; i < matrixIds.length && j < allowed.length; ) {
    if (matrixIds[i]! < allowed[j]!) i++;
    else if (matrixIds[i]! > allowed[j]!) j++;
    else {
      mask[i] = 1;
      rows.push(i);
      i++;
      j++;
    }
  }
  return { rows: Int32Array.from(rows), has: (r) => mask[r] === 1 };
}

/**
 * One way of finding nearest items — HNSW over codes, an exact scan of codes or raw vectors, a Hamming scan of
 * binary codes, PCA/LSA — behind one call: a query in, rows ranked nearest first out. Evaluation and model
 * comparison score every method through this, with one scorer.
 */
export interface Retriever<Q = Float32Array, B = Float32Array> {
  readonly name: string;
  /** bytes a method stores per item (for the tables) */
  readonly bytesPerItem: number;
  /**
   * One query, as the method takes it (a code, a raw vector for raw-space methods, both for two-stage search);
   * with `only`, the k nearest of those rows (a filter applied inside the search, not to its answer).
   */
  search(q: Q, k: number, only?: RowSet): Ranked[];
  /** the top k rows of n queries at once (a batched product where the method has one) */
  searchMany(qs: B, n: number, k: number): Int32Array[];
}

/** A query of a two-stage search: its code for the shortlist, its raw vector for the re-ranking. */
export interface CodeAndRaw<R> {
  code: Float32Array;
  raw: R;
  /** the row of the item the query is (a search by key): never fed back into itself */
  self?: number;
}

/** n queries of a two-stage search: their codes (n × code dim) and raw vectors. */
export interface CodesAndRaws<R> {
  codes: Float32Array;
  raws: readonly R[];
  /**
   * Rows query i may not be fed back (evaluation: those its scoring leaves out, such as other chunks of its own
   * text, so that feedback learns nothing a query from outside the collection could not).
   */
  notFedBack?: (i: number) => (row: number) => boolean;
}

export interface TwoStageOptions {
  /** rows the shortlist keeps for re-ranking */
  shortlist: number;
  /** weight of the code distance in the final distance (0: the exact distance alone) */
  blend: number;
  /** pseudo-relevance feedback: the best re-ranked rows folded into the query before a second re-ranking (0: none) */
  feedback?: number;
}

/** A query with some of the collection's rows folded into it (Rocchio: the query plus their mean). */
export type Expand<R> = (q: CodeAndRaw<R>, rows: Int32Array) => CodeAndRaw<R>;

function rowsOf(qs: Float32Array, n: number): Float32Array[] {
  const d = qs.length / Math.max(1, n);
  return Array.from({ length: n }, (_, i) => qs.subarray(i * d, (i + 1) * d));
}

/**
 * Exact scan of an n × dim matrix (SIMD kernels, see FlatScan): squared L2, or cosine distance (rows and queries
 * unit-normalised here). A byte matrix (pixels) is scanned as bytes against a byte query: no float copy of it.
 */
export function exactScan(name: string, items: Float32Array | Uint8Array, dim: number, metric: Metric, o: { bytesPerItem?: number; unitRows?: boolean } = {}): Retriever {
  const bytesPerItem = o.bytesPerItem ?? dim * 4;
  const data = metric === 'cosine' && !o.unitRows ? normaliseRows(Float32Array.from(items), dim) : items;
  const bytes = data instanceof Uint8Array;
  const unit = (q: Float32Array) => (metric === 'cosine' ? normaliseRows(q.slice(), dim) : q);
  const floats = () => (bytes ? Float32Array.from(data) : (data as Float32Array));
  const scan = new FlatScan(data, dim, metric);
  return {
    name,
    bytesPerItem,
    search: (q, k, only) => scan.knn(bytes ? q : unit(q), k, only?.rows),
    // the SIMD scan query by query outruns a tfjs matrix product here (and needs no float copy of bytes)
    searchMany: (qs, n, k) => (scan.simd ? rowsOf(qs, n).map((q) => Int32Array.from(scan.knn(bytes ? q : unit(q), k), (h) => h.index)) : batchKnn(floats(), dim, unit(qs), k, metric)),
  };
}

/**
 * Exact Hamming search (multi-index hashing over many items, else a linear scan) of the items' codes cut at 0.5 into
 * `bits` bits (what binary collections store). Items tied in Hamming distance are ordered by the float codes' L2
 * distance, then by row, over whole tie groups: one total order, so the top k is a prefix of the top k + m (pages
 * stay consistent).
 */
export function hammingScan(name: string, codes: Float32Array, dim: number, bits: number): Retriever {
  const n = codes.length / dim;
  const packed = PackedCodes.fromBytes(Array.from({ length: n }, (_, i) => packBits(codes.subarray(i * dim, (i + 1) * dim))), bits);
  const index = hammingIndex(packed);
  const words = (q: Float32Array) => toWords(packBits(q), packed.words);
  const l2 = (q: Float32Array, row: number) => {
    let d = 0;
    for (let j = 0; j < dim; j++) d += (codes[row * dim + j]! - q[j]!) ** 2;
    return d;
  };
  const search = (q: Float32Array, k: number, only?: RowSet) => {
    const w = words(q);
    const top = index.search(w, k, only?.rows);
    if (top.length === 0) return [];
    // every item tied with the k-th, so that the tie-break never depends on which of them the top k kept
    return index
      .within(w, top[top.length - 1]!.distance, only?.rows)
      .map((h) => ({ ...h, tie: l2(q, h.index) }))
      .sort((a, b) => a.distance - b.distance || a.tie - b.tie || a.index - b.index)
      .slice(0, k)
      .map(({ index, distance }) => ({ index, distance }));
  };
  return { name, bytesPerItem: bits / 8, search, searchMany: (qs, n, k) => rowsOf(qs, n).map((q) => Int32Array.from(search(q, k).map((h) => h.index))) };
}

/** Row lookup by id over ids in increasing order (a matrix's id column), by binary search. */
export function sortedIndex(ids: Int32Array): { get(id: number): number | undefined } {
  return {
    get(id) {
      let lo = 0;
      let hi = ids.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (ids[mid]! === id) return mid;
        if (ids[mid]! < id) lo = mid + 1;
        else hi = mid - 1;
      }
      return undefined;
    },
  };
}

/** Which graph labels (ids) a filtered graph search accepts, and how many there are. */
export interface IdFilter {
  has(id: number): boolean;
  size: number;
}

/** Most rows a graph search reads past k to complete a run of tied distances. */
const MAX_TIE_DEPTH = 4096;

/** Nearest first; equal distances by row; a NaN distance last. */
function byDistanceThenRow(a: Ranked, b: Ranked): number {
  const da = Number.isNaN(a.distance) ? Infinity : a.distance;
  const db = Number.isNaN(b.distance) ? Infinity : b.distance;
  return da - db || a.index - b.index;
}

/**
 * An approximate graph search whose answers are ids; `rowOfId` maps them to rows of the scored matrix (without it,
 * the ids are the rows). A row filter is handed to the graph search as a test on ids.
 */
export function graphScan(
  name: string,
  find: (q: Float32Array, k: number, only?: IdFilter) => { id: number; distance: number }[],
  rowOfId: { get(id: number): number | undefined } | null,
  bytesPerItem: number,
): Retriever {
  const ids = (only: RowSet): IdFilter => ({
    size: only.rows.length,
    has: (id) => {
      const r = rowOfId ? rowOfId.get(id) : id;
      return r !== undefined && only.has(r);
    },
  });
  const rowHits = (hits: { id: number; distance: number }[]) =>
    hits.flatMap((h) => {
      const index = rowOfId ? rowOfId.get(h.id) : h.id;
      return index === undefined ? [] : [{ index, distance: h.distance }];
    });
  // A graph returns any of several rows at one distance (exact duplicates): the answer is read deeper while its last
  // hit ties the k-th, and ties are ordered by row, so that the first k of any deeper answer are these k.
  const search = (q: Float32Array, k: number, only?: RowSet) => {
    const filter = only && ids(only);
    let depth = k;
    for (;;) {
      const hits = find(q, depth, filter);
      const kth = hits[k - 1]?.distance;
      const tied = hits.length >= depth && kth !== undefined && hits[hits.length - 1]!.distance <= kth && depth < k + MAX_TIE_DEPTH;
      if (!tied) return rowHits(hits).sort(byDistanceThenRow).slice(0, k);
      depth = Math.min(k + MAX_TIE_DEPTH, depth * 2);
    }
  };
  return { name, bytesPerItem, search, searchMany: (qs, n, k) => rowsOf(qs, n).map((q) => Int32Array.from(search(q, k).map((h) => h.index))) };
}

/** Exact cosine scan of sparse unit rows (TF-IDF documents) by a sparse unit query; distance 1 − cosine. */
export function sparseScan(name: string, rows: SparseRows): Retriever<SparseVector, readonly SparseVector[]> {
  const search = (q: SparseVector, k: number, only?: RowSet) => rows.nearest(q, k, only?.rows);
  return {
    name,
    // an index and a weight per non-zero
    bytesPerItem: (rows.nnz * 8) / Math.max(1, rows.size),
    search,
    searchMany: (qs, n, k) => qs.slice(0, n).map((q) => Int32Array.from(search(q, k), (h) => h.index)),
  };
}

/**
 * Two-stage search (Salakhutdinov & Hinton's semantic hashing: codes shortlist, an exact method ranks): the
 * `shortlist` rows nearest by code are re-ranked by `exact` (the raw-space distance of the query to given rows),
 * blended with their code distance `coarse` when `blend` > 0. With `feedback` > 0, the best rows of that ranking are
 * folded into the query (`expand`) and the shortlist is re-ranked once more by the expanded query.
 */
export function twoStage<R>(
  name: string,
  codes: Retriever,
  exact: (q: R, rows: Int32Array) => Float32Array,
  coarse: (q: Float32Array, rows: Int32Array) => Float32Array,
  o: TwoStageOptions,
  expand?: Expand<R>,
): Retriever<CodeAndRaw<R>, CodesAndRaws<R>> {
  const feedback = o.feedback ?? 0;
  if (feedback > 0 && !expand) throw fail('INTERNAL', 'feedback needs a way to fold rows into the query');
  const order = (q: CodeAndRaw<R>, rows: Int32Array) => {
    const e = exact(q.raw, rows);
    const c = o.blend > 0 ? coarse(q.code, rows) : null;
    return Array.from(rows, (index, i) => ({ index, distance: c ? (1 - o.blend) * e[i]! + o.blend * c[i]! : e[i]! })).sort((a, b) => a.distance - b.distance);
  };
  const rerank = (q: CodeAndRaw<R>, rows: Int32Array, k: number, skip?: (row: number) => boolean): Ranked[] => {
    let ranked = order(q, rows);
    if (feedback > 0) {
      // The best rows of the first ranking, but for the query's own item (and rows the caller skips). Copies of the
      // query count like any row: they fold in its own direction, so that a query whose best rows are its copies keeps
      // them first (skipping them would feed back the nearest rows that are not copies, perhaps of another topic).
      const best = Int32Array.from(ranked.filter((h) => h.index !== q.self && !skip?.(h.index)).slice(0, feedback), (h) => h.index);
      if (best.length > 0) ranked = order(expand!(q, best), rows);
    }
    return ranked.slice(0, k).map((h) => ({ index: h.index, distance: h.distance }));
  };
  const size = (k: number) => Math.max(k, o.shortlist);
  return {
    name,
    bytesPerItem: codes.bytesPerItem,
    search: (q, k, only) => rerank(q, Int32Array.from(codes.search(q.code, size(k), only), (h) => h.index), k),
    searchMany: (qs, n, k) => {
      const d = qs.codes.length / Math.max(1, n);
      return codes.searchMany(qs.codes, n, size(k)).map((rows, i) => Int32Array.from(rerank({ code: qs.codes.subarray(i * d, (i + 1) * d), raw: qs.raws[i]! }, rows, k, qs.notFedBack?.(i)), (h) => h.index));
    },
  };
}

/**
 * PCA (images: centred, L2) or LSA (texts: uncentred, cosine) with `dim` components fit on the items, then an exact
 * scan of the projections. Queries are raw vectors; they are projected here.
 */
export function projectionScan(items: Float32Array, n: number, rawDim: number, dim: number, text: boolean, nameOf: (method: string) => string = (m) => m): Retriever & { pca: Pca } {
  const pca = fitPca(items, n, rawDim, dim, { center: !text });
  const inner = exactScan(nameOf(`${text ? 'LSA' : 'PCA'} ${pca.k}-d`), pcaProject(pca, items, n), pca.k, text ? 'cosine' : 'l2');
  return {
    name: inner.name,
    bytesPerItem: inner.bytesPerItem,
    pca,
    search: (q, k, only) => inner.search(pcaProject(pca, q, 1), k, only),
    searchMany: (qs, m, k) => inner.searchMany(pcaProject(pca, qs, m), m, k),
  };
}

/**
 * LSA with `dim` components fit on sparse TF-IDF rows (the full vocabulary, never made dense), then an exact cosine
 * scan of the projections. Queries are sparse TF-IDF vectors; they are projected here.
 */
export function sparseProjectionScan(rows: SparseRows, dim: number, nameOf: (method: string) => string = (m) => m): Retriever<SparseVector, readonly SparseVector[]> & { pca: Pca } {
  const pca = fitSparseLsa((i) => rows.row(i), rows.size, rows.dim, dim);
  const all = Array.from({ length: rows.size }, (_, i) => rows.row(i));
  const inner = exactScan(nameOf(`LSA ${pca.k}-d`), sparseProject(pca, all), pca.k, 'cosine');
  return {
    name: inner.name,
    bytesPerItem: inner.bytesPerItem,
    pca,
    search: (q, k, only) => inner.search(sparseProject(pca, [q]), k, only),
    searchMany: (qs, m, k) => inner.searchMany(sparseProject(pca, qs.slice(0, m)), m, k),
  };
}
