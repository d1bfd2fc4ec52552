import fs from 'node:fs';
import { TopK } from '../topk.js';
import { exactKnn, queryNorm, type ExactHit, type Metric } from './exact.js';

/** Compiled from kernels/scan.wat by `npm run build`. */
const KERNELS = new URL('./kernels/scan.wasm', import.meta.url);
/** Longest byte rows whose squared distance fits the kernel's i32 sum (255² · d < 2³¹). */
export const MAX_BYTE_DIM = Math.floor((2 ** 31 - 1) / 255 ** 2);
const PAGE = 65_536;
/** A wasm32 memory holds at most 4 GiB. */
const MAX_PAGES = 65_536;

interface Kernels {
  l2_u8(x: number, rows: number, n: number, d: number, q: number, out: number): void;
  l2_f32(x: number, rows: number, n: number, d: number, q: number, out: number): void;
  dot_f32(x: number, rows: number, n: number, d: number, q: number, out: number): void;
  select_f32(out: number, from: number, n: number, bound: number, above: number, idx: number): number;
}

/** The compiled kernels, or null where the build left none (the plain loops answer then). */
const COMPILED: WebAssembly.Module | null = (() => {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(KERNELS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return new WebAssembly.Module(new Uint8Array(bytes));
})();

/** Which implementation exact scans use here: the wasm SIMD kernels, or plain JavaScript loops. */
export function scanKernel(): 'wasm-simd' | 'js' {
  return COMPILED ? 'wasm-simd' : 'js';
}

/** The kernels' answer to one query: its distances, and (float rows) a way to find the ones past a bound. */
interface Scanned {
  /** distances (or inner products) to every row, or to the filter's rows in their order */
  dist: ArrayLike<number>;
  /** indices t ≥ from with dist[t] below `bound` (above it with `above`), in order; absent for byte rows */
  select?: (from: number, bound: number, above: boolean) => Int32Array;
}
/** Runs the kernels for one query (over the filter's rows when given). */
type Run = (q: ArrayLike<number>, rows: ArrayLike<number> | undefined) => Scanned;

const align16 = (x: number) => Math.ceil(x / 16) * 16;

function inRange(rows: ArrayLike<number>, n: number): boolean {
  for (let t = 0; t < rows.length; t++) if (!(rows[t]! >= 0 && rows[t]! < n)) return false;
  return true;
}

/**
 * An n × d matrix copied once into a wasm memory of its own, scanned exactly by SIMD kernels: squared L2 (floats, or
 * bytes against a byte query, exact in integers) or, for rows already L2-normalised, cosine distance 1 − cos. Same
 * answers as `exactKnn` (floats up to f32 rounding of the sums); falls back to it where the kernels are missing.
 */
export class FlatScan {
  readonly n: number;
  /** the kernels over a wasm copy of the matrix, made on the first scan that needs them; null: the plain loops */
  #run: Run | null | undefined;

  constructor(
    private readonly data: Float32Array | Uint8Array,
    readonly d: number,
    readonly metric: Metric,
  ) {
    this.n = d > 0 ? Math.floor(data.length / d) : 0;
    const bytes = data instanceof Uint8Array;
    if (!COMPILED || d <= 0 || (bytes && (metric !== 'l2' || d > MAX_BYTE_DIM)) || this.layout().pages > MAX_PAGES) this.#run = null;
  }

  /** Where each region lies in the wasm memory: [16 reserved: rows = 0 means all] [matrix] [query] [rows] [out] [selected]. */
  private layout(): { x: number; q: number; rows: number; out: number; selected: number; pages: number } {
    const elt = this.data instanceof Uint8Array ? 1 : 4;
    const x = 16;
    const q = align16(x + this.n * this.d * elt);
    const rows = align16(q + this.d * elt);
    const out = align16(rows + this.n * 4);
    // the rows selected past a bound (float rows only: byte distances are selected in JavaScript)
    const selected = align16(out + this.n * 4);
    const end = elt === 4 ? selected + this.n * 4 : selected;
    return { x, q, rows, out, selected, pages: Math.ceil((end + 16) / PAGE) };
  }

  private kernels(): Run | null {
    if (this.#run !== undefined) return this.#run;
    const { n, d } = this;
    const bytes = this.data instanceof Uint8Array;
    const { x, q, rows: rowsAt, out, selected, pages } = this.layout();
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    } catch {
      // no address space for a copy this large: the plain loops scan the original
      return (this.#run = null);
    }
    const k = new WebAssembly.Instance(COMPILED!, { env: { memory } }).exports as unknown as Kernels;
    const buf = memory.buffer;
    (bytes ? new Uint8Array(buf, x, n * d) : new Float32Array(buf, x, n * d)).set(this.data.subarray(0, n * d));
    const qView = bytes ? new Uint8Array(buf, q, d) : new Float32Array(buf, q, d);
    const rowsView = new Int32Array(buf, rowsAt, n);
    const outView = bytes ? new Int32Array(buf, out, n) : new Float32Array(buf, out, n);
    const kernel = bytes ? k.l2_u8 : this.metric === 'cosine' ? k.dot_f32 : k.l2_f32;
    return (this.#run = (query, rows) => {
      qView.set(query);
      let m = n;
      let rowsPtr = 0;
      if (rows) {
        m = rows.length;
        rowsView.set(rows);
        rowsPtr = rowsAt;
      }
      kernel(x, rowsPtr, m, d, q, out);
      const dist = outView.subarray(0, m);
      if (bytes) return { dist };
      return { dist, select: (from, bound, above) => new Int32Array(buf, selected, k.select_f32(out, from, m, bound, above ? 1 : 0, selected)) };
    });
  }

  /** Whether the SIMD kernels scan this matrix (else the plain loops). */
  get simd(): boolean {
    return this.#run !== null;
  }

  /** Exact k nearest rows (among `rows` when given); ties keep the earlier row, as `exactKnn` does. */
  knn(q: ArrayLike<number>, k: number, rows?: ArrayLike<number>): ExactHit[] {
    const bytes = this.data instanceof Uint8Array;
    const query = bytes ? Uint8Array.from(q, (v) => Math.min(255, Math.max(0, Math.round(v)))) : q;
    // a filter of a few rows is scanned in place: no wasm copy of the whole matrix for it
    const few = rows && (rows.length > this.n || rows.length * 16 < this.n || !inRange(rows, this.n));
    const run = few ? null : this.kernels();
    if (!run) return exactKnn(this.data, this.d, query, k, this.metric, undefined, rows);
    const qn = this.metric === 'cosine' ? queryNorm(q, this.d) : 1;
    const { dist, select } = run(query, rows);
    const m = dist.length;
    const top = new TopK(Math.min(k, m));
    const cosine = this.metric === 'cosine';
    const offer = (t: number) => {
      const s = cosine ? 1 - dist[t]! / qn : dist[t]!;
      if (s < top.bound) top.push(rows ? rows[t]! : t, s);
    };
    // The first rows give a bound; past them the kernel picks out the few rows under it (SIMD compares), so this
    // loop looks at those only. Without the kernel, at every row.
    const warm = select ? Math.min(m, Math.max(256, 32 * k)) : m;
    for (let t = 0; t < warm; t++) offer(t);
    if (select && warm < m) {
      const bound = top.bound;
      // cosine: 1 − dot/qn < bound ⇔ dot > (1 − bound)·qn, loosened by 1e-6·qn (dot lies in [−qn, qn]) so that no
      // row is lost to rounding; the loop below decides on the exact distance
      const cut = cosine ? (1 - bound) * qn - 1e-6 * qn : bound;
      for (const t of select(warm, cut, cosine)) offer(t);
    }
    return top.toArray();
  }
}
