import { imageDim, toFloats, type ImageSet, type Pixels } from '../../data/images.js';
import { fail } from '../errors.js';
import { counted, log } from '../progress.js';
import { backendName } from './backend.js';
import { CONV_DEFAULTS, CONV_TRAINING } from './conv.js';
import { DENSE_DEFAULTS, type DenseConfig } from './dense.js';
import type { ArchConfig, ModelManifest, Regularisers } from './manifest.js';
import { binaryDefaults } from './binary.js';
import { imageStats, typicalStats, type InputScale } from './input-scale.js';
import { buildParts, TrainedModel } from './model.js';
import { TRAIN_DEFAULTS, trainAutoencoder, trainingRecord, type LossName, type TrainOptions } from './train.js';

export type ArchName = 'dense' | 'conv';

export interface ImageModelOptions extends Partial<Omit<TrainOptions, 'regularisers' | 'loss' | 'arch'>> {
  arch?: ArchName;
  codeDim?: number;
  hidden?: number[];
  activation?: DenseConfig['activation'];
  loss?: LossName;
  regularisers?: Regularisers;
  /** how pixels become the network's input (default: defaultInputScale) */
  inputScale?: InputScale;
}

/**
 * The input scale a model gets when none is asked for: standardised for colour images, 0-1 for grey ones. On the
 * colour emoji set standardising raised P@10 from 0.544 to 0.552 (dense 32; bench:colour has the latest figures);
 * digits and Fashion-MNIST keep the scale their published figures were measured with.
 */
export function defaultInputScale(set: Pick<ImageSet, 'channels'>): InputScale {
  return set.channels === 3 ? 'standardised' : '0-1';
}

/** The loss of an input scale: cross-entropy or squared error of a sigmoid for 0-1, squared error of a linear output for standardised. */
function lossFor(scale: InputScale, asked: LossName | undefined): LossName {
  if (scale === '0-1') {
    if (asked !== undefined && asked !== 'bce' && asked !== 'mse') throw fail('INVALID_ARGUMENT', `loss '${asked}' does not fit pixels read as 0-1; use bce or mse, or --input-scale standardised`);
    return asked ?? 'bce';
  }
  if (asked !== undefined && asked !== 'linear-mse') throw fail('INVALID_ARGUMENT', `--loss ${asked} needs pixels read as 0-1; a standardised input is reproduced with the squared error of a linear output: drop --loss or pass --input-scale 0-1`);
  return 'linear-mse';
}

export function imageArch(set: Pick<ImageSet, 'width' | 'height' | 'channels'>, o: ImageModelOptions): ArchConfig {
  const arch = o.arch ?? 'dense';
  const codeDim = o.regularisers?.binaryBits ?? o.codeDim ?? DENSE_DEFAULTS.codeDim;
  if (arch === 'dense') return { ...DENSE_DEFAULTS, inputDim: imageDim(set), codeDim, hidden: o.hidden ?? DENSE_DEFAULTS.hidden, activation: o.activation ?? DENSE_DEFAULTS.activation };
  if (arch === 'conv') {
    if (set.width !== set.height) throw fail('INVALID_ARGUMENT', `--arch conv takes square images; this source has ${set.width}x${set.height}`);
    return { ...CONV_DEFAULTS, width: set.width, height: set.height, channels: set.channels, codeDim };
  }
  throw fail('INVALID_ARGUMENT', `unknown --arch '${String(arch)}'; use dense or conv`);
}

/**
 * Fewest optimizer steps per epoch when the batch size is not given: a small folder gets smaller batches instead of
 * a few dozen updates in all (1,911 emoji at batch 256: 7 steps an epoch, P@10 0.470; at 64: 0.544). Sets of
 * 6,400+ items keep the family's batch size.
 */
export const MIN_STEPS_PER_EPOCH = 25;

/** The family's batch size, made smaller for a small training set so that every epoch takes MIN_STEPS_PER_EPOCH steps. */
export function batchSizeFor(nTrain: number, familyBatch: number): number {
  return Math.max(16, Math.min(familyBatch, Math.floor(nTrain / MIN_STEPS_PER_EPOCH)));
}

/** Trains an image autoencoder on a set (labels unused) and returns it with its manifest. */
export async function fitImageModel(set: ImageSet, o: ImageModelOptions = {}): Promise<TrainedModel> {
  const family = { ...TRAIN_DEFAULTS, ...(o.arch === 'conv' ? CONV_TRAINING : {}) };
  const nTrain = Math.round(set.keys.length * (1 - (o.heldOutFraction ?? family.heldOutFraction)));
  const opts = { ...family, batchSize: batchSizeFor(nTrain, family.batchSize), ...o };
  const arch = imageArch(set, o);
  // Median cut by default: on colour images (emoji) noise-trained bits collapsed (P@10 0.044 vs 0.516 median);
  // on digits the two are within a point (0.846 noise, 0.838 median).
  const given = binaryDefaults(o.regularisers ?? {}, 'median');
  // A shift request carries only its size; the image shape comes from the source.
  const regularisers = given.shift ? { ...given, shift: { ...given.shift, width: set.width, height: set.height, channels: set.channels } } : given;
  const inputScale = o.inputScale ?? defaultInputScale(set);
  const loss = lossFor(inputScale, o.loss);
  const parts = buildParts(arch, opts.seed);
  const dim = imageDim(set);
  log(`training ${arch.arch} autoencoder (code ${arch.codeDim}${regularisers.binaryBits ? ' binary' : ''}, input ${inputScale}) on ${set.keys.length} items of ${set.source}, backend ${backendName()}`, opts.quiet);
  const report = await trainAutoencoder(parts, set.pixels, set.keys.length, dim, { ...opts, loss, regularisers, arch });
  log(
    `trained ${counted(report.epochs, 'epoch')} in ${report.seconds.toFixed(1)}s (${report.samplesPerSec.toFixed(0)} samples/s); best held-out loss ${report.heldOutLoss.toFixed(3)} at epoch ${report.bestEpoch}`,
    opts.quiet,
  );
  const manifest: ModelManifest = {
    format: 'latentdex-model',
    version: 1,
    kind: 'image',
    architecture: arch,
    input: {
      type: 'pixels',
      width: set.width,
      height: set.height,
      channels: set.channels,
      scale: inputScale,
      ...(inputScale === 'standardised' ? { typical: typicalStats(imageStats(set.pixels, set.keys.length, dim)) } : {}),
      ...(set.fit ? { fit: set.fit } : {}),
      ...(set.background ? { background: set.background } : {}),
      ...(set.resample ? { resample: set.resample } : {}),
    },
    inputDim: dim,
    codeDim: arch.codeDim,
    output: inputScale === 'standardised' ? 'linear' : 'sigmoid',
    loss,
    regularisers,
    source: set.source,
    training: trainingRecord(report, opts, backendName()),
    createdAt: new Date().toISOString(),
  };
  return new TrainedModel(manifest, parts).withBinaryThresholds(set.pixels, set.keys.length);
}

/** Mean squared error per image, summed over pixels (the figure of Hinton & Salakhutdinov 2006). */
export function reconError(original: Pixels, recon: Float32Array, n: number): number {
  const x = toFloats(original);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i]! - recon[i]!;
    s += d * d;
  }
  return s / Math.max(n, 1);
}
