import fs from 'node:fs';
import { TopK } from '../topk.js';
import { exactKnn, type ExactHit, type Metric } from './exact.js';

/** Compiled from kernels/scan.wat by `npm run build`. */
const KERNELS = new URL('./kernels/scan.wasm', import.meta.url);
/** Byte rows longer than this could overflow the kernel's i32 lanes (4 × 2³¹ / 255²). */
const MAX_BYTE_DIM = 130_000;
const PAGE = 65_536;

interface Kernels {
  l2_u8(x: number, rows: number, n: number, d: number, q: number, out: number): void;
  l2_f32(x: number, rows: number, n: number, d: number, q: number, out: number): void;
  dot_f32(x: number, rows: number, n: number, d: number, q: number, out: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

function kernels(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(fs.readFileSync(KERNELS));
    } catch {
      // no build output or no wasm SIMD in this runtime: the plain loops answer the same
      compiled = null;
    }
  }
  return compiled;
}

/** Which implementation exact scans use here: the wasm SIMD kernels, or plain JavaScript loops. */
export function scanKernel(): 'wasm-simd' | 'js' {
  return kernels() ? 'wasm-simd' : 'js';
}

const align16 = (x: number) => Math.ceil(x / 16) * 16;

/**
 * An n × d matrix copied once into a wasm memory of its own, scanned exactly by SIMD kernels: squared L2 (floats, or
 * bytes against a byte query, exact in integers) or, for rows already L2-normalised, cosine distance 1 − cos. Same
 * answers as `exactKnn` (floats up to f32 rounding of the sums); falls back to it where the kernels are missing.
 */
export class FlatScan {
  readonly n: number;
  readonly run: ((q: ArrayLike<number>, rows: ArrayLike<number> | undefined) => ArrayLike<number>) | null;

  constructor(
    private readonly data: Float32Array | Uint8Array,
    readonly d: number,
    readonly metric: Metric,
  ) {
    this.n = Math.floor(data.length / d);
    const mod = kernels();
    const bytes = data instanceof Uint8Array;
    this.run = mod && d > 0 && (!bytes || (metric === 'l2' && d <= MAX_BYTE_DIM)) ? this.instantiate(mod, bytes) : null;
  }

  private instantiate(mod: WebAssembly.Module, bytes: boolean): (q: ArrayLike<number>, rows: ArrayLike<number> | undefined) => ArrayLike<number> {
    const { n, d } = this;
    const elt = bytes ? 1 : 4;
    // [16 reserved: a rows pointer of 0 means "all rows"] [matrix] [query] [rows] [out]
    const x = 16;
    const q = align16(x + n * d * elt);
    const rowsAt = align16(q + d * elt);
    const out = align16(rowsAt + n * 4);
    const pages = Math.ceil((out + n * 4 + 16) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as Kernels;
    const buf = memory.buffer;
    (bytes ? new Uint8Array(buf, x, n * d) : new Float32Array(buf, x, n * d)).set(this.data);
    const qView = bytes ? new Uint8Array(buf, q, d) : new Float32Array(buf, q, d);
    const rowsView = new Int32Array(buf, rowsAt, n);
    const outView = bytes ? new Int32Array(buf, out, n) : new Float32Array(buf, out, n);
    const kernel = bytes ? k.l2_u8 : this.metric === 'cosine' ? k.dot_f32 : k.l2_f32;
    return (query, rows) => {
      qView.set(query);
      let m = n;
      let rowsPtr = 0;
      if (rows) {
        m = rows.length;
        rowsView.set(rows);
        rowsPtr = rowsAt;
      }
      kernel(x, rowsPtr, m, d, q, out);
      return outView.subarray(0, m);
    };
  }

  /** Whether the SIMD kernels scan this matrix (else the plain loops). */
  get simd(): boolean {
    return this.run !== null;
  }

  /** Exact k nearest rows (among `rows` when given); ties keep the earlier row, as `exactKnn` does. */
  knn(q: ArrayLike<number>, k: number, rows?: ArrayLike<number>): ExactHit[] {
    if (!this.run) return exactKnn(this.data, this.d, q, k, this.metric, undefined, rows);
    const bytes = this.data instanceof Uint8Array;
    let qn = 1;
    if (this.metric === 'cosine') {
      let s = 0;
      for (let j = 0; j < this.d; j++) s += q[j]! * q[j]!;
      qn = Math.sqrt(s) || 1;
    }
    const dist = this.run(bytes ? Uint8Array.from(q, (v) => Math.min(255, Math.max(0, Math.round(v)))) : q, rows);
    const m = dist.length;
    const top = new TopK(Math.min(k, m));
    let bound = top.bound;
    if (this.metric === 'cosine') {
      for (let t = 0; t < m; t++) {
        const s = 1 - dist[t]! / qn;
        if (s < bound) {
          top.push(rows ? rows[t]! : t, s);
          bound = top.bound;
        }
      }
    } else {
      for (let t = 0; t < m; t++) {
        if (dist[t]! < bound) {
          top.push(rows ? rows[t]! : t, dist[t]!);
          bound = top.bound;
        }
      }
    }
    return top.toArray();
  }
}
