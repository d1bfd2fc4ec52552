import { PackedCodes, packBits, toWords } from '../encoder/binary.js';
import { fitPca, pcaProject, type Pca } from '../encoder/pca.js';
import { exactKnn, normaliseRows, type Metric } from './exact.js';
import { batchKnn } from './knn-batch.js';

/** A row of the matrix a retriever was built over, with its distance to the query. */
export interface Ranked {
  index: number;
  distance: number;
}

/**
 * One way of finding nearest items — HNSW over codes, an exact scan of codes or raw vectors, a Hamming scan of
 * binary codes, PCA/LSA — behind one call: a query in, rows ranked nearest first out. Evaluation and model
 * comparison score every method through this, with one scorer.
 */
export interface Retriever {
  readonly name: string;
  /** bytes a method stores per item (for the tables) */
  readonly bytesPerItem: number;
  /** one query, as the method takes it (a code, or a raw vector for raw-space methods) */
  search(q: Float32Array, k: number): Ranked[];
  /** the top k rows of n queries at once (a batched product where the method has one) */
  searchMany(qs: Float32Array, n: number, k: number): Int32Array[];
}

function rowsOf(qs: Float32Array, n: number): Float32Array[] {
  const d = qs.length / Math.max(1, n);
  return Array.from({ length: n }, (_, i) => qs.subarray(i * d, (i + 1) * d));
}

/**
 * Exact scan of an n × dim matrix: squared L2, or cosine distance (rows and queries unit-normalised here). A byte
 * matrix (pixels) is scanned as bytes against a byte query: no float copy of the collection.
 */
export function exactScan(name: string, items: Float32Array | Uint8Array, dim: number, metric: Metric, o: { bytesPerItem?: number; unitRows?: boolean } = {}): Retriever {
  const bytesPerItem = o.bytesPerItem ?? dim * 4;
  const data = metric === 'cosine' && !o.unitRows ? normaliseRows(Float32Array.from(items), dim) : items;
  const bytes = data instanceof Uint8Array;
  const unit = (q: Float32Array) => (metric === 'cosine' ? normaliseRows(q.slice(), dim) : q);
  const floats = () => (bytes ? Float32Array.from(data) : (data as Float32Array));
  return {
    name,
    bytesPerItem,
    search: (q, k) => exactKnn(data, dim, bytes ? Uint8Array.from(q, (v) => Math.round(v)) : unit(q), k, metric),
    searchMany: (qs, _n, k) => batchKnn(floats(), dim, unit(qs), k, metric),
  };
}

/**
 * Exact Hamming scan of the items' codes cut at zero into `bits` bits (what binary collections store); ties in
 * Hamming distance are ordered by the float codes' L2 distance over a shortlist of max(10k, 100).
 */
export function hammingScan(name: string, codes: Float32Array, dim: number, bits: number): Retriever {
  const n = codes.length / dim;
  const packed = PackedCodes.fromBytes(Array.from({ length: n }, (_, i) => packBits(codes.subarray(i * dim, (i + 1) * dim))), bits);
  const words = (q: Float32Array) => toWords(packBits(q), packed.words);
  const l2 = (q: Float32Array, row: number) => {
    let d = 0;
    for (let j = 0; j < dim; j++) d += (codes[row * dim + j]! - q[j]!) ** 2;
    return d;
  };
  const search = (q: Float32Array, k: number) =>
    packed
      .search(words(q), Math.min(n, Math.max(k * 10, 100)))
      .map((h) => ({ ...h, tie: l2(q, h.index) }))
      .sort((a, b) => a.distance - b.distance || a.tie - b.tie)
      .slice(0, k)
      .map(({ index, distance }) => ({ index, distance }));
  return { name, bytesPerItem: bits / 8, search, searchMany: (qs, n, k) => rowsOf(qs, n).map((q) => Int32Array.from(search(q, k).map((h) => h.index))) };
}

/**
 * An approximate graph search whose answers are ids; `rowOfId` maps them to rows of the scored matrix (without it,
 * the ids are the rows).
 */
export function graphScan(name: string, find: (q: Float32Array, k: number) => { id: number; distance: number }[], rowOfId: ReadonlyMap<number, number> | null, bytesPerItem: number): Retriever {
  const search = (q: Float32Array, k: number) =>
    find(q, k).flatMap((h) => {
      const index = rowOfId ? rowOfId.get(h.id) : h.id;
      return index === undefined ? [] : [{ index, distance: h.distance }];
    });
  return { name, bytesPerItem, search, searchMany: (qs, n, k) => rowsOf(qs, n).map((q) => Int32Array.from(search(q, k).map((h) => h.index))) };
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
    search: (q, k) => inner.search(pcaProject(pca, q, 1), k),
    searchMany: (qs, m, k) => inner.searchMany(pcaProject(pca, qs, m), m, k),
  };
}
