import { TopK } from '../topk.js';

export type Metric = 'l2' | 'cosine';

export interface ExactHit {
  /** row index in the matrix */
  index: number;
  distance: number;
}

/**
 * Exact k nearest rows of an n × d matrix (floats, or bytes with a byte query) by brute force: squared L2, or cosine distance (1 - cos)
 * over rows that the caller has L2-normalised. `skip` drops rows (the query itself, its own group); `rows` scans only
 * those rows (a filter's).
 */
export function exactKnn(data: Float32Array | Uint8Array, d: number, q: ArrayLike<number>, k: number, metric: Metric, skip?: (index: number) => boolean, rows?: ArrayLike<number>): ExactHit[] {
  const m = rows ? rows.length : Math.floor(data.length / d);
  const top = new TopK(Math.min(k, m));
  const qn = metric === 'cosine' ? queryNorm(q, d) : 1;
  for (let t = 0; t < m; t++) {
    const i = rows ? rows[t]! : t;
    if (skip && skip(i)) continue;
    const o = i * d;
    let s = 0;
    if (metric === 'l2') {
      for (let j = 0; j < d; j++) {
        const t = data[o + j]! - q[j]!;
        s += t * t;
      }
    } else {
      for (let j = 0; j < d; j++) s += data[o + j]! * q[j]!;
      s = 1 - s / qn;
    }
    if (s < top.bound) top.push(i, s);
  }
  return top.toArray();
}

/** The L2 norm of a query's first d values (1 for a zero query, so that dividing by it is safe). */
export function queryNorm(q: ArrayLike<number>, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += q[j]! * q[j]!;
  return Math.sqrt(s) || 1;
}

/** L2-normalises each row in place (for cosine search). */
export function normaliseRows(data: Float32Array, d: number): Float32Array {
  for (let o = 0; o < data.length; o += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += data[o + j]! * data[o + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) data[o + j]! *= inv;
  }
  return data;
}

/** Distances of a query to chosen rows of an n × d matrix: squared L2, or 1 − cosine (`unitRows` L2-normalised). */
export function distancesTo(items: ArrayLike<number>, d: number, metric: Metric, unitRows = false): (q: ArrayLike<number>, rows: Int32Array) => Float32Array {
  return (q, rows) => {
    if (metric === 'cosine') {
      let qn = 0;
      for (let j = 0; j < d; j++) qn += q[j]! * q[j]!;
      const inv = qn > 0 ? 1 / Math.sqrt(qn) : 0;
      return Float32Array.from(rows, (r) => {
        let s = 0;
        let rn = 0;
        for (let j = 0; j < d; j++) {
          s += q[j]! * items[r * d + j]!;
          if (!unitRows) rn += items[r * d + j]! ** 2;
        }
        return 1 - s * inv * (unitRows ? 1 : rn > 0 ? 1 / Math.sqrt(rn) : 0);
      });
    }
    return Float32Array.from(rows, (r) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (items[r * d + j]! - q[j]!) ** 2;
      return s;
    });
  };
}
