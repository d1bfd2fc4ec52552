import { toFloats, type Pixels } from '../../data/images.js';

/**
 * How pixels become a network's input: `0-1` (bytes read as v/255, sigmoid output, cross-entropy) or `standardised`
 * (each image shifted and scaled to mean 0 and standard deviation 1 over all its values, linear output, squared error).
 * Standardising takes an image's brightness and contrast out of what the code must hold.
 */
export const INPUT_SCALES = ['0-1', 'standardised'] as const;
export type InputScale = (typeof INPUT_SCALES)[number];

/**
 * Added to every image's standard deviation before dividing: a flat image becomes all zeros, and the faint noise of a
 * nearly flat one (a JPEG of sky) is not blown up to full contrast.
 */
const SD_FLOOR = 0.01;

/** Each image's mean and (floored) standard deviation, the numbers that undo its standardisation. */
export interface ImageStats {
  mean: Float32Array;
  sd: Float32Array;
}

/** Each of the n images' mean and floored standard deviation (x is n × dim; bytes read as v/255). */
export function imageStats(x: Pixels, n: number, dim: number): ImageStats {
  const k = x instanceof Float32Array ? 1 : 1 / 255;
  const stats = { mean: new Float32Array(n), sd: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    let s = 0;
    let s2 = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      const v = x[j]! * k;
      s += v;
      s2 += v * v;
    }
    const mean = s / dim;
    stats.mean[i] = mean;
    stats.sd[i] = Math.sqrt(Math.max(0, s2 / dim - mean * mean)) + SD_FLOOR;
  }
  return stats;
}

/** The n images of `x` (n × dim, read as [0,1]) standardised, in a new array, with the stats that undo it. */
export function standardised(x: Pixels, n: number, dim: number): { values: Float32Array; stats: ImageStats } {
  const stats = imageStats(x, n, dim);
  const f = toFloats(x);
  const values = f === x ? Float32Array.from(f) : f;
  for (let i = 0; i < n; i++) {
    const m = stats.mean[i]!;
    const sd = stats.sd[i]!;
    for (let j = i * dim; j < (i + 1) * dim; j++) values[j] = (values[j]! - m) / sd;
  }
  return { values, stats };
}

/** Standardised outputs (n × dim) back to pixels in [0,1], in place, with each image's own stats. */
export function destandardise(y: Float32Array, n: number, dim: number, stats: ImageStats): Float32Array {
  for (let i = 0; i < n; i++) {
    const m = stats.mean[i]!;
    const sd = stats.sd[i]!;
    for (let j = i * dim; j < (i + 1) * dim; j++) y[j] = Math.min(1, Math.max(0, y[j]! * sd + m));
  }
  return y;
}

/** The mean of the images' means and of their standard deviations: how a code with no image of its own is shown. */
export function typicalStats(stats: ImageStats): { mean: number; sd: number } {
  const avg = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / Math.max(a.length, 1);
  return { mean: avg(stats.mean), sd: avg(stats.sd) };
}
