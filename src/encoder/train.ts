import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { fail } from '../errors.js';
import { log, progress } from '../progress.js';
import { backendName } from './backend.js';
import { defaultTrainThreads, GradientReplicas, packTensors, shardSeed, type LocalModel, type Shard } from './data-parallel.js';
import type { AutoencoderParts } from './dense.js';
import type { ArchConfig, ModelManifest, Regularisers } from './manifest.js';
import { objective, trainableVars, type LossName } from './objective.js';
import { rng, shuffled } from './rng.js';
import type { Pixels } from '../../data/images.js';

export type { LossName } from './objective.js';

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
  /** the architecture `parts` were built from: with it, training can split each batch over several threads */
  arch?: ArchConfig;
  /** threads that train (data-parallel, synchronous); default two on wasm for runs big enough to gain (see MIN_SHARD) */
  threads?: number;
}

/** Below this many samples (items × epochs) starting training threads costs more than it saves. */
const MIN_PARALLEL_SAMPLES = 50_000;
/**
 * Fewest rows per shard: each step adds a pass over every weight (gradients packed, one Adam update), which a dense
 * model's shard must outweigh (on 2 cores: batch 64 split in two 0.96× one thread, 128 1.1×, 256 1.27×); a conv model
 * does far more work per weight (batch 64 split in two: 1.8×). Threads asked for explicitly only keep shards of 16.
 */
const MIN_SHARD = { dense: 64, conv: 16, asked: 16 };

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
  /** threads that trained */
  threads: number;
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
  if (n < 2) throw fail('BAD_SOURCE', `training needs at least 2 items, got ${n}; check --source, --limit and --train-limit`);
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
  const bs = Math.min(o.batchSize, nTrain);
  const steps = Math.ceil(nTrain / bs);
  const threads = trainThreads(o, nTrain, bs);
  if (threads > os.availableParallelism()) log(`training on ${threads} threads with ${os.availableParallelism()} cores: threads beyond the cores only slow it down`, o.quiet);
  const replicas = threads > 1 && o.arch ? await GradientReplicas.start(threads - 1, { arch: o.arch, loss: o.loss, regularisers: o.regularisers, learningRate: o.learningRate, backend: backendName() }, packTensors(vars)) : undefined;
  // one thread: tfjs's Adam; several: the replicas' one pass
  const optimizer = replicas ? undefined : tf.train.adam(o.learningRate);
  const local: LocalModel = { parts, vars, loss: o.loss, regularisers: o.regularisers };
  // Shard t of a batch: rows split as evenly as may be (never an empty one); shard 0 keeps the one-thread seed.
  const shardsOf = (rows: number[], seed: number, most: number): Shard[] => {
    const count = Math.min(most, rows.length);
    return Array.from({ length: count }, (_, t) => {
      const part = rows.slice(Math.floor((t * rows.length) / count), Math.floor(((t + 1) * rows.length) / count));
      return { x: gatherRows(data, dim, part), ...(targetOf ? { y: gatherRows(targetOf.data, targetOf.dim, part) } : {}), n: part.length, seed: shardSeed(seed, t) };
    });
  };
  const stepLoss = async (rows: number[], seed: number): Promise<number> => {
    if (replicas) return replicas.step(local, shardsOf(rows, seed, replicas.size + 1));
    const cost = tf.tidy(() => {
      const { xb, yb } = batchOf(rows);
      return optimizer!.minimize(() => objective(parts, xb, o.loss, o.regularisers, seed, true, yb), true, vars)!;
    });
    const v = cost.dataSync()[0]!;
    cost.dispose();
    return v;
  };
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
  // the held-out loss is measured after each epoch: the bar says which epoch it belongs to, and the best so far
  const heldText = () => {
    const last = history.at(-1);
    if (!last) return '-';
    return `${last.heldOutLoss.toFixed(3)}@e${last.epoch}${bestEpoch > 0 && bestEpoch !== last.epoch ? ` (best ${best.toFixed(3)}@e${bestEpoch})` : ''}`;
  };
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const perm = shuffled(nTrain, rand);
      let lossSum = 0;
      const te = performance.now();
      for (let s = 0; s < steps; s++) {
        const idx = perm.subarray(s * bs, Math.min(nTrain, (s + 1) * bs));
        const seed = o.seed * 100003 + step++;
        lossSum += (await stepLoss(Array.from(idx, (i) => trainIdx[i]!), seed)) * idx.length;
        seen += idx.length;
        bar.update(seen, { epoch: `${epoch}/${o.epochs}`, loss: (lossSum / Math.max(1, (s + 1) * bs)).toFixed(3), held: heldText() });
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
        bar.update(o.epochs * nTrain, { epoch: `${epoch}/${o.epochs} (early stop)`, loss: trainLoss.toFixed(3), held: heldText() });
        break;
      }
      bar.update(seen, { held: heldText() });
    }
  } finally {
    bar.stop();
    if (bestWeights) vars.forEach((v, i) => v.assign(bestWeights![i]!));
    bestWeights?.forEach((t) => t.dispose());
    optimizer?.dispose();
    await replicas?.close();
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
    threads: replicas ? replicas.size + 1 : 1,
  };
}

/** Threads for one run: as asked, else two (defaultTrainThreads) for runs big enough to gain (see MIN_SHARD). */
function trainThreads(o: TrainOptions, nTrain: number, batch: number): number {
  if (!o.arch) return 1;
  if (o.threads !== undefined) return Math.max(1, Math.min(o.threads, Math.floor(batch / MIN_SHARD.asked)));
  if (nTrain * o.epochs < MIN_PARALLEL_SAMPLES) return 1;
  return Math.max(1, Math.min(defaultTrainThreads(backendName()), Math.floor(batch / MIN_SHARD[o.arch.arch])));
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
    threads: report.threads,
  };
}
