import * as tf from '@tensorflow/tfjs';
import { toFloats, type Pixels } from '../../data/images.js';

/**
 * How pixels become a network's input: `0-1` (bytes read as v/255, sigmoid output, cross-entropy) or `standardised`
 * (each image shifted and scaled to mean 0 and standard deviation 1 over all its values, linear output, squared error).
 * Standardising takes an image's brightness and contrast out of what the code must hold; hue stays (a flat red and a
 * flat blue image differ), but every flat grey image, black and white included, becomes the same all-zero input.
 */
export const INPUT_SCALES = ['0-1', 'standardised'] as const;
export type InputScale = (typeof INPUT_SCALES)[number];

/**
 * Added to every image's standard deviation before dividing: a flat image becomes all zeros, and the faint noise of a
 * nearly flat one (a JPEG of sky) is not blown up to full contrast.
 */
const SD_FLOOR = 0.01;

/** Each image's mean and (floored) standard deviation. */
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
    for (let j = i * dim; j < (i + 1) * dim; j++) s += x[j]! * k;
    const mean = s / dim;
    let s2 = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) s2 += (x[j]! * k - mean) ** 2;
    stats.mean[i] = mean;
    stats.sd[i] = Math.sqrt(s2 / dim) + SD_FLOOR;
  }
  return stats;
}

/** The rows (images, read as [0,1]) of a batch standardised: what a standardised model's encoder is given. */
export function standardiseRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, 1, true);
    return tf.div(tf.sub(x, mean), tf.add(tf.sqrt(variance), SD_FLOOR));
  });
}

/** The n images of `x` (n × dim, read as [0,1]) standardised, in a new array (as standardiseRows, on the host). */
export function standardised(x: Pixels, n: number, dim: number): Float32Array {
  const stats = imageStats(x, n, dim);
  const f = toFloats(x);
  const values = f === x ? Float32Array.from(f) : f;
  for (let i = 0; i < n; i++) {
    const m = stats.mean[i]!;
    const sd = stats.sd[i]!;
    for (let j = i * dim; j < (i + 1) * dim; j++) values[j] = (values[j]! - m) / sd;
  }
  return values;
}

/** A value clamped to [0,1]; NaN (a broken output) becomes 0. */
function unit(v: number): number {
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

/**
 * Standardised outputs (n × dim) as pixels in [0,1] with the brightness and contrast (mean and standard deviation) of
 * the n images `like`, in place. A least-squares fit of each output to its image was measured too, for denoising
 * (where a noisy image's deviation carries the noise): on 300 noisy emoji it was further from the clean images
 * (σ 0.3: 86.5 against 79.6; σ 0.1: 61.4 against 60.6, squared error per image), as it shrinks a partial output.
 */
export function restoreLike(y: Float32Array, n: number, dim: number, like: Pixels): Float32Array {
  const stats = imageStats(like, n, dim);
  for (let i = 0; i < n; i++) {
    const m = stats.mean[i]!;
    const sd = stats.sd[i]!;
    for (let j = i * dim; j < (i + 1) * dim; j++) y[j] = unit(m + sd * y[j]!);
  }
  return y;
}

/** Standardised outputs (n × dim) as pixels in [0,1] with one brightness and contrast for all, in place. */
export function restoreTypical(y: Float32Array, typical: { mean: number; sd: number }): Float32Array {
  for (let j = 0; j < y.length; j++) y[j] = unit(y[j]! * typical.sd + typical.mean);
  return y;
}

/** The mean of the images' means and of their standard deviations: how a code with no image of its own is shown. */
export function typicalStats(stats: ImageStats): { mean: number; sd: number } {
  const avg = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / Math.max(a.length, 1);
  return { mean: avg(stats.mean), sd: avg(stats.sd) };
}
