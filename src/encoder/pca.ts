import * as tf from '@tensorflow/tfjs';
import { rng } from './rng.js';
import type { SparseVector } from './sparse.js';

/** A linear projection onto the top principal directions (PCA; LSA when fit on TF-IDF vectors). */
export interface Pca {
  dim: number;
  k: number;
  mean: Float32Array;
  /** k × dim, rows are unit principal directions */
  components: Float32Array;
  /** variance along each component */
  variances: Float64Array;
}

/** Jacobi eigen-decomposition of a small symmetric matrix (row-major m × m); returns values and column vectors. */
function jacobiEigen(a: Float64Array, m: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += a[p * m + q]! ** 2;
    if (off < 1e-20) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q]!;
        if (Math.abs(apq) < 1e-30) continue;
        const theta = (a[q * m + q]! - a[p * m + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < m; r++) {
          const arp = a[r * m + p]!;
          const arq = a[r * m + q]!;
          a[r * m + p] = c * arp - s * arq;
          a[r * m + q] = s * arp + c * arq;
        }
        for (let r = 0; r < m; r++) {
          const apr = a[p * m + r]!;
          const aqr = a[q * m + r]!;
          a[p * m + r] = c * apr - s * aqr;
          a[q * m + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < m; r++) {
          const vrp = v[r * m + p]!;
          const vrq = v[r * m + q]!;
          v[r * m + p] = c * vrp - s * vrq;
          v[r * m + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  const values = new Float64Array(m);
  for (let i = 0; i < m; i++) values[i] = a[i * m + i]!;
  return { values, vectors: v };
}

/** Orthonormalises the columns of a dim × m matrix in place (modified Gram-Schmidt). */
function orthonormalise(q: Float64Array, dim: number, m: number): void {
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < j; i++) {
      let dot = 0;
      for (let r = 0; r < dim; r++) dot += q[r * m + i]! * q[r * m + j]!;
      for (let r = 0; r < dim; r++) q[r * m + j]! -= dot * q[r * m + i]!;
    }
    let nrm = 0;
    for (let r = 0; r < dim; r++) nrm += q[r * m + j]! ** 2;
    nrm = Math.sqrt(nrm) || 1;
    for (let r = 0; r < dim; r++) q[r * m + j]! /= nrm;
  }
}

/**
 * Top-k eigenvectors of a dim × dim symmetric operator given by its product with a dim × m block (`apply`), by
 * randomized subspace iteration and a Rayleigh-Ritz step.
 */
function topEigen(dim: number, k: number, apply: (q: Float64Array, m: number) => Float64Array, o: { iterations?: number; seed?: number }): { k: number; components: Float32Array; values: Float64Array } {
  const m = Math.min(dim, k + 10);
  const rand = rng(o.seed ?? 7);
  let q: Float64Array = new Float64Array(dim * m).map(() => rand() - 0.5);
  orthonormalise(q, dim, m);
  for (let it = 0; it < (o.iterations ?? 12); it++) {
    q = apply(q, m);
    orthonormalise(q, dim, m);
  }
  const cq = apply(q, m);
  const small = new Float64Array(m * m);
  for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) {
    let s = 0;
    for (let r = 0; r < dim; r++) s += q[r * m + a]! * cq[r * m + b]!;
    small[a * m + b] = s;
  }
  const { values, vectors } = jacobiEigen(small, m);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => values[b]! - values[a]!).slice(0, Math.min(k, m));
  const components = new Float32Array(order.length * dim);
  order.forEach((col, c) => {
    for (let r = 0; r < dim; r++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += q[r * m + j]! * vectors[j * m + col]!;
      components[c * dim + r] = s;
    }
  });
  return { k: order.length, components, values: Float64Array.from(order.map((c) => values[c]!)) };
}

/**
 * Fits PCA with k components on n rows by randomized subspace iteration on the covariance matrix, then a
 * Rayleigh-Ritz step. `center: false` gives truncated SVD directions (LSA).
 */
export function fitPca(data: Float32Array, n: number, dim: number, k: number, o: { center?: boolean; iterations?: number; seed?: number } = {}): Pca {
  const center = o.center ?? true;
  const mean = new Float32Array(dim);
  if (center) {
    for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += data[i * dim + j]!;
    for (let j = 0; j < dim; j++) mean[j]! /= n;
  }
  const cov = tf.tidy(() => {
    const x = tf.sub(tf.tensor2d(data.subarray(0, n * dim), [n, dim]), tf.tensor1d(mean));
    return tf.matMul(x, x, true, false).div(n);
  });
  try {
    const e = topEigen(dim, k, (q, m) => Float64Array.from(tf.tidy(() => tf.matMul(cov, tf.tensor2d(Float32Array.from(q), [dim, m])).dataSync())), o);
    return { dim, k: e.k, mean, components: e.components, variances: e.values };
  } finally {
    cov.dispose();
  }
}

/**
 * LSA (truncated SVD, uncentred) of n sparse rows over a vocabulary of `dim` words, without ever making the
 * n × dim matrix dense: each step multiplies by X and Xᵀ, costing the non-zeros (scikit-learn's TruncatedSVD on
 * the full vocabulary).
 */
export function fitSparseLsa(row: (i: number) => SparseVector, n: number, dim: number, k: number, o: { iterations?: number; seed?: number } = {}): Pca {
  const apply = (q: Float64Array, m: number): Float64Array => {
    const out = new Float64Array(dim * m);
    const y = new Float64Array(m);
    for (let r = 0; r < n; r++) {
      const v = row(r);
      y.fill(0);
      for (let p = 0; p < v.index.length; p++) {
        const base = v.index[p]! * m;
        const w = v.value[p]!;
        for (let j = 0; j < m; j++) y[j]! += w * q[base + j]!;
      }
      for (let p = 0; p < v.index.length; p++) {
        const base = v.index[p]! * m;
        const w = v.value[p]! / n;
        for (let j = 0; j < m; j++) out[base + j]! += w * y[j]!;
      }
    }
    return out;
  };
  const e = topEigen(dim, k, apply, o);
  return { dim, k: e.k, mean: new Float32Array(dim), components: e.components, variances: e.values };
}

/** Projects sparse rows onto uncentred components (LSA): n × k. */
export function sparseProject(p: Pca, rows: readonly SparseVector[]): Float32Array {
  const out = new Float32Array(rows.length * p.k);
  rows.forEach((v, i) => {
    for (let c = 0; c < p.k; c++) {
      let s = 0;
      for (let t = 0; t < v.index.length; t++) if (v.index[t]! < p.dim) s += v.value[t]! * p.components[c * p.dim + v.index[t]!]!;
      out[i * p.k + c] = s;
    }
  });
  return out;
}

/** Projects n rows onto the components: n × k. */
export function pcaProject(p: Pca, data: Float32Array, n: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.sub(tf.tensor2d(data.subarray(0, n * p.dim), [n, p.dim]), tf.tensor1d(p.mean));
    return tf.matMul(x, tf.tensor2d(p.components, [p.k, p.dim]), false, true).dataSync() as Float32Array;
  });
}

/** Reconstructs projected rows back to the input space: n × dim. */
export function pcaReconstruct(p: Pca, z: Float32Array, n: number): Float32Array {
  return tf.tidy(() => tf.add(tf.matMul(tf.tensor2d(z, [n, p.k]), tf.tensor2d(p.components, [p.k, p.dim])), tf.tensor1d(p.mean)).dataSync() as Float32Array);
}
