import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ImageModelOptions } from '../encoder/fit.js';
import { INPUT_SCALES, type InputScale } from '../encoder/input-scale.js';
import type { Regularisers } from '../encoder/manifest.js';
import { VECTORIZER_DEFAULTS, WEIGHTINGS, type Weighting } from '../encoder/vectorizer.js';
import { FITS, type Fit } from '../../data/decode.js';
import { DIR_DEFAULTS, type ShapeRequest } from '../../data/dir.js';
import { decimal } from '../decimal.js';


export function intArg(min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = decimal(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected ${max === Number.MAX_SAFE_INTEGER ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`}, got '${v}'`);
    return n;
  };
}

export function floatArg(min = 0, max = Number.MAX_VALUE) {
  return (v: string): number => {
    const n = decimal(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected ${max === Number.MAX_VALUE ? `a number of at least ${min}` : `a number from ${min} to ${max}`}, got '${v}'`);
    return n;
  };
}

/** A file to write: its folder must exist (checked when the flag is read, not after the work that fills it). */
export function outFileArg(v: string): string {
  const folder = path.dirname(path.resolve(v));
  if (!existsSync(folder)) throw new InvalidArgumentError(`folder '${folder}' does not exist; make it or write elsewhere`);
  return v;
}

export function listArg(v: string): number[] {
  const parts = v.split(/[-,x]/).map(Number);
  if (parts.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`expected sizes like 1000,500,250, got '${v}'`);
  return parts;
}

export function denoiseArg(v: string): NonNullable<Regularisers['denoise']> {
  const m = /^(masking|dropout|gaussian):([0-9.]+)$/.exec(v);
  const level = m ? Number(m[2]) : NaN;
  if (!m || !(level >= 0 && level <= 1)) throw new InvalidArgumentError(`expected masking:FRACTION, dropout:FRACTION or gaussian:STD (0..1), got '${v}'`);
  return { kind: m[1] as 'masking' | 'dropout' | 'gaussian', level };
}

/** The flags shared by `train` and `build` that shape and train a model. */
export interface ModelFlags {
  arch?: 'dense' | 'conv';
  codeDim?: number;
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  patience?: number;
  seed?: number;
  loss?: 'bce' | 'mse';
  inputScale?: InputScale;
  denoise?: NonNullable<Regularisers['denoise']>;
  sparse?: number;
  contractive?: number;
  binary?: number;
  binarize?: 'noise' | 'median';
  shift?: number;
  weighting?: Weighting;
  textOutput?: 'softmax' | 'sigmoid';
  vocabSize?: number;
  stem?: boolean;
  threads?: number;
}

export function regularisersOf(f: ModelFlags): Regularisers {
  return {
    ...(f.denoise ? { denoise: f.denoise } : {}),
    ...(f.sparse ? { sparse: f.sparse } : {}),
    ...(f.contractive ? { contractive: f.contractive } : {}),
    ...(f.binary ? { binaryBits: f.binary, ...(f.binarize ? { binarize: f.binarize } : {}) } : {}),
    ...(f.shift ? { shift: { pixels: f.shift, width: 0, height: 0, channels: 0 } } : {}),
  };
}

export function addModelFlags(cmd: Command, epochsFlag = '--epochs <n>'): Command {
  return cmd
    .addOption(new Option('--arch <arch>', 'architecture').choices(['dense', 'conv']).default('dense'))
    .option('--code-dim <n>', 'code size', intArg(1, 4096), 32)
    .option('--hidden <sizes>', 'hidden layer sizes of a dense encoder, e.g. 1000,500,250', listArg)
    .option(epochsFlag, 'maximum epochs, early stopping on held-out loss (default: 30 dense, 10 conv, 60 texts)', intArg(1, 10000))
    .option('--batch-size <n>', 'batch size (default: 256 dense, 64 conv, 32 texts)', intArg(1, 65536))
    .option('--lr <rate>', 'Adam learning rate', floatArg(1e-7, 1), 1e-3)
    .option('--patience <n>', 'epochs without held-out improvement before stopping (default: 3 images, 4 texts)', intArg(1, 1000))
    .option('--seed <n>', 'random seed (weights, split, shuffles, noise)', intArg(0), 42)
    .addOption(new Option('--loss <loss>', 'reconstruction loss of a 0-1 input (default bce)').choices(['bce', 'mse']))
    .addOption(new Option('--input-scale <scale>', 'images: 0-1 (pixels as they are, sigmoid output) or standardised (each image to mean 0 and sd 1, linear output); default standardised for colour, 0-1 for grey').choices([...INPUT_SCALES]))
    .option('--denoise <spec>', 'denoising: masking:FRACTION, dropout:FRACTION (masking, survivors rescaled) or gaussian:STD (texts default to dropout:0.7)', denoiseArg)
    .option('--sparse <weight>', 'L1 penalty on the code', floatArg(0))
    .option('--shift <pixels>', 'shift corruption (images): reconstruct the image from a copy moved by up to N pixels', intArg(1, 64))
    .option('--contractive <weight>', 'penalty on the squared Frobenius norm of the encoder Jacobian', floatArg(0))
    .option('--binary <bits>', 'binary codes for semantic hashing with this many bits', intArg(1, 1024))
    .addOption(new Option('--binarize <how>', 'binary codes: median (float code cut at each unit\'s median over the training items, the default) or noise (sigmoid code trained with noise injected, the paper\'s way)').choices(['noise', 'median']))
    .addOption(new Option('--weighting <w>', 'text input the encoder sees (default log-tfidf)').choices([...WEIGHTINGS]))
    .addOption(new Option('--text-output <out>', 'text decoder: softmax over word proportions with cross-entropy (default) or sigmoid reproducing the input with BCE').choices(['softmax', 'sigmoid']))
    .option('--vocab-size <n>', `text vocabulary: the N words in most documents (default ${VECTORIZER_DEFAULTS.size.toLocaleString('en-US')})`, intArg(10, 100000))
    .option('--stem', 'Porter-stem words in the text vocabulary')
    .option('--threads <n>', 'training threads, each batch split over them (default: 2 on the wasm backend, on a machine of 2+ cores, for runs of 50,000 samples or more with batches of 128+ (dense) or 32+ (conv))', intArg(1, 64));
}

/** The flags of addModelFlags that say how to train a model (and the build's --train-limit), by attribute name. */
const TRAINING_FLAGS = ['arch', 'codeDim', 'hidden', 'epochs', 'trainEpochs', 'trainLimit', 'batchSize', 'lr', 'patience', 'seed', 'loss', 'inputScale', 'denoise', 'sparse', 'shift', 'contractive', 'binary', 'binarize', 'weighting', 'textOutput', 'vocabSize', 'stem', 'threads'];

/** The training flags given on the command line (not defaults), as typed: `--code-dim`. */
export function trainingFlagsGiven(cmd: Command): string[] {
  return cmd.options.filter((o) => TRAINING_FLAGS.includes(o.attributeName()) && cmd.getOptionValueSource(o.attributeName()) === 'cli').map((o) => o.long ?? o.flags);
}

export function modelOptions(f: ModelFlags, quiet: boolean): ImageModelOptions {
  const o: ImageModelOptions = {
    arch: f.arch,
    codeDim: f.codeDim,
    hidden: f.hidden,
    epochs: f.epochs,
    batchSize: f.batchSize,
    learningRate: f.lr,
    patience: f.patience,
    seed: f.seed,
    loss: f.loss,
    inputScale: f.inputScale,
    regularisers: regularisersOf(f),
    threads: f.threads,
    quiet,
  };
  // Unset flags fall back to each model family's defaults.
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as ImageModelOptions;
}




/** Image shape flags of `train` and `build` (dir: sources). */
export interface ImageFlags {
  imageSize?: number;
  channels?: '1' | '3' | 'auto';
  fit?: Fit;
  strict?: boolean;
}

export function shapeOf(f: ImageFlags): ShapeRequest {
  const shape: ShapeRequest = {};
  if (f.imageSize !== undefined) shape.size = f.imageSize;
  if (f.channels !== undefined) shape.channels = f.channels === 'auto' ? 'auto' : f.channels === '3' ? 3 : 1;
  if (f.fit !== undefined) shape.fit = f.fit;
  return shape;
}

export function addImageFlags(cmd: Command): Command {
  return cmd
    .option('--image-size <n>', `square side images are resized to (default: ${DIR_DEFAULTS.size} for dir:, the native 28 for mnist and idx:)`, intArg(4, 512))
    .addOption(new Option('--channels <c>', 'colour (3), grey (1), or auto: 3 when the folder holds colour images').choices(['1', '3', 'auto']))
    .addOption(new Option('--fit <how>', `how a non-square image becomes square: contain (letterbox, default), cover (centre crop) or fill (stretch)`).choices([...FITS]))
    .option('--strict', 'an image, text file or record that cannot be used is an error (default: skip it and list it)');
}
