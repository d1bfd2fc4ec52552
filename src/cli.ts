import path from 'node:path';
import fs from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { loadImageSource, IMAGE_SOURCE_HELP } from '../data/sources.js';
import { imageDim, selectImages } from '../data/images.js';
import { readEnv, type Env } from './config.js';
import { initBackend } from './encoder/backend.js';
import { fitImageModel, reconError } from './encoder/fit.js';
import { TrainedModel } from './encoder/model.js';
import { gridPng } from './encoder/png.js';
import { writeCodes, writeFileAtomic } from './encoder/npy.js';
import { isLatentdexError, fail } from './errors.js';
import { log } from './progress.js';
import { denoiseArg, floatArg, intArg, listArg, regularisersOf, type ModelFlags } from './cli/options.js';

interface Common {
  backend?: string;
  quiet?: boolean;
}

function addModelFlags(cmd: Command, epochsFlag = '--epochs <n>'): Command {
  return cmd
    .addOption(new Option('--arch <arch>', 'architecture').choices(['dense', 'conv']).default('dense'))
    .option('--code-dim <n>', 'code size', intArg(1, 4096), 32)
    .option('--hidden <sizes>', 'hidden layer sizes of a dense encoder, e.g. 1000,500,250', listArg)
    .option(epochsFlag, 'maximum epochs (early stopping on held-out loss)', intArg(1, 10000), 20)
    .option('--batch-size <n>', 'batch size', intArg(1, 65536), 256)
    .option('--lr <rate>', 'Adam learning rate', floatArg(1e-7, 1), 1e-3)
    .option('--patience <n>', 'epochs without held-out improvement before stopping', intArg(1, 1000), 3)
    .option('--seed <n>', 'random seed (weights, split, shuffles, noise)', intArg(0), 42)
    .addOption(new Option('--loss <loss>', 'reconstruction loss').choices(['bce', 'mse']).default('bce'))
    .option('--denoise <spec>', 'denoising: masking:FRACTION or gaussian:STD', denoiseArg)
    .option('--sparse <weight>', 'L1 penalty on the code', floatArg(0))
    .option('--contractive <weight>', 'penalty on the squared Frobenius norm of the encoder Jacobian', floatArg(0))
    .option('--binary <bits>', 'binary codes for semantic hashing with this many bits', intArg(1, 1024));
}

function modelOptions(f: ModelFlags & { epochs?: number }, quiet: boolean) {
  return {
    arch: f.arch,
    codeDim: f.codeDim,
    hidden: f.hidden,
    epochs: f.epochs,
    batchSize: f.batchSize,
    learningRate: f.lr,
    patience: f.patience,
    seed: f.seed,
    loss: f.loss,
    regularisers: regularisersOf(f),
    quiet,
  };
}

async function start(env: Env, o: Common): Promise<void> {
  const name = await initBackend({ prefer: o.backend ?? env.backend });
  log(`tfjs backend: ${name}`, o.quiet || env.quiet);
}

function targetOf(model: TrainedModel) {
  const i = model.manifest.input;
  if (i.type !== 'pixels') throw fail('INVALID_ARGUMENT', `this model is a text model; use a text source`);
  return { width: i.width, height: i.height, channels: i.channels };
}

export function buildProgram(env: Env): Command {
  const program = new Command('latentdex')
    .description('Search images and documents by deep-autoencoder codes')
    .option('--backend <name>', 'tfjs backend: tensorflow (tfjs-node), wasm or cpu (default: best available)')
    .option('-q, --quiet', 'no progress output')
    .showHelpAfterError()
    .exitOverride();
  const common = (): Common => program.opts<Common>();

  addModelFlags(
    program
      .command('train')
      .description('train an autoencoder on a source and save the model directory')
      .requiredOption('--source <src>', IMAGE_SOURCE_HELP)
      .requiredOption('--out <dir>', 'model directory to write')
      .option('--limit <n>', 'use at most N items', intArg()),
  ).action(async (f: ModelFlags & { source: string; out: string; limit?: number }) => {
    await start(env, common());
    const quiet = Boolean(common().quiet || env.quiet);
    const set = await loadImageSource(f.source, { limit: f.limit });
    const model = await fitImageModel(set, modelOptions(f, quiet));
    await model.save(f.out);
    const t = model.manifest.training;
    process.stdout.write(
      `model saved to ${f.out}: ${model.manifest.architecture.arch} ${model.inputDim}->${model.codeDim}, ${t.epochs} epochs, held-out loss ${t.heldOutLoss.toFixed(3)}, ${t.samplesPerSec.toFixed(0)} samples/s (${t.backend})\n`,
    );
  });

  program
    .command('encode')
    .description('encode a source into codes: FILE.npy (float32 N x code), FILE.labels.npy, FILE.keys.json')
    .requiredOption('--model <dir>', 'trained model directory')
    .requiredOption('--source <src>', IMAGE_SOURCE_HELP)
    .requiredOption('--out <file>', 'output .npy path')
    .option('--limit <n>', 'encode at most N items', intArg())
    .action(async (f: { model: string; source: string; out: string; limit?: number }) => {
      await start(env, common());
      const model = await TrainedModel.load(f.model);
      const set = await loadImageSource(f.source, { limit: f.limit, target: targetOf(model) });
      const codes = model.encode(set.pixels, set.keys.length);
      await fs.mkdir(path.dirname(path.resolve(f.out)), { recursive: true });
      await writeCodes(f.out, codes, model.codeDim, set.keys, set.labels);
      process.stdout.write(`wrote ${set.keys.length}x${model.codeDim} float32 codes to ${f.out}\n`);
    });

  program
    .command('recon')
    .description('reconstruction error per image and a PNG grid of originals above reconstructions')
    .requiredOption('--model <dir>', 'trained model directory')
    .requiredOption('--source <src>', IMAGE_SOURCE_HELP)
    .option('--out <file>', 'PNG grid to write', 'recon.png')
    .option('--limit <n>', 'use at most N items', intArg())
    .option('--show <n>', 'images in the grid', intArg(1, 200), 16)
    .action(async (f: { model: string; source: string; out: string; limit?: number; show: number }) => {
      await start(env, common());
      const model = await TrainedModel.load(f.model);
      const set = await loadImageSource(f.source, { limit: f.limit, target: targetOf(model) });
      const n = set.keys.length;
      const recon = model.reconstruct(set.pixels, n);
      const err = reconError(set.pixels, recon, n);
      const d = imageDim(set);
      const show = selectImages(set, Array.from({ length: Math.min(f.show, n) }, (_, i) => Math.floor((i * n) / Math.min(f.show, n)))).keys.map((k) => set.keys.indexOf(k));
      const png = gridPng(
        [show.map((i) => set.pixels.subarray(i * d, (i + 1) * d)), show.map((i) => recon.subarray(i * d, (i + 1) * d))],
        set.width,
        set.height,
        set.channels,
        3,
      );
      await writeFileAtomic(f.out, png);
      process.stdout.write(`reconstruction error ${err.toFixed(3)} per image (squared error summed over ${d} pixels, mean over ${n} images); grid: ${f.out}\n`);
    });

  return program;
}

/** Runs the CLI; returns the exit code. Errors print one line saying what to do next. */
export async function main(argv: string[], env: Env = readEnv()): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isLatentdexError(e)) {
      process.stderr.write(`latentdex: ${e.message} [${e.code}]\n`);
      return e.status >= 500 ? 1 : 2;
    }
    process.stderr.write(`latentdex: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
