import { TopK } from '../topk.js';
import type { Regularisers } from './manifest.js';

/** Packs a code of probabilities into bits (1 where > 0.5), 8 bits per byte, most significant first. */
export function packBits(code: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(code.length / 8));
  for (let i = 0; i < code.length; i++) if (code[i]! > 0.5) out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

export function unpackBits(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bits);
  for (let i = 0; i < bits; i++) out[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return out;
}

/** Set bits of a 32-bit word. */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Packed codes of n items as 32-bit words (words per item = ceil(bits/32)), for a fast popcount scan. */
export class PackedCodes {
  readonly words: number;
  constructor(
    readonly bits: number,
    readonly data: Uint32Array,
    readonly n: number,
  ) {
    this.words = Math.ceil(bits / 32);
  }

  /** Builds from byte strings as packBits writes them. */
  static fromBytes(rows: Uint8Array[], bits: number): PackedCodes {
    const words = Math.ceil(bits / 32);
    const data = new Uint32Array(rows.length * words);
    rows.forEach((r, i) => data.set(toWords(r, words), i * words));
    return new PackedCodes(bits, data, rows.length);
  }

  /** Calls `visit` with each row (among `rows` when given) and its Hamming distance to the query. */
  private scan(query: Uint32Array, rows: ArrayLike<number> | undefined, visit: (i: number, h: number) => void): void {
    const m = rows ? rows.length : this.n;
    const w = this.words;
    const d = this.data;
    for (let t = 0; t < m; t++) {
      const i = rows ? rows[t]! : t;
      let h = 0;
      for (let j = 0; j < w; j++) h += popcount32((d[i * w + j]! ^ query[j]!) >>> 0);
      visit(i, h);
    }
  }

  /** Exact k nearest by Hamming distance (ties by position), among `rows` when given; O(n·words + n·log k). */
  search(query: Uint32Array, k: number, rows?: ArrayLike<number>): { index: number; distance: number }[] {
    const top = new TopK(Math.min(k, rows ? rows.length : this.n));
    this.scan(query, rows, (i, h) => {
      if (h < top.bound) top.push(i, h);
    });
    return top.toArray();
  }

  /** Every row (among `rows` when given) within Hamming distance `max` of the query. */
  within(query: Uint32Array, max: number, rows?: ArrayLike<number>): { index: number; distance: number }[] {
    const out: { index: number; distance: number }[] = [];
    this.scan(query, rows, (i, h) => {
      if (h <= max) out.push({ index: i, distance: h });
    });
    return out;
  }
}

/** Packed bytes (MSB-first) to big-endian-assembled 32-bit words, zero-padded. */
export function toWords(bytes: Uint8Array, words: number): Uint32Array {
  const out = new Uint32Array(words);
  for (let b = 0; b < bytes.length; b++) out[b >> 2]! |= bytes[b]! << (24 - 8 * (b & 3));
  return out;
}

export function hamming(a: Uint8Array, b: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!;
    while (x) {
      h += x & 1;
      x >>= 1;
    }
  }
  return h;
}

/** Fills in how a binary code is made when only its bit count was asked for (noise: with the paper's noise 4). */
export function binaryDefaults(r: Regularisers, binarize: 'noise' | 'median'): Regularisers {
  if (!r.binaryBits) return r;
  const how = r.binarize ?? binarize;
  return { ...r, binarize: how, ...(how === 'noise' ? { binaryNoise: r.binaryNoise ?? 4 } : {}) };
}
