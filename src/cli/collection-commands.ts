import type { Command } from 'commander';
import { SOURCE_HELP } from '../../data/sources.js';
import { DEFAULT_TRAIN_LIMIT, fitModel, imageTargetOf, itemsOf, loadSource, openBuildSource } from './sources.js';
import type { DecodeTarget } from '../../data/decode.js';
import { TrainedModel } from '../encoder/model.js';
import { writeCodes } from '../encoder/npy.js';
import { fail } from '../errors.js';
import { buildCollection, modelDirOf, reserveBuild, resumableBuilds, resumableModel } from '../indexer/build.js';
import { spoolDirOf } from '../indexer/paths.js';
import { STORE_FLAG_HELP, waitNotice, withCollections } from './store.js';
import type { BuildTarget, CollectionDetails, CollectionEntry } from '../indexer/collection-store.js';
import type { CollectionManifest } from '../indexer/catalogue.js';
import { skippedText, type ImageSet, type SkippedFile } from '../../data/images.js';
import { globals, startBackend, type Ctx } from './context.js';
import { addImageFlags, addModelFlags, intArg, outFileArg, shapeOf, trainingFlagsGiven, type ImageFlags, type ModelFlags } from './options.js';
import { counted } from '../progress.js';

export interface ModelRef {
  model?: string;
  collection?: string;
}

/** `--model DIR` or `--collection NAME` (the collection's own model). */
export async function resolveModel(ctx: Ctx, f: ModelRef): Promise<TrainedModel> {
  if (f.model && f.collection) throw fail('INVALID_ARGUMENT', 'give --model or --collection, not both');
  if (f.model) return TrainedModel.load(f.model);
  if (f.collection) {
    return TrainedModel.load(modelDirOf(globals(ctx).dataDir, f.collection));
  }
  throw fail('INVALID_ARGUMENT', 'name a model with --model DIR or --collection NAME');
}

export function imageTarget(model: TrainedModel): DecodeTarget {
  const t = imageTargetOf(model);
  if (!t) throw fail('INVALID_ARGUMENT', '`recon` draws images and this is a text model; measure a text model with `latentdex eval`');
  return t;
}

/** Prints the files a source skipped, with their reasons (stderr: stdout keeps the one-line result). */
export function reportSkipped(skipped: readonly SkippedFile[], o: { strict?: boolean } = { strict: true }): void {
  if (skipped.length === 0) return;
  const lines = skipped.map((s) => `  ${skippedText(s)}`);
  const hint = o.strict ? ' (--strict makes a bad file or record an error)' : '';
  process.stderr.write(`skipped ${counted(skipped.length, 'file or record', 'files or records')} that could not be used${hint}:\n${lines.join('\n')}\n`);
}

function shapeNote(shape: Pick<ImageSet, 'width' | 'height' | 'channels'> | null, skipped: number): string {
  if (!shape) return '';
  return ` from ${shape.width}x${shape.height} ${shape.channels === 3 ? 'colour' : 'grey'} images${skipped ? `, ${counted(skipped, 'file')} skipped` : ''}`;
}

/** `info` lines on how images are decoded and which source files or records were skipped. */
function sourceLines(m: CollectionManifest, input: CollectionDetails['input']): string[] {
  const skipped = (m.params.skipped as { count: number; files: { path: string; reason: string }[] } | undefined) ?? { count: 0, files: [] };
  const roots = (m.params.roots as string[] | undefined) ?? [];
  return [
    ...(m.kind === 'image' && input?.type === 'pixels' ? [`  images         ${input.width}x${input.height}, ${input.channels === 3 ? 'colour' : 'grey'}, fit ${input.fit ?? 'fill'}, alpha on ${input.background ?? '#000000'}, resampled by ${input.resample ?? 'lanczos3'}, input ${input.scale === 'standardised' ? 'standardised per image' : 'pixels 0-1'}`] : []),
    `  sources        ${roots.join(', ') || String(m.params.source ?? '-')}`,
    `  skipped        ${skipped.count}${skipped.files.length ? ':' : ''}`,
    ...skipped.files.map((f) => `    ${skippedText(f)}`),
    ...(skipped.count > skipped.files.length ? [`    … and ${skipped.count - skipped.files.length} more`] : []),
  ];
}

/** What `info --collection` prints, for a collection of either store. */
function detailLines(d: CollectionDetails): string[] {
  const m = d.manifest;
  const t = (m.model.training ?? {}) as Record<string, number>;
  const bits = (m.model.regularisers as { binaryBits?: number } | undefined)?.binaryBits;
  return [
    `collection ${m.name} (${m.kind}) in ${d.where}`,
    `  items          ${m.count}${d.graphSize !== undefined ? ` (graph elements ${d.graphSize}, ${counted(d.graphSize - m.count, 'deleted slot')}, freed by compaction)` : ''}; generation ${m.generation}${d.writes !== undefined ? ` (${counted(d.writes, 'write')} since its build)` : ''}`,
    `  codes          ${m.codeDim}-d, space ${m.space}${bits ? `, binary ${bits} bits` : ''}`,
    `  hnsw           M ${m.hnsw.M}, efConstruction ${m.hnsw.efConstruction}, ef ${m.hnsw.ef}`,
    `  model          ${String(m.model.arch)} from ${String(m.model.source)}, ${counted(Number(t.epochs), 'epoch')}, held-out loss ${Number(t.heldOutLoss).toFixed(3)}, ${Number(t.samplesPerSec).toFixed(0)} samples/s`,
    `  raw vectors    ${m.rawDim} x ${m.rawType}`,
    ...sourceLines(m, d.input),
    ...(d.disk ? [`  on disk        index ${fmtBytes(d.disk.index ?? 0)}, catalogue ${fmtBytes(d.disk.catalogue ?? 0)}, model ${fmtBytes(d.disk.model ?? 0)}`] : []),
    `  created        ${m.createdAt}, updated ${m.updatedAt}`,
  ];
}

function fmtBytes(n: number): string {
  return n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

type BuildFlags = ModelFlags &
  ImageFlags & { collection: string; source: string; model?: string; limit?: number; groupBy?: string; trainLimit?: number; replace?: boolean; keyPrefix?: string; store?: string; m: number; efConstruction: number; ef: number; trainEpochs: number };

export function addCollectionCommands(ctx: Ctx): void {
  const { program } = ctx;
  addModelFlags(
    addImageFlags(program
      .command('build'))
      .description('offline build: train a model (unless --model), encode every item, write the HNSW graph and catalogue')
      .requiredOption('--collection <name>', 'collection name')
      .requiredOption('--source <src>', SOURCE_HELP)
      .option('--model <dir>', 'use this trained model instead of training one')
      .option('--limit <n>', 'use at most N items (from a folder: N evenly spaced files; any that cannot be read are skipped, not replaced)', intArg())
      .option('--group-by <field>', 'jsonl: the field naming each record\'s source document (eval skips neighbours from the query\'s own)')
      .option('--key-prefix <prefix>', 'put before every key')
      .option('--train-limit <n>', `train on at most N of the items, evenly spread (default ${DEFAULT_TRAIN_LIMIT.toLocaleString('en-US')})`, intArg())
      .option('--replace', 'replace an existing collection of that name')
      .option('--store <uri>', STORE_FLAG_HELP)
      .option('--m <n>', 'HNSW M (graph degree)', intArg(2, 128), 16)
      .option('--ef-construction <n>', 'HNSW efConstruction', intArg(8, 4096), 200)
      .option('--ef <n>', 'HNSW ef at query time', intArg(1, 4096), 100),
    '--train-epochs <n>',
  ).action(async (f: BuildFlags, cmd: Command) => {
    const ignored = f.model ? trainingFlagsGiven(cmd) : [];
    if (ignored.length) throw fail('INVALID_ARGUMENT', `${ignored.join(', ')} train${ignored.length === 1 ? 's' : ''} a new model; with --model the given model is used as it was trained (drop ${ignored.length === 1 ? 'it' : 'them'}, or leave out --model)`);
    const g = globals(ctx);
    await withCollections(ctx, f.store, async (collections) => {
      // a store's collection is built in a staging folder of the data directory (resumable), then copied in
      const target = await collections.startBuild(f.collection, { replace: f.replace, dataDir: g.dataDir });
      await buildCommand(f, { ...g, dataDir: target.dataDir }, target);
    }, { create: true });
  });

  async function buildCommand(f: BuildFlags, g: ReturnType<typeof globals>, target: BuildTarget): Promise<void> {
    await startBackend(ctx);
    // before any work: another build of this name, or an existing collection, is an answer now, not after training
    const replace = f.replace || target.replaces;
    const lock = reserveBuild(g.dataDir, f.collection, { replace });
    try {
      // the same command after a killed build goes on from its last committed batch, with the model it trained
      // threads change the speed of training, not what a build makes
      const { replace: _, threads: __, ...plan } = f;
      const kept = resumableModel(g.dataDir, f.collection, plan);
      // a kept model that cannot be read is trained again
      const keptModel = kept ? await TrainedModel.load(kept).catch(() => undefined) : undefined;
      const given = keptModel ?? (f.model ? await TrainedModel.load(f.model) : undefined);
      const src = await openBuildSource(f.source, { limit: f.limit, model: given, shape: keptModel ? undefined : shapeOf(f), strict: f.strict, quiet: g.quiet, previews: true, groupBy: f.groupBy, trainLimit: f.trainLimit, spoolDir: spoolDirOf(g.dataDir), keyPrefix: f.keyPrefix });
      let model: TrainedModel | undefined = given;
      let fresh: TrainedModel | undefined;
      const train = () => fitModel(src.train(), { ...f, epochs: f.trainEpochs }, g.quiet);
      try {
        model ??= await train();
        // the stream's list holds the source's skipped files and the texts the model cannot encode
        let items = src.items(model);
        const c = await buildCollection(model, items, {
          ...src.settings(model),
          dataDir: g.dataDir,
          name: f.collection,
          hnsw: { M: f.m, efConstruction: f.efConstruction, ef: f.ef },
          replace,
          quiet: g.quiet,
          lock,
          plan,
          // a kept model is of a source that may have changed since: then one is trained again (not one given)
          ...(keptModel && !f.model
            ? {
                retrain: async () => {
                  fresh = await train();
                  items = src.items(fresh);
                  return { model: fresh, items, settings: src.settings(fresh) };
                },
              }
            : {}),
        });
        const skipped = items.skipped ?? src.skipped;
        reportSkipped(skipped);
        const { name, count, manifest } = c;
        const where = await target.finish(c, { onWait: waitNotice(f.collection, g.quiet) });
        process.stdout.write(`built collection '${name}': ${counted(count, 'item')}, ${manifest.codeDim}-d codes${shapeNote(src.shape, skipped.length)}, in ${where}\n`);
      } finally {
        model?.dispose();
        fresh?.dispose();
        src.close();
      }
    } finally {
      lock.release();
    }
  }

  program
    .command('add')
    .description("add items to a collection with the collection's model")
    .requiredOption('--collection <name>', 'collection name')
    .requiredOption('--source <src>', SOURCE_HELP)
    .option('--limit <n>', 'add at most N items (from a folder: N evenly spaced files; any that cannot be read are skipped, not replaced)', intArg())
    .option('--group-by <field>', "jsonl: the field naming each record's source document")
    .option('--replace', 'replace items whose key already exists (default: refuse)')
    .option('--key-prefix <prefix>', "put before every key, e.g. 'trip2/' for a folder whose file names repeat ones already added")
    .option('--strict', 'an image, text file or record that cannot be used is an error (default: skip it and list it)')
    .option('--store <uri>', 'add to a collection of this LanceDB store (see `build --store`); every server of the store shows the items')
    .action(async (f: { collection: string; source: string; limit?: number; groupBy?: string; replace?: boolean; keyPrefix?: string; strict?: boolean; store?: string }) => {
      const g = globals(ctx);
      await withCollections(ctx, f.store, async (collections) => {
        const r = await collections.add(
          f.collection,
          async (model, params, refuse) => {
            // records of a jsonl: file join the groups the build read (its --group-by), unless another field is named
            const built = typeof params.groupBy === 'string' && f.source.startsWith('jsonl:') ? params.groupBy : undefined;
            const groupBy = f.groupBy ?? built;
            const l = await loadSource(f.source, { limit: f.limit, model, strict: f.strict, quiet: g.quiet, previews: true, groupBy, groupOptional: f.groupBy === undefined, spoolDir: spoolDirOf(g.dataDir), keyPrefix: f.keyPrefix, checkKeys: refuse });
            const items = itemsOf(model, l, { strict: f.strict });
            // said now: a write that then fails (a duplicate key) still tells which files were left out
            reportSkipped(items.skipped ?? l.set.skipped ?? []);
            return items;
          },
          { replace: f.replace, onWait: waitNotice(f.collection, g.quiet) },
        );
        process.stdout.write(`added ${counted(r.added, 'item')}${r.replaced ? `, replaced ${r.replaced}` : ''}; '${f.collection}' now holds ${r.count}${f.store !== undefined ? ` in ${collections.label}` : ''}\n`);
      });
    });

  program
    .command('remove')
    .description('remove items by key')
    .requiredOption('--collection <name>', 'collection name')
    .requiredOption('--key <keys...>', 'keys to remove')
    .option('--store <uri>', 'remove from a collection of this LanceDB store (see `build --store`)')
    .action(async (f: { collection: string; key: string[]; store?: string }) => {
      const g = globals(ctx);
      await withCollections(ctx, f.store, async (collections) => {
        const r = await collections.remove(f.collection, f.key, { onWait: waitNotice(f.collection, g.quiet) });
        process.stdout.write(`removed ${counted(r.removed, 'item')}; '${f.collection}' now holds ${r.count}${f.store !== undefined ? ` in ${collections.label}` : ''}\n`);
      });
    });

  program
    .command('info')
    .description('collections, or one collection: counts, dims, params, sizes on disk, model figures')
    .option('--collection <name>', 'collection name')
    .option('--json', 'print JSON')
    .option('--store <uri>', 'the collections of this LanceDB store (see `build --store`)')
    .action(async (f: { collection?: string; json?: boolean; store?: string }) => {
      const g = globals(ctx);
      await withCollections(ctx, f.store, async (collections) => {
        if (!f.collection) {
          const entries = await collections.list();
          const line = (e: CollectionEntry) => (e.manifest ? `${e.name} (${e.manifest.kind}): ${counted(e.manifest.count, 'item')}, ${e.manifest.codeDim}-d codes, ${counted(e.writes ?? 0, 'write')} since its build, in ${collections.label}` : e.name);
          process.stdout.write(f.json ? `${JSON.stringify(entries.map((e) => e.name))}\n` : entries.length ? `${entries.map(line).join('\n')}\n` : `no collections in ${collections.label}\n`);
          const stopped = f.store === undefined ? resumableBuilds(g.dataDir) : [];
          if (!f.json && stopped.length) process.stdout.write(`stopped builds, resumed by the same build command: ${stopped.join(', ')}\n`);
          return;
        }
        const d = await collections.describe(f.collection);
        if (f.json) {
          const disk = d.disk ? { disk: d.disk, bytesPerItem: d.manifest.count ? (d.disk.index ?? 0) / d.manifest.count : 0 } : {};
          // the input scale as the model's own manifest says it
          const model = { ...d.manifest.model, ...(d.input?.type === 'pixels' ? { inputScale: d.input.scale } : {}) };
          process.stdout.write(`${JSON.stringify({ ...d.manifest, model, ...disk, ...(d.writes !== undefined ? { writes: d.writes } : {}) }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${detailLines(d).join('\n')}\n`);
      });
    });

  program
    .command('export')
    .description('write the codes as FILE.npy + FILE.labels.npy + FILE.keys.json (for Faiss, Qdrant, NumPy)')
    .requiredOption('--collection <name>', 'collection name')
    .requiredOption('--out <file>', 'output .npy path', outFileArg)
    .option('--store <uri>', 'export a collection of this LanceDB store (see `build --store`)')
    .action(async (f: { collection: string; out: string; store?: string }) => {
      await withCollections(ctx, f.store, async (collections) => {
        const c = await collections.codes(f.collection);
        const file = await writeCodes(f.out, c.data, c.dim, c.keys, c.labels);
        process.stdout.write(`wrote ${c.keys.length}x${c.dim} float32 codes to ${file} (labels and keys beside it)\n`);
      });
    });
}
