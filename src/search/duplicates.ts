import type { Collection } from '../indexer/collection.js';
import { NEIGHBOR_RANK, neighborTable, rawById, rawDistance, TABLE_K } from './neighbors.js';

/**
 * The default thresholds are this share of the collection's typical neighbour distance: the median over its items
 * of the distance to the NEIGHBOR_RANK-th nearest other item, in code space and, to confirm, between the raw
 * vectors of the same pairs. The 5th neighbour, not the 1st, so that a collection full of copies does not shrink its
 * own threshold. Measured (docs/benchmarks.md, 'Outliers: near-duplicates', `npm run bench:outliers`): re-encoded and resized copies of emoji sit within 0.17 of it, while
 * fewer than 1% of 3,000 distinct digits have a nearest neighbour within 0.2 in both spaces.
 */
export const DUPLICATE_FACTOR = 0.2;

/** Groups listed by default, and at most, by the CLI and the API alike (largest first). */
export const DUPLICATE_LIMIT = { default: 100, max: 10_000 } as const;

/**
 * Where a threshold came from: the caller, the collection's distances, or neither (a collection with no 5th
 * neighbour has no typical distance: only exact copies group).
 */
export const THRESHOLD_SOURCES = ['given', 'default', 'exact copies only'] as const;
export type ThresholdSource = (typeof THRESHOLD_SOURCES)[number];

/** Items whose nearest-neighbour distances the default thresholds are estimated from (evenly spaced). */
const SAMPLE = 2000;

export interface DuplicateOptions {
  /** largest code distance of a pair (default: DUPLICATE_FACTOR × the median code distance to the 5th neighbour) */
  threshold?: number;
  /** largest raw distance of a pair (pixels in [0, 1] units, or 1 − cosine of TF-IDF); default as above */
  rawThreshold?: number;
  /** groups returned at most (largest first) */
  limit?: number;
}

export interface DuplicateGroup {
  /** item ids of the group, increasing */
  ids: number[];
  /** whether every item of the group has the same stored raw vector (an exact copy) */
  exact: boolean;
  /** the largest code distance of a pair that joined the group (0 for exact copies) */
  maxDistance: number;
}

export interface DuplicateReport {
  threshold: number;
  rawThreshold: number;
  /** where each threshold came from */
  thresholds: { code: ThresholdSource; raw: ThresholdSource };
  /** groups found (the list may be cut at `limit`) */
  count: number;
  /** items in some group */
  items: number;
  generation: number;
  groups: DuplicateGroup[];
}

function median(v: number[]): number {
  if (v.length === 0) return Number.NaN;
  const s = v.slice().sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Disjoint sets over row indices. */
class UnionFind {
  private readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    while (this.parent[i] !== i) {
      this.parent[i] = this.parent[this.parent[i]!]!;
      i = this.parent[i]!;
    }
    return i;
  }
  union(a: number, b: number): void {
    const x = this.find(a);
    const y = this.find(b);
    if (x !== y) this.parent[Math.max(x, y)] = Math.min(x, y);
  }
}

/**
 * Groups of near-duplicate items: pairs of graph neighbours whose codes are within `threshold` and whose raw vectors
 * are within `rawThreshold`, joined transitively; items with the same stored raw vector always group. Largest first.
 */
export function findDuplicates(c: Collection, o: DuplicateOptions = {}): DuplicateReport {
  return c.consistent(() => {
    const table = neighborTable(c);
    const n = table.ids.length;
    const rowOf = new Map<number, number>();
    table.ids.forEach((id, r) => rowOf.set(id, r));
    const rawOf = rawById(c);
    const raw = (r: number) => rawOf(table.ids[r]!)!;
    const rawDist = rawDistance(c);
    let threshold = o.threshold;
    let rawThreshold = o.rawThreshold;
    const thresholds: DuplicateReport['thresholds'] = { code: threshold === undefined ? 'default' : 'given', raw: rawThreshold === undefined ? 'default' : 'given' };
    if (threshold === undefined || rawThreshold === undefined) {
      const step = Math.max(1, Math.floor(n / SAMPLE));
      const codeNN: number[] = [];
      const rawNN: number[] = [];
      for (let r = 0; r < n; r += step) {
        const j = table.neighbors[r * TABLE_K + NEIGHBOR_RANK - 1]!;
        if (j < 0) continue;
        codeNN.push(table.distances[r * TABLE_K + NEIGHBOR_RANK - 1]!);
        if (rawThreshold === undefined) rawNN.push(rawDist(raw(r), raw(rowOf.get(j)!)));
      }
      // too few items for a 5th neighbour: exact copies only
      const fallback = (v: number) => (Number.isFinite(v) ? v : 0);
      if (threshold === undefined) {
        threshold = fallback(DUPLICATE_FACTOR * median(codeNN));
        if (codeNN.length === 0) thresholds.code = 'exact copies only';
      }
      if (rawThreshold === undefined) {
        rawThreshold = fallback(DUPLICATE_FACTOR * median(rawNN));
        if (rawNN.length === 0) thresholds.raw = 'exact copies only';
      }
    }
    const uf = new UnionFind(n);
    const joined = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      for (let t = 0; t < TABLE_K; t++) {
        const j = table.neighbors[r * TABLE_K + t]!;
        const d = table.distances[r * TABLE_K + t]!;
        if (j < 0 || !(d <= threshold)) break;
        const s = rowOf.get(j);
        if (s === undefined || uf.find(s) === uf.find(r)) continue;
        if (!(rawDist(raw(r), raw(s)) <= rawThreshold)) continue;
        uf.union(r, s);
        joined[r] = Math.max(joined[r]!, d);
      }
    }
    for (const g of c.exactCopies()) {
      const rows = g.map((id) => rowOf.get(id)).filter((r): r is number => r !== undefined);
      for (const r of rows.slice(1)) uf.union(rows[0]!, r);
    }
    const members = new Map<number, number[]>();
    for (let r = 0; r < n; r++) {
      const root = uf.find(r);
      const m = members.get(root);
      if (m) m.push(r);
      else members.set(root, [r]);
    }
    const copyGroup = new Map<number, number>();
    c.exactCopies().forEach((g, i) => g.forEach((id) => copyGroup.set(id, i)));
    const groups: DuplicateGroup[] = [];
    for (const rows of members.values()) {
      if (rows.length < 2) continue;
      const ids = rows.map((r) => table.ids[r]!).sort((a, b) => a - b);
      const first = copyGroup.get(ids[0]!);
      const exact = first !== undefined && ids.every((id) => copyGroup.get(id) === first);
      let maxDistance = 0;
      if (!exact) for (const r of rows) maxDistance = Math.max(maxDistance, joined[r]!);
      groups.push({ ids, exact, maxDistance });
    }
    groups.sort((a, b) => b.ids.length - a.ids.length || a.ids[0]! - b.ids[0]!);
    const limit = o.limit ?? groups.length;
    return {
      threshold,
      rawThreshold,
      thresholds,
      count: groups.length,
      items: groups.reduce((s, g) => s + g.ids.length, 0),
      generation: c.stamp.generation,
      groups: groups.slice(0, limit),
    };
  });
}
