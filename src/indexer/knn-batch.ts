import * as tf from '@tensorflow/tfjs';
import type { Metric } from './exact.js';

/**
 * Exact top-m neighbours of many queries at once: distances by matrix products on the tfjs backend
 * (‖q‖² − 2q·x + ‖x‖², or 1 − q·x for rows already L2-normalised), top-m per query. Returns row indices.
 */
export function batchKnn(data: Float32Array, d: number, queries: Float32Array, m: number, metric: Metric, chunk = 256): Int32Array[] {
  const n = data.length / d;
  const nq = queries.length / d;
  const mm = Math.min(m, n);
  const out: Int32Array[] = [];
  const x = tf.tensor2d(data, [n, d]);
  const xn = metric === 'l2' ? tf.tidy(() => tf.sum(tf.square(x), 1)) : undefined;
  try {
    for (let s = 0; s < nq; s += chunk) {
      const e = Math.min(nq, s + chunk);
      const idx = tf.tidy(() => {
        const q = tf.tensor2d(queries.subarray(s * d, e * d), [e - s, d]);
        const dots = tf.matMul(q, x, false, true);
        // Larger score = nearer: −‖x‖² + 2q·x (‖q‖² is constant per row), or q·x.
        const score = xn ? tf.sub(tf.mul(dots, 2), xn) : dots;
        return tf.topk(score, mm).indices;
      });
      const flat = idx.dataSync() as Int32Array;
      idx.dispose();
      for (let i = 0; i < e - s; i++) out.push(flat.slice(i * mm, (i + 1) * mm));
    }
  } finally {
    x.dispose();
    xn?.dispose();
  }
  return out;
}
