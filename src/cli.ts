import path from 'node:path';
import { Command, CommanderError, type Option } from 'commander';
import { loadImageSource, IMAGE_SOURCE_HELP, SOURCE_HELP } from '../data/sources.js';
import { count, encodable, fitModel, loadSource, vectorsOf } from './cli/sources.js';
import { imageDim } from '../data/images.js';
import { readEnv, type Env } from './config.js';
import { reconError } from './encoder/fit.js';
import { gridPng } from './encoder/png.js';
import { writeCodes, writeFileAtomic } from './encoder/npy.js';
import { fail, isLatentdexError } from './errors.js';
import { type Ctx, globals, startBackend } from './cli/context.js';
import { addCollectionCommands, imageTarget as targetOf, reportSkipped, resolveModel, type ModelRef } from './cli/collection-commands.js';
import { addMapCommand, addSearchCommands, addServeCommand } from './cli/search-commands.js';
import { addQueryCommand } from './cli/query-command.js';
import { exitWithParent } from './cli/parent-watch.js';
import { addAnalysisCommands } from './cli/analysis-commands.js';
import { fileURLToPath } from 'node:url';
import { addImageFlags, addModelFlags, intArg, outFileArg, shapeOf, type ImageFlags, type ModelFlags } from './cli/options.js';
import { counted } from './progress.js';


const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WEB_DIR = path.join(ROOT, 'web');
const VERSION = '0.1.0';

export function buildProgram(env: Env, o: { json?: boolean } = {}): Command {
  const program = new Command('latentdex')
    .description('Search images and documents by deep-autoencoder codes')
    .option('--backend <name>', 'tfjs backend: tensorflow (tfjs-node), wasm or cpu (default: best available)')
    .option('-q, --quiet', 'no progress output')
    .option('--data-dir <dir>', `collections folder (default: $LATENTDEX_DATA or ${env.dataDir})`)
    // one line after a usage error, not the whole help
    .showHelpAfterError(o.json ? false : '(run with --help for the options)')
    // commander's usage errors read as latentdex's own: `latentdex: <what> [INVALID_ARGUMENT]`
    // (the code after the first line: a "Did you mean" hint follows on its own)
    .configureOutput({
      outputError: (s, write) => {
        const [first = '', ...rest] = s.trim().replace(/^error: /, '').split('\n');
        // a shape flag given to a command that uses a collection's model: say why it has none
        const shape = /^unknown option '--(image-size|channels|fit)\b/.test(first) ? ["(--image-size, --channels and --fit shape a new model, with build or train; a collection's own model decodes images as it was trained)"] : [];
        if (o.json) write(errorJson('INVALID_ARGUMENT', [first, ...shape, ...rest].join(' ')));
        else write(`${[`latentdex: ${first} [INVALID_ARGUMENT]`, ...shape, ...rest].join('\n')}\n`);
      },
    })
    .exitOverride();
  const ctx: Ctx = { env, program };

  addModelFlags(
    addImageFlags(
      program
        .command('train')
        .description('train an autoencoder on a source and save the model directory')
        .requiredOption('--source <src>', SOURCE_HELP)
        .requiredOption('--out <dir>', 'model directory to write')
        .option('--limit <n>', 'use at most N items', intArg()),
    ),
  ).action(async (f: ModelFlags & ImageFlags & { source: string; out: string; limit?: number }) => {
    await startBackend(ctx);
    const { quiet } = globals(ctx);
    const model = await fitModel(await loadSource(f.source, { limit: f.limit, shape: shapeOf(f), strict: f.strict, quiet }), f, quiet);
    await model.save(f.out);
    const t = model.manifest.training;
    process.stdout.write(
      `model saved to ${f.out}: ${model.manifest.architecture.arch} ${model.inputDim}->${model.codeDim}, ${counted(t.epochs, 'epoch')}, held-out loss ${t.heldOutLoss.toFixed(3)}, ${t.samplesPerSec.toFixed(0)} samples/s (${t.backend})\n`,
    );
  });

  program
    .command('encode')
    .description('encode a source into codes: FILE.npy (float32 N x code), FILE.labels.npy, FILE.keys.json')
    .option('--model <dir>', 'trained model directory')
    .option('--collection <name>', "use this collection's model")
    .requiredOption('--source <src>', SOURCE_HELP)
    .requiredOption('--out <file>', 'output .npy path', outFileArg)
    .option('--limit <n>', 'encode at most N items', intArg())
    .action(async (f: ModelRef & { source: string; out: string; limit?: number }) => {
      await startBackend(ctx);
      const model = await resolveModel(ctx, f);
      // a text without a word of the vocabulary has no code (a zero vector would encode to an arbitrary one)
      const { loaded: l, skipped } = encodable(model, await loadSource(f.source, { limit: f.limit, model, quiet: globals(ctx).quiet }));
      const codes = model.encode(vectorsOf(model, l).input, count(l));
      await writeCodes(f.out, codes, model.codeDim, l.set.keys, l.set.labels);
      reportSkipped(skipped, { strict: false });
      process.stdout.write(`wrote ${count(l)}x${model.codeDim} float32 codes to ${f.out}\n`);
    });

  program
    .command('recon')
    .description('reconstruction error per image and a PNG grid of originals above reconstructions')
    .option('--model <dir>', 'trained model directory')
    .option('--collection <name>', "use this collection's model")
    .requiredOption('--source <src>', IMAGE_SOURCE_HELP)
    .option('--out <file>', 'PNG grid to write', outFileArg, 'recon.png')
    .option('--limit <n>', 'use at most N items', intArg())
    .option('--show <n>', 'images in the grid', intArg(1, 200), 16)
    .action(async (f: ModelRef & { source: string; out: string; limit?: number; show: number }) => {
      await startBackend(ctx);
      const model = await resolveModel(ctx, f);
      const set = await loadImageSource(f.source, { limit: f.limit, target: targetOf(model), quiet: globals(ctx).quiet });
      const n = set.keys.length;
      const recon = model.reconstruct(set.pixels, n);
      const err = reconError(set.pixels, recon, n);
      const d = imageDim(set);
      const m = Math.min(f.show, n);
      const show = Array.from({ length: m }, (_, i) => Math.floor((i * n) / m));
      const png = gridPng(
        [show.map((i) => set.pixels.subarray(i * d, (i + 1) * d)), show.map((i) => recon.subarray(i * d, (i + 1) * d))],
        set.width,
        set.height,
        set.channels,
        3,
      );
      await writeFileAtomic(f.out, png);
      process.stdout.write(`reconstruction error ${err.toFixed(3)} per image (squared error summed over ${d} values, mean over ${n} images); grid: ${f.out}\n`);
    });

  addCollectionCommands(ctx);
  addSearchCommands(ctx);
  addQueryCommand(ctx);
  addAnalysisCommands(ctx);
  addMapCommand(ctx);
  addServeCommand(ctx, WEB_DIR, VERSION);
  checkRequiredAfterUnknown(program);
  return program;
}

/**
 * Commander checks required options before unknown ones, so `--colection x` read as "required option
 * '--collection' not specified". Required options are checked here instead, in a hook that runs after the
 * unknown-option check: a misspelling is named as one, with commander's "Did you mean".
 */
function checkRequiredAfterUnknown(program: Command): void {
  const required = new Map<Command, Option[]>();
  const walk = (c: Command) => {
    const mandatory = c.options.filter((o) => o.mandatory);
    // the hook checks the command that runs; a parent's required options would go unchecked
    if (mandatory.length && c.commands.length) throw fail('INTERNAL', `command '${c.name()}' has subcommands and required options; give the options to the subcommands`);
    for (const o of mandatory) o.mandatory = false;
    if (mandatory.length) required.set(c, mandatory);
    c.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_, action) => {
    const missing = (required.get(action) ?? []).find((o) => action.getOptionValue(o.attributeName()) === undefined);
    if (missing) action.error(`required option '${missing.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
  });
}

/**
 * Whether a command line asks for JSON output (`--json` before any `--`): its errors then come in the API's shape,
 * `{"error":{"code","message"}}` on one line of stderr, so that a script reads one format.
 */
function asksJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

function errorJson(code: string, message: string): string {
  return `${JSON.stringify({ error: { code, message } })}\n`;
}

/** Runs the CLI; returns the exit code. Errors print one line saying what to do next. */
export async function main(argv: string[], env: Env = readEnv()): Promise<number> {
  const json = asksJson(argv);
  const program = buildProgram(env, { json });
  if (env.exitWithParent !== undefined) exitWithParent(env.exitWithParent);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isLatentdexError(e)) {
      process.stderr.write(json ? errorJson(e.code, e.message) : `latentdex: ${e.message} [${e.code}]\n`);
      return e.status >= 500 ? 1 : 2;
    }
    if (json) process.stderr.write(errorJson('INTERNAL', `unexpected error: ${e instanceof Error ? e.message : String(e)}`));
    else process.stderr.write(`latentdex: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
