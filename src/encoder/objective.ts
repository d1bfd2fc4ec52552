import * as tf from '@tensorflow/tfjs';
import type { AutoencoderParts } from './dense.js';
import { standardiseRows } from './input-scale.js';
import type { ModelManifest, Regularisers } from './manifest.js';

export type LossName = ModelManifest['loss'];

/** Reconstruction loss per item (summed over features, averaged over the batch). */
export function reconLoss(x: tf.Tensor, logits: tf.Tensor, loss: LossName): tf.Scalar {
  const b = x.shape[0]!;
  switch (loss) {
    case 'bce':
      return tf.losses.sigmoidCrossEntropy(x, logits, undefined, 0, tf.Reduction.SUM).div(b);
    case 'mse':
      return tf.sum(tf.squaredDifference(tf.sigmoid(logits), x)).div(b);
    case 'linear-mse':
      return tf.sum(tf.squaredDifference(logits, x)).div(b);
    case 'softmax-ce':
      return tf.neg(tf.sum(tf.mul(x, tf.logSoftmax(logits)))).div(b);
  }
}

const CONTRACTIVE_SIGMA = 0.01;

/**
 * The corrupted input of one training batch: shifted, masked, dropped out (survivors scaled by 1/(1-level), so the
 * expected input is the clean one) or with added Gaussian noise, as the regularisers ask. `seed` varies per step.
 */
export function corrupt(x: tf.Tensor2D, reg: Regularisers, seed: number): tf.Tensor2D {
  const b = x.shape[0];
  let xin: tf.Tensor2D = x;
  if (reg.shift) {
    const { pixels, width, height, channels } = reg.shift;
    const d = tf.clipByValue(tf.round(tf.randomUniform([b, 2], -pixels - 0.5, pixels + 0.5, 'float32', seed + 3)), -pixels, pixels);
    const one = tf.ones([b, 1]);
    const zero = tf.zeros([b, 1]);
    const t = tf.concat([one, zero, d.slice([0, 0], [b, 1]), zero, one, d.slice([0, 1], [b, 1]), zero, zero], 1) as tf.Tensor2D;
    xin = tf.image.transform(x.reshape([b, height, width, channels]) as tf.Tensor4D, t, 'nearest', 'constant', 0).reshape([b, width * height * channels]);
  }
  if (reg.denoise && reg.denoise.level > 0) {
    const { kind, level } = reg.denoise;
    if (kind === 'gaussian') return tf.add(xin, tf.randomNormal(x.shape, 0, level, 'float32', seed));
    const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), level), 'float32');
    return tf.mul(xin, kind === 'dropout' ? keep.div(Math.max(1 - level, 1e-6)) : keep);
  }
  return xin;
}

/**
 * The training objective for one batch: reconstruction of the target (by default the clean input) from a corrupted
 * input, plus the chosen regularisers. `seed` varies per step so corruption and noise are repeatable. With
 * `linear-mse` (a standardised model) the batch holds pixels in [0,1] as for any image model: they are corrupted as
 * pixels (masked to black, noise in pixel units, clipped to [0,1] as a noisy image would come), then input and target
 * are standardised. (Dropout's rescaling of the survivors is then mostly undone: on such a model it acts as masking.)
 */
export function objective(parts: AutoencoderParts, x: tf.Tensor2D, loss: LossName, reg: Regularisers, seed: number, training = true, target: tf.Tensor2D = x): tf.Scalar {
  const b = x.shape[0];
  const standardise = loss === 'linear-mse';
  // a noisy image's pixels stay in [0,1]: so does a standardised model's corrupted copy
  const corrupted = training ? (standardise ? tf.clipByValue(corrupt(x, reg, seed), 0, 1) : corrupt(x, reg, seed)) : x;
  const xin = standardise ? standardiseRows(corrupted) : corrupted;
  if (standardise) target = standardiseRows(target);
  const z = parts.encoder.apply(xin, { training }) as tf.Tensor;
  let code = z;
  if (reg.binaryBits && reg.binarize !== 'median') {
    // Semantic hashing: noise before the sigmoid forces the code units to saturate towards 0/1.
    code = tf.sigmoid(training && (reg.binaryNoise ?? 4) > 0 ? tf.add(z, tf.randomNormal(z.shape, 0, reg.binaryNoise ?? 4, 'float32', seed + 1)) : z);
  }
  const logits = parts.decoder.apply(code, { training }) as tf.Tensor;
  let total: tf.Scalar = reconLoss(target, logits, loss);
  if (training && reg.sparse) total = total.add(tf.sum(tf.abs(code)).div(b).mul(reg.sparse));
  if (training && reg.contractive) {
    // E_eps ||f(x + s*eps) - f(x)||^2 / s^2 -> ||J_f(x)||_F^2 as s -> 0 (Hutchinson-style estimator, any encoder).
    // the Jacobian with respect to the pixels: a standardised model's step is taken before standardising
    const eps = tf.randomNormal(xin.shape, 0, CONTRACTIVE_SIGMA, 'float32', seed + 2);
    const stepped = standardise ? standardiseRows(tf.add(corrupted, eps)) : tf.add(xin, eps);
    const z2 = parts.encoder.apply(stepped, { training }) as tf.Tensor;
    total = total.add(tf.sum(tf.squaredDifference(z2, z)).div(b * CONTRACTIVE_SIGMA * CONTRACTIVE_SIGMA).mul(reg.contractive));
  }
  return total;
}

/** The variables an optimiser updates, in a fixed order (the same in every copy of one architecture). */
export function trainableVars(parts: AutoencoderParts): tf.Variable[] {
  return [...parts.encoder.trainableWeights, ...parts.decoder.trainableWeights].map((w) => w.read() as tf.Variable);
}

/** Mean reconstruction loss per item over a whole set, in batches, without noise. */
export function evaluateLoss(parts: AutoencoderParts, x: tf.Tensor2D, loss: LossName, reg: Regularisers, batch = 1024, target: tf.Tensor2D = x): number {
  const n = x.shape[0];
  let sum = 0;
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const v = tf.tidy(() => objective(parts, x.slice([s, 0], [e - s, -1]), loss, reg, 0, false, target.slice([s, 0], [e - s, -1])).mul(e - s));
    sum += v.dataSync()[0]!;
    v.dispose();
  }
  return sum / Math.max(n, 1);
}
