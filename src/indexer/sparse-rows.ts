import type { SparseVector } from '../encoder/sparse.js';
import { TopK } from '../topk.js';
import type { Ranked } from './retrieval.js';

/** A sparse vector as stored in the catalogue: nnz little-endian u32 indices, then nnz f32 values. */
export function encodeSparse(v: SparseVector): Buffer {
  const n = v.index.length;
  const buf = Buffer.alloc(n * 8);
  for (let i = 0; i < n; i++) {
    buf.writeUInt32LE(v.index[i]!, i * 4);
    buf.writeFloatLE(v.value[i]!, (n + i) * 4);
  }
  return buf;
}

/**
 * The inverse of encodeSparse, for a vocabulary of `dim` words; undefined for a damaged blob (a length not a multiple
 * of 8, indices not increasing or not below dim, values not finite).
 */
export function decodeSparse(buf: Buffer, dim: number): SparseVector | undefined {
  if (buf.length % 8 !== 0) return undefined;
  const n = buf.length / 8;
  const index = new Uint32Array(n);
  const value = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    index[i] = buf.readUInt32LE(i * 4);
    value[i] = buf.readFloatLE((n + i) * 4);
    if (index[i]! >= dim || (i > 0 && index[i]! <= index[i - 1]!) || !Number.isFinite(value[i]!)) return undefined;
  }
  return { index, value };
}

/**
 * Sparse rows (TF-IDF documents) in id order, compressed-row storage: grown by appends and compacted by removals,
 * like RowMatrix for dense rows. Scanned against a query scattered into a dense array: the cost of a scan is the
 * rows' non-zeros, whatever the vocabulary size.
 */
export class SparseRows {
  private ids = new Int32Array(16);
  private start = new Uint32Array(17);
  private index = new Uint32Array(64);
  private value = new Float32Array(64);
  private n = 0;
  private scratch: Float32Array | null = null;

  constructor(readonly dim: number) {}

  get size(): number {
    return this.n;
  }

  get nnz(): number {
    return this.start[this.n]!;
  }

  /** Appends a row; ids must come in increasing order (catalogue rowids do). */
  append(id: number, v: SparseVector): void {
    if (this.n + 1 >= this.ids.length) {
      const ids = new Int32Array(this.ids.length * 2);
      ids.set(this.ids);
      this.ids = ids;
      const start = new Uint32Array(ids.length + 1);
      start.set(this.start);
      this.start = start;
    }
    const at = this.nnz;
    const need = at + v.index.length;
    if (need > this.index.length) {
      const cap = Math.max(need, this.index.length * 2);
      const index = new Uint32Array(cap);
      index.set(this.index.subarray(0, at));
      const value = new Float32Array(cap);
      value.set(this.value.subarray(0, at));
      this.index = index;
      this.value = value;
    }
    this.index.set(v.index, at);
    this.value.set(v.value, at);
    this.ids[this.n] = id;
    this.start[++this.n] = need;
  }

  /** Drops the rows of `ids` (in place, order kept). */
  remove(ids: ReadonlySet<number>): void {
    if (ids.size === 0) return;
    let w = 0;
    let at = 0;
    for (let r = 0; r < this.n; r++) {
      const s = this.start[r]!;
      const e = this.start[r + 1]!;
      if (ids.has(this.ids[r]!)) continue;
      this.index.copyWithin(at, s, e);
      this.value.copyWithin(at, s, e);
      this.ids[w] = this.ids[r]!;
      this.start[w] = at;
      at += e - s;
      w++;
    }
    this.n = w;
    this.start[w] = at;
  }

  /** The catalogue id of each row (a view, valid until the next append or remove). */
  idsView(): Int32Array {
    return this.ids.subarray(0, this.n);
  }

  /** Row r as a view. */
  row(r: number): SparseVector {
    return { index: this.index.subarray(this.start[r]!, this.start[r + 1]!), value: this.value.subarray(this.start[r]!, this.start[r + 1]!) };
  }

  /** Dot product of `q` with each of `rows` (all rows when omitted). */
  dots(q: SparseVector, rows?: ArrayLike<number>): Float32Array {
    const dense = (this.scratch ??= new Float32Array(this.dim));
    for (let i = 0; i < q.index.length; i++) if (q.index[i]! < this.dim) dense[q.index[i]!] = q.value[i]!;
    const m = rows ? rows.length : this.n;
    const out = new Float32Array(m);
    const { index, value, start } = this;
    for (let j = 0; j < m; j++) {
      const r = rows ? rows[j]! : j;
      let s = 0;
      for (let p = start[r]!, e = start[r + 1]!; p < e; p++) s += value[p]! * dense[index[p]!]!;
      out[j] = s;
    }
    for (let i = 0; i < q.index.length; i++) if (q.index[i]! < this.dim) dense[q.index[i]!] = 0;
    return out;
  }

  /** 1 − cosine of `q` to each of `rows` (all rows when omitted); rows and query unit-length. */
  cosineDistances(q: SparseVector, rows?: ArrayLike<number>): Float32Array {
    // Rounding can put a document's cosine with itself a hair above 1.
    return this.dots(q, rows).map((d) => Math.max(0, 1 - d));
  }

  /** The k rows nearest to `q` by cosine distance, among `rows` when given. */
  nearest(q: SparseVector, k: number, rows?: ArrayLike<number>): Ranked[] {
    const d = this.cosineDistances(q, rows);
    const top = new TopK(Math.min(k, d.length));
    for (let j = 0; j < d.length; j++) top.push(rows ? rows[j]! : j, d[j]!);
    return top.toArray();
  }
}
