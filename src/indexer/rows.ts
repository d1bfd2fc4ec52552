/** A typed array constructor of the element types the row matrices hold. */
type Ctor<A> = { new (n: number): A };

/**
 * Rows of one stored column (raw vectors, packed bits, codes) in id order, for scans: grown by appends and compacted
 * by removals, so a write costs the rows it changed, not a re-read of the collection.
 */
export class RowMatrix<A extends Uint8Array | Float32Array> {
  private idBuf: Int32Array;
  private buf: A;
  private n = 0;

  constructor(
    private readonly make: Ctor<A>,
    readonly dim: number,
    capacity = 16,
  ) {
    this.idBuf = new Int32Array(Math.max(16, capacity));
    this.buf = new make(Math.max(16, capacity) * dim);
  }

  get size(): number {
    return this.n;
  }

  /** Appends a row; ids must come in increasing order (catalogue rowids do). */
  append(id: number, row: ArrayLike<number>): void {
    if (row.length !== this.dim) throw new RangeError(`row of ${row.length} values in a matrix of ${this.dim}`);
    if (this.n === this.idBuf.length) {
      const cap = Math.ceil(this.idBuf.length * 1.5) + 16;
      const ids = new Int32Array(cap);
      ids.set(this.idBuf);
      const buf = new this.make(cap * this.dim);
      buf.set(this.buf);
      this.idBuf = ids;
      this.buf = buf;
    }
    this.idBuf[this.n] = id;
    this.buf.set(row, this.n * this.dim);
    this.n++;
  }

  /** Drops the rows of `ids` (in place, order kept). */
  remove(ids: ReadonlySet<number>): void {
    if (ids.size === 0) return;
    const d = this.dim;
    let w = 0;
    for (let r = 0; r < this.n; r++) {
      if (ids.has(this.idBuf[r]!)) continue;
      if (w !== r) {
        this.idBuf[w] = this.idBuf[r]!;
        this.buf.copyWithin(w * d, r * d, (r + 1) * d);
      }
      w++;
    }
    this.n = w;
  }

  /** The live rows: views, valid until the next append or remove. */
  view(): { ids: Int32Array; data: A } {
    return { ids: this.idBuf.subarray(0, this.n), data: this.buf.subarray(0, this.n * this.dim) as A };
  }
}
