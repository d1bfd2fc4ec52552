/** The k smallest distances pushed so far with their indices, kept sorted; ties keep the earlier push first. */
export class TopK {
  private readonly dist: Float64Array;
  private readonly idx: Int32Array;
  private size = 0;

  constructor(readonly k: number) {
    this.dist = new Float64Array(Math.max(k, 0));
    this.idx = new Int32Array(Math.max(k, 0));
  }

  /** The distance a candidate must be below to enter. */
  get bound(): number {
    return this.size < this.k ? Infinity : this.dist[this.k - 1]!;
  }

  push(index: number, distance: number): void {
    if (this.k <= 0 || distance >= this.bound) return;
    let p = this.size < this.k ? this.size++ : this.k - 1;
    while (p > 0 && this.dist[p - 1]! > distance) {
      this.dist[p] = this.dist[p - 1]!;
      this.idx[p] = this.idx[p - 1]!;
      p--;
    }
    this.dist[p] = distance;
    this.idx[p] = index;
  }

  toArray(): { index: number; distance: number }[] {
    return Array.from({ length: this.size }, (_, i) => ({ index: this.idx[i]!, distance: this.dist[i]! }));
  }
}
