import * as tf from '@tensorflow/tfjs';
import { fail } from '../errors.js';
import { progress } from '../progress.js';
import type { AutoencoderParts } from './dense.js';
import type { ModelManifest, Regularisers } from './manifest.js';
import { rng, shuffled } from './rng.js';
import type { Pixels } from '../../data/images.js';

export type LossName = ModelManifest['loss'];

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** epochs without held-out improvement before stopping */
  patience: number;
  heldOutFraction: number;
  seed: number;
  loss: LossName;
  regularisers: Regularisers;
  quiet: boolean;
  /** called after every epoch with its figures */
  onEpoch?: (e: EpochReport) => void;
  /** what the decoder must reproduce (n × targetDim) when it is not the input itself, e.g. word proportions */
  target?: { data: Float32Array; dim: number };
}

export const TRAIN_DEFAULTS: Omit<TrainOptions, 'loss' | 'regularisers'> = {
  epochs: 30,
  batchSize: 256,
  learningRate: 1e-3,
  patience: 3,
  heldOutFraction: 0.1,
  seed: 42,
  quiet: false,
};

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  heldOutLoss: number;
  samplesPerSec: number;
}

export interface TrainReport {
  epochs: number;
  bestEpoch: number;
  trainLoss: number;
  heldOutLoss: number;
  samplesPerSec: number;
  seconds: number;
  trainItems: number;
  heldOutItems: number;
  history: EpochReport[];
}

/** Reconstruction loss per item (summed over features, averaged over the batch). */
export function reconLoss(x: tf.Tensor, logits: tf.Tensor, loss: LossName): tf.Scalar {
  const b = x.shape[0]!;
  switch (loss) {
    case 'bce':
      return tf.losses.sigmoidCrossEntropy(x, logits, undefined, 0, tf.Reduction.SUM).div(b);
    case 'mse':
      return tf.sum(tf.squaredDifference(tf.sigmoid(logits), x)).div(b);
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
 * input, plus the chosen regularisers. `seed` varies per step so corruption and noise are repeatable.
 */
export function objective(parts: AutoencoderParts, x: tf.Tensor2D, loss: LossName, reg: Regularisers, seed: number, training = true, target: tf.Tensor2D = x): tf.Scalar {
  const b = x.shape[0];
  const xin = training ? corrupt(x, reg, seed) : x;
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
    const eps = tf.randomNormal(xin.shape, 0, CONTRACTIVE_SIGMA, 'float32', seed + 2);
    const z2 = parts.encoder.apply(tf.add(xin, eps), { training }) as tf.Tensor;
    total = total.add(tf.sum(tf.squaredDifference(z2, z)).div(b * CONTRACTIVE_SIGMA * CONTRACTIVE_SIGMA).mul(reg.contractive));
  }
  return total;
}

function trainableVars(parts: AutoencoderParts): tf.Variable[] {
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

/** Rows `rows` of an n × d array as floats (bytes read as v/255). */
export function gatherRows(src: Pixels, d: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let j = 0; j < rows.length; j++) {
    const o = rows[j]! * d;
    if (src instanceof Float32Array) out.set(src.subarray(o, o + d), j * d);
    else for (let t = 0; t < d; t++) out[j * d + t] = src[o + t]! / 255;
  }
  return out;
}

/**
 * Trains an autoencoder with Adam on n flat items: a seeded held-out split, progress with samples/s and ETA,
 * early stopping on the held-out loss, and the best epoch's weights restored at the end.
 */
export async function trainAutoencoder(parts: AutoencoderParts, data: Pixels, n: number, dim: number, options: TrainOptions): Promise<TrainReport> {
  const o = options;
  if (n < 2) throw fail('BAD_SOURCE', `training needs at least 2 items, got ${n}; check --source and --limit`);
  if (data.length !== n * dim) throw fail('INVALID_DIM', `training data holds ${data.length} values, expected ${n} x ${dim}`);
  const rand = rng(o.seed);
  const order = shuffled(n, rand);
  const nHeld = n >= 20 ? Math.max(1, Math.round(n * o.heldOutFraction)) : 0;
  const nTrain = n - nHeld;
  if (o.target && o.target.data.length !== n * o.target.dim) throw fail('INVALID_DIM', `training targets hold ${o.target.data.length} values, expected ${n} x ${o.target.dim}`);
  // Batches are gathered on the host from the caller's arrays (bytes stay bytes): memory holds one batch of floats.
  const trainIdx = order.subarray(0, nTrain);
  const heldIdx = nHeld > 0 ? order.subarray(nTrain) : trainIdx;
  const targetOf = o.target;
  const batchOf = (rows: ArrayLike<number>) => {
    const xb = tf.tensor2d(gatherRows(data, dim, rows), [rows.length, dim]);
    return { xb, yb: targetOf ? tf.tensor2d(gatherRows(targetOf.data, targetOf.dim, rows), [rows.length, targetOf.dim]) : xb };
  };
  const heldLoss = () => {
    let sum = 0;
    for (let s = 0; s < heldIdx.length; s += 1024) {
      const rows = heldIdx.subarray(s, Math.min(heldIdx.length, s + 1024));
      const v = tf.tidy(() => {
        const { xb, yb } = batchOf(rows);
        return objective(parts, xb, o.loss, o.regularisers, 0, false, yb).mul(rows.length);
      });
      sum += v.dataSync()[0]!;
      v.dispose();
    }
    return sum / Math.max(heldIdx.length, 1);
  };
  const vars = trainableVars(parts);
  const optimizer = tf.train.adam(o.learningRate);
  const bs = Math.min(o.batchSize, nTrain);
  const steps = Math.ceil(nTrain / bs);
  const bar = progress({ title: 'train', total: o.epochs * nTrain, unit: 'samples', fields: ['epoch', 'loss', 'held'], quiet: o.quiet });
  const history: EpochReport[] = [];
  let best = Infinity;
  let bestEpoch = 0;
  let bestTrain = NaN;
  let bestWeights: tf.Tensor[] | undefined;
  let trainSeconds = 0;
  let seen = 0;
  let step = 0;
  const t0 = performance.now();
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const perm = shuffled(nTrain, rand);
      let lossSum = 0;
      const te = performance.now();
      for (let s = 0; s < steps; s++) {
        const idx = perm.subarray(s * bs, Math.min(nTrain, (s + 1) * bs));
        const seed = o.seed * 100003 + step++;
        const cost = tf.tidy(() => {
          const { xb, yb } = batchOf(Array.from(idx, (i) => trainIdx[i]!));
          return optimizer.minimize(() => objective(parts, xb, o.loss, o.regularisers, seed, true, yb), true, vars)!;
        });
        lossSum += cost.dataSync()[0]! * idx.length;
        cost.dispose();
        seen += idx.length;
        bar.update(seen, { epoch: `${epoch}/${o.epochs}`, loss: (lossSum / Math.max(1, (s + 1) * bs)).toFixed(3), held: Number.isFinite(best) ? best.toFixed(3) : '-' });
      }
      const secs = (performance.now() - te) / 1000;
      trainSeconds += secs;
      const trainLoss = lossSum / nTrain;
      if (!Number.isFinite(trainLoss)) throw fail('INTERNAL', `training diverged (loss ${trainLoss}) at epoch ${epoch}; lower --lr`);
      const held = heldLoss();
      const rep = { epoch, trainLoss, heldOutLoss: held, samplesPerSec: nTrain / secs };
      history.push(rep);
      o.onEpoch?.(rep);
      if (held < best * (1 - 1e-4)) {
        best = held;
        bestEpoch = epoch;
        bestTrain = trainLoss;
        bestWeights?.forEach((t) => t.dispose());
        bestWeights = vars.map((v) => v.clone());
      } else if (epoch - bestEpoch >= o.patience) {
        bar.update(o.epochs * nTrain, { epoch: `${epoch}/${o.epochs} (early stop)`, loss: trainLoss.toFixed(3), held: best.toFixed(3) });
        break;
      }
    }
  } finally {
    bar.stop();
    if (bestWeights) vars.forEach((v, i) => v.assign(bestWeights![i]!));
    bestWeights?.forEach((t) => t.dispose());
    optimizer.dispose();
  }
  const epochsRun = history.length;
  return {
    epochs: epochsRun,
    bestEpoch,
    trainLoss: bestTrain,
    heldOutLoss: best,
    samplesPerSec: (epochsRun * nTrain) / Math.max(trainSeconds, 1e-9),
    seconds: (performance.now() - t0) / 1000,
    trainItems: nTrain,
    heldOutItems: nHeld,
    history,
  };
}

/** The manifest's record of a training run. */
export function trainingRecord(report: TrainReport, o: Pick<TrainOptions, 'seed' | 'batchSize'>, backend: string): ModelManifest['training'] {
  return {
    epochs: report.epochs,
    bestEpoch: report.bestEpoch,
    trainLoss: report.trainLoss,
    heldOutLoss: report.heldOutLoss,
    samplesPerSec: report.samplesPerSec,
    seconds: report.seconds,
    seed: o.seed,
    batchSize: o.batchSize,
    trainItems: report.trainItems,
    heldOutItems: report.heldOutItems,
    backend,
  };
}
