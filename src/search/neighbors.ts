import { isSparse, sparseDot, type SparseVector } from '../encoder/sparse.js';
import { toFloats } from '../../data/images.js';
import type { Collection, RawVector } from '../indexer/collection.js';
import { sortedIndex } from '../indexer/retrieval.js';
import { progress } from '../progress.js';

/** Which nearest other item the `neighbors` outlier score and the duplicate thresholds measure the distance to. */
export const NEIGHBOR_RANK = 5;

/** Nearest other items kept per item: enough for the k-th-neighbour score and for near-duplicate candidates. */
export const TABLE_K = 10;

/**
 * Each item's TABLE_K nearest other items in code space, found through the HNSW graph (one search per item, not an
 * all-pairs scan), with true distances (L2, or 1 − cosine). Rows follow the code matrix; -1 pads missing neighbours.
 */
export interface NeighborTable {
  ids: Int32Array;
  /** neighbour ids, n × TABLE_K, nearest first */
  neighbors: Int32Array;
  distances: Float32Array;
}

/** The distance an HNSW search reports, as the code space measures it (hnswlib's l2 is squared). */
export function codeDistance(c: Collection): (d: number) => number {
  // binary models too: the graph holds their sigmoid codes, searched by L2 (Hamming is for the packed bits)
  return c.manifest.space === 'l2' ? Math.sqrt : (d) => d;
}

/** The distance between two raw vectors: L2 in [0, 1] pixel units, or 1 − cosine for TF-IDF. */
export function rawDistance(c: Collection): (a: RawVector, b: RawVector) => number {
  if (c.manifest.rawType === 'sparse') {
    return (a, b) => {
      const x = a as SparseVector;
      const y = b as SparseVector;
      const n = Math.sqrt(sparseDot(x, x) * sparseDot(y, y));
      return n === 0 ? 1 : 1 - sparseDot(x, y) / n;
    };
  }
  // toFloats reads pixel bytes as v/255: distances come out in [0, 1] pixel units for byte and float collections alike
  return (a, b) => {
    if (isSparse(a) || isSparse(b)) return Number.NaN;
    const x = toFloats(a);
    const y = toFloats(b);
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      s += d * d;
    }
    return Math.sqrt(s);
  };
}

/** The raw vector of an item by id: a row of the cached matrix for dense collections, a catalogue read for texts. */
export function rawById(c: Collection): (id: number) => RawVector | undefined {
  if (c.manifest.rawType === 'sparse') return (id) => c.rawOf(id);
  const { ids, data } = c.rawMatrix();
  const index = sortedIndex(ids);
  const d = c.manifest.rawDim;
  return (id) => {
    const r = index.get(id);
    return r === undefined ? undefined : data.subarray(r * d, (r + 1) * d);
  };
}

/** The neighbour table of a collection, computed once per generation (a write makes the next call recompute it). */
export function neighborTable(c: Collection, quiet = true): NeighborTable {
  return c.derived(`neighbors:${TABLE_K}`, () => {
    const { ids, data } = c.codeMatrix();
    const n = ids.length;
    const cd = c.manifest.codeDim;
    const dist = codeDistance(c);
    const neighbors = new Int32Array(n * TABLE_K).fill(-1);
    const distances = new Float32Array(n * TABLE_K).fill(Number.NaN);
    // The graph's own breadth, at least 2k: a neighbour table worth trusting for scores.
    const ef = Math.max(c.manifest.hnsw.ef, 2 * (TABLE_K + 1));
    const bar = progress({ title: 'neighbours', total: n, quiet });
    for (let i = 0; i < n; i++) {
      const hits = c.search(data.subarray(i * cd, (i + 1) * cd), TABLE_K + 1, ef);
      let j = 0;
      for (const h of hits) {
        if (h.id === ids[i] || j === TABLE_K) continue;
        neighbors[i * TABLE_K + j] = h.id;
        distances[i * TABLE_K + j] = dist(h.distance);
        j++;
      }
      if (i % 1000 === 999) bar.update(i + 1);
    }
    bar.update(n);
    bar.stop();
    return { ids: Int32Array.from(ids), neighbors, distances };
  });
}
