import { popcount32, type PackedCodes } from '../encoder/binary.js';
import type { ExactHit } from './exact.js';

/** A row of a code matrix and its Hamming distance to the query. */
export type HammingHit = ExactHit;

/** Exact Hamming search over packed codes: the k nearest (ties by row), or every row within a radius. */
export interface HammingIndex {
  readonly n: number;
  search(query: Uint32Array, k: number, rows?: ArrayLike<number>): HammingHit[];
  within(query: Uint32Array, max: number, rows?: ArrayLike<number>): HammingHit[];
}

/** Below this many codes a linear popcount scan is as fast as probing tables. */
export const MIH_MIN_ITEMS = 20_000;
/** Widest substring indexed by a direct table (2^24 buckets, 64 MB of offsets). */
const MAX_SUBSTRING_BITS = 24;

interface Table {
  /** first bit of the substring in the code, and its length */
  start: number;
  len: number;
  /** rows whose substring is v: ids[offsets[v] .. offsets[v + 1]) */
  offsets: Uint32Array;
  ids: Uint32Array;
  /** their codes in the same order (a bucket's codes are read in one sweep, not gathered from all over) */
  codes: Uint32Array;
}

/** Bits [start, start + len) of a code packed as `toWords` packs it (most significant first), len ≤ 24. */
function substring(words: Uint32Array, base: number, start: number, len: number): number {
  const w = base + (start >>> 5);
  const off = start & 31;
  if (off + len <= 32) return (words[w]! >>> (32 - off - len)) & ((1 << len) - 1);
  const hi = 32 - off;
  const lo = len - hi;
  return (((words[w]! & ((1 << hi) - 1)) << lo) | (words[w + 1]! >>> (32 - lo))) >>> 0;
}

/** Substrings for n codes of `bits` bits: about log2(n) bits each (Norouzi et al.), at most 24. */
export function substringCount(n: number, bits: number): number {
  const per = Math.min(MAX_SUBSTRING_BITS, Math.max(1, Math.round(Math.log2(Math.max(2, n)))));
  return Math.max(1, Math.ceil(bits / per));
}

/**
 * Multi-index hashing (Norouzi, Punjani & Fleet, "Fast exact search in Hamming space with multi-index hashing",
 * 2014): the code is cut into m substrings, each indexed by a table. Two codes within distance r agree within
 * ⌊r/m⌋ bits on some substring, so probing each table at growing radii finds every code within a guaranteed
 * distance; the k-NN search stops as soon as the k-th nearest found lies within it. Exact: same answers, in the
 * same order, as the linear scan of `PackedCodes` (kept as the reference).
 */
export class MultiIndexHash implements HammingIndex {
  private readonly tables: Table[];

  constructor(
    readonly codes: PackedCodes,
    substrings = substringCount(codes.n, codes.bits),
  ) {
    const m = Math.max(1, Math.min(substrings, codes.bits));
    const lens = Array.from({ length: m }, (_, i) => Math.floor(codes.bits / m) + (i < codes.bits % m ? 1 : 0));
    if (lens[0]! > MAX_SUBSTRING_BITS) throw new RangeError(`multi-index hashing of ${codes.bits}-bit codes needs at least ${Math.ceil(codes.bits / MAX_SUBSTRING_BITS)} substrings`);
    let start = 0;
    this.tables = lens.map((len) => {
      const t = this.table(start, len);
      start += len;
      return t;
    });
  }

  get n(): number {
    return this.codes.n;
  }

  /** How many substring tables the codes are indexed by. */
  get substrings(): number {
    return this.tables.length;
  }

  private table(start: number, len: number): Table {
    const { n, words, data } = this.codes;
    const offsets = new Uint32Array((1 << len) + 1);
    const keys = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      keys[i] = substring(data, i * words, start, len);
      offsets[keys[i]! + 1]!++;
    }
    for (let v = 0; v < 1 << len; v++) offsets[v + 1]! += offsets[v]!;
    const cursor = offsets.slice(0, 1 << len);
    const ids = new Uint32Array(n);
    const codes = new Uint32Array(n * words);
    for (let i = 0; i < n; i++) {
      const p = cursor[keys[i]!]!++;
      ids[p] = i;
      for (let w = 0; w < words; w++) codes[p * words + w] = data[i * words + w]!;
    }
    return { start, len, offsets, ids, codes };
  }

  /**
   * Probes the tables at radius 0, 1, 2, … (table by table), handing each newly seen row and its distance to
   * `found`, until `done(r)` says that knowing every row within distance r is enough, or every row was seen.
   */
  private probe(query: Uint32Array, found: (index: number, distance: number) => void, done: (guaranteed: number) => boolean): void {
    const m = this.tables.length;
    const tables = this.tables;
    const keys = tables.map((t) => substring(query, 0, t.start, t.len));
    const words = this.codes.words;
    let seen = 0;
    // Table j at radius s: a row is new unless another table matched it earlier (closer on its substring, or as
    // close and probed before), which its own code tells: no per-query "seen" array to scatter into.
    const visit = (j: number, s: number, v: number) => {
      const t = tables[j]!;
      const end = t.offsets[v + 1]!;
      const codes = t.codes;
      for (let p = t.offsets[v]!; p < end; p++) {
        const o = p * words;
        let earlier = false;
        for (let x = 0; x < m && !earlier; x++) {
          if (x === j) continue;
          const u = tables[x]!;
          const dx = popcount32((substring(codes, o, u.start, u.len) ^ keys[x]!) >>> 0);
          earlier = dx < s || (dx === s && x < j);
        }
        if (earlier) continue;
        seen++;
        let h = 0;
        for (let w = 0; w < words; w++) h += popcount32((codes[o + w]! ^ query[w]!) >>> 0);
        found(t.ids[p]!, h);
      }
    };
    const longest = tables.reduce((a, t) => Math.max(a, t.len), 0);
    for (let s = 0; s <= longest; s++) {
      for (let j = 0; j < m; j++) {
        const t = tables[j]!;
        if (s <= t.len) {
          const key = keys[j]!;
          if (s === 0) visit(j, 0, key);
          else {
            // every s-bit mask of t.len bits (Gosper's hack)
            const limit = 2 ** t.len;
            let mask = 2 ** s - 1;
            while (mask < limit) {
              visit(j, s, (key ^ mask) >>> 0);
              const c = mask & -mask;
              const r = mask + c;
              mask = (((r ^ mask) >>> 2) / c) | r;
            }
          }
        }
        // A row not seen yet differs by more than s bits on substrings 0..j and by at least s on the others.
        if (seen === this.codes.n || done(s * m + j)) return;
      }
    }
  }

  search(query: Uint32Array, k: number, rows?: ArrayLike<number>): HammingHit[] {
    if (rows) return this.codes.search(query, k, rows);
    const want = Math.min(k, this.codes.n);
    if (!(want > 0)) return [];
    // rows found, bucketed by distance; count[d] of them
    const byDistance: number[][] = Array.from({ length: this.codes.bits + 1 }, () => []);
    let kth = Infinity;
    let total = 0;
    this.probe(
      query,
      (i, d) => {
        byDistance[d]!.push(i);
        if (d < kth && ++total >= want) {
          // the k-th smallest distance found so far
          let acc = 0;
          for (let x = 0; x <= this.codes.bits; x++) {
            acc += byDistance[x]!.length;
            if (acc >= want) {
              kth = x;
              break;
            }
          }
        }
      },
      (guaranteed) => kth <= guaranteed,
    );
    const out: HammingHit[] = [];
    for (let d = 0; d <= this.codes.bits && out.length < want; d++) {
      const b = byDistance[d]!;
      if (b.length === 0) continue;
      b.sort((x, y) => x - y);
      for (const index of b) {
        if (out.length === want) break;
        out.push({ index, distance: d });
      }
    }
    return out;
  }

  within(query: Uint32Array, max: number, rows?: ArrayLike<number>): HammingHit[] {
    if (rows) return this.codes.within(query, max, rows);
    const out: HammingHit[] = [];
    this.probe(
      query,
      (index, distance) => {
        if (distance <= max) out.push({ index, distance });
      },
      (guaranteed) => guaranteed >= max,
    );
    return out.sort((a, b) => a.index - b.index);
  }
}

/** The exact Hamming index for a set of codes: multi-index hashing when there are many, else the linear scan. */
export function hammingIndex(codes: PackedCodes, o: { minItems?: number } = {}): HammingIndex {
  return codes.n >= (o.minItems ?? MIH_MIN_ITEMS) ? new MultiIndexHash(codes) : codes;
}
