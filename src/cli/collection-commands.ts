import fs from 'node:fs/promises';
import path from 'node:path';
import { SOURCE_HELP } from '../../data/sources.js';
import { DEFAULT_TRAIN_LIMIT, fitModel, imageTargetOf, itemsOf, loadSource, openBuildSource } from './sources.js';
import type { DecodeTarget } from '../../data/decode.js';
import { TrainedModel } from '../encoder/model.js';
import { writeCodes } from '../encoder/npy.js';
import { fail } from '../errors.js';
import { buildCollection, listCollections, modelDirOf, reserveBuild, resumableBuilds, resumableModel } from '../indexer/build.js';
import { Collection } from '../indexer/collection.js';
import { spoolDirOf, STORE_STAGING } from '../indexer/paths.js';
import { publishable, type LanceStore } from '../indexer/lance-store.js';
import { encodeStream, STORE_FLAG_HELP, waitNotice, withStore, withStoreModel } from './store.js';
import type { ImageSet, SkippedFile } from '../../data/images.js';
import { globals, startBackend, type Ctx } from './context.js';
import { addImageFlags, addModelFlags, intArg, shapeOf, type ImageFlags, type ModelFlags } from './options.js';

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
function reportSkipped(skipped: readonly SkippedFile[]): void {
  if (skipped.length === 0) return;
  const lines = skipped.map((s) => `  ${s.path}: ${s.reason}`);
  process.stderr.write(`skipped ${skipped.length} files or records that could not be used (--strict makes a bad file or record an error):\n${lines.join('\n')}\n`);
}

function shapeNote(shape: Pick<ImageSet, 'width' | 'height' | 'channels'> | null, skipped: number): string {
  if (!shape) return '';
  return ` from ${shape.width}x${shape.height} ${shape.channels === 3 ? 'colour' : 'grey'} images${skipped ? `, ${skipped} files skipped` : ''}`;
}

/** `info` lines on how images are decoded and which source files were skipped. */
function imageLines(c: Collection): string[] {
  const i = c.model.manifest.input;
  if (i.type !== 'pixels') return [];
  const skipped = (c.manifest.params.skipped as { count: number; files: { path: string; reason: string }[] } | undefined) ?? { count: 0, files: [] };
  return [
    `  images         ${i.width}x${i.height}, ${i.channels === 3 ? 'colour' : 'grey'}, fit ${i.fit ?? 'fill'}, alpha on ${i.background ?? '#000000'}`,
    `  sources        ${c.sourceRoots.join(', ') || String(c.manifest.params.source ?? '-')}`,
    `  skipped files  ${skipped.count}${skipped.files.length ? ':' : ''}`,
    ...skipped.files.map((f) => `    ${f.path}: ${f.reason}`),
    ...(skipped.count > skipped.files.length ? [`    … and ${skipped.count - skipped.files.length} more`] : []),
  ];
}

function fmtBytes(n: number): string {
  return n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export function addCollectionCommands(ctx: Ctx): void {
  const { program } = ctx;
  addModelFlags(
    addImageFlags(program
      .command('build'))
      .description('offline build: train a model (unless --model), encode every item, write the HNSW graph and catalogue')
      .requiredOption('--collection <name>', 'collection name')
      .requiredOption('--source <src>', SOURCE_HELP)
      .option('--model <dir>', 'use this trained model instead of training one')
      .option('--limit <n>', 'use at most N items', intArg())
      .option('--group-by <field>', 'jsonl: the field naming each record\'s source document (eval skips neighbours from the query\'s own)')
      .option('--key-prefix <prefix>', 'put before every key')
      .option('--train-limit <n>', `train on at most N of the items, evenly spread (default ${DEFAULT_TRAIN_LIMIT.toLocaleString('en-US')})`, intArg())
      .option('--replace', 'replace an existing collection of that name')
      .option('--store <uri>', STORE_FLAG_HELP)
      .option('--m <n>', 'HNSW M (graph degree)', intArg(2, 128), 16)
      .option('--ef-construction <n>', 'HNSW efConstruction', intArg(8, 4096), 200)
      .option('--ef <n>', 'HNSW ef at query time', intArg(1, 4096), 100),
    '--train-epochs <n>',
  ).action(
    async (
      f: ModelFlags &
        ImageFlags & { collection: string; source: string; model?: string; limit?: number; groupBy?: string; trainLimit?: number; replace?: boolean; keyPrefix?: string; store?: string; m: number; efConstruction: number; ef: number; trainEpochs: number },
    ) => {
      const g = globals(ctx);
      // a collection for a store is built in a staging folder of the data directory (resumable), then copied in
      if (f.store === undefined) return buildCommand(f, g, undefined);
      await withStore(ctx, f.store, async (store) => {
        // before training: a store that cannot take the build, or holds the name, is said at once
        await store.checkWritable();
        if (!f.replace && (await store.head(f.collection))) throw store.exists(f.collection);
        await buildCommand(f, { ...g, dataDir: path.join(g.dataDir, STORE_STAGING) }, store);
      }, { create: true });
    },
  );

  async function buildCommand(
    f: ModelFlags &
      ImageFlags & { collection: string; source: string; model?: string; limit?: number; groupBy?: string; trainLimit?: number; replace?: boolean; keyPrefix?: string; store?: string; m: number; efConstruction: number; ef: number; trainEpochs: number },
    g: ReturnType<typeof globals>,
    store: LanceStore | undefined,
  ): Promise<void> {
      await startBackend(ctx);
      // before any work: another build of this name, or an existing collection, is an answer now, not after training
      const lock = reserveBuild(g.dataDir, f.collection, { replace: f.replace || Boolean(store) });
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
          const c = await buildCollection(model, src.items(model), {
            ...src.settings(model),
            dataDir: g.dataDir,
            name: f.collection,
            hnsw: { M: f.m, efConstruction: f.efConstruction, ef: f.ef },
            replace: f.replace || Boolean(store),
            quiet: g.quiet,
            lock,
            plan,
            // a kept model is of a source that may have changed since: then one is trained again (not one given)
            ...(keptModel && !f.model
              ? {
                  retrain: async () => {
                    fresh = await train();
                    return { model: fresh, items: src.items(fresh), settings: src.settings(fresh) };
                  },
                }
              : {}),
          });
          reportSkipped(src.skipped);
          let where = c.paths.home;
          try {
            if (store) {
              await store.publish(publishable(c), { replace: f.replace, quiet: g.quiet, onWait: waitNotice(f.collection, g.quiet) });
              where = store.label;
            }
          } finally {
            c.close();
          }
          if (store) await fs.rm(c.paths.home, { recursive: true, force: true });
          process.stdout.write(`built collection '${c.name}': ${c.count} items, ${c.manifest.codeDim}-d codes${shapeNote(src.shape, src.skipped.length)}, in ${where}\n`);
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
    .option('--limit <n>', 'add at most N items', intArg())
    .option('--group-by <field>', "jsonl: the field naming each record's source document")
    .option('--replace', 'replace items whose key already exists (default: refuse)')
    .option('--key-prefix <prefix>', "put before every key, e.g. 'trip2/' for a folder whose file names repeat ones already added")
    .option('--strict', 'an image, text file or record that cannot be used is an error (default: skip it and list it)')
    .option('--store <uri>', 'add to a collection of this LanceDB store (see `build --store`); every server of the store shows the items')
    .action(async (f: { collection: string; source: string; limit?: number; groupBy?: string; replace?: boolean; keyPrefix?: string; strict?: boolean; store?: string }) => {
      const g = globals(ctx);
      if (f.store !== undefined) {
        await withStore(ctx, f.store, async (store) => {
          const head = await store.requireHead(f.collection);
          await startBackend(ctx);
          const r = await withStoreModel(store, head, async (model) => {
            const l = await loadSource(f.source, { limit: f.limit, model, strict: f.strict, quiet: g.quiet, previews: true, groupBy: f.groupBy, spoolDir: spoolDirOf(g.dataDir), keyPrefix: f.keyPrefix });
            reportSkipped(l.set.skipped ?? []);
            const rows = await encodeStream(model, itemsOf(model, l), head.manifest.rawType, g.quiet);
            return store.write(f.collection, rows, [], { replace: f.replace, build: head.build, onWait: waitNotice(f.collection, g.quiet) });
          });
          process.stdout.write(`added ${r.added} items${r.replaced ? `, replaced ${r.replaced}` : ''}; '${f.collection}' now holds ${r.head.manifest.count} in ${store.label}\n`);
        });
        return;
      }
      await startBackend(ctx);
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const l = await loadSource(f.source, { limit: f.limit, model: c.model, strict: f.strict, quiet: g.quiet, previews: true, groupBy: f.groupBy, spoolDir: spoolDirOf(g.dataDir), keyPrefix: f.keyPrefix });
        const r = await c.addAll(itemsOf(c.model, l), { replace: f.replace, quiet: g.quiet });
        reportSkipped(l.set.skipped ?? []);
        process.stdout.write(`added ${r.added} items${r.replaced ? `, replaced ${r.replaced}` : ''}; '${c.name}' now holds ${c.count}\n`);
      } finally {
        c.close();
      }
    });

  program
    .command('remove')
    .description('remove items by key')
    .requiredOption('--collection <name>', 'collection name')
    .requiredOption('--key <keys...>', 'keys to remove')
    .option('--store <uri>', 'remove from a collection of this LanceDB store (see `build --store`)')
    .action(async (f: { collection: string; key: string[]; store?: string }) => {
      const g = globals(ctx);
      if (f.store !== undefined) {
        await withStore(ctx, f.store, async (store) => {
          const r = await store.write(f.collection, [], f.key, { onWait: waitNotice(f.collection, g.quiet) });
          process.stdout.write(`removed ${r.removed} items; '${f.collection}' now holds ${r.head.manifest.count} in ${store.label}\n`);
        });
        return;
      }
      await startBackend(ctx);
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const n = await c.remove(f.key);
        process.stdout.write(`removed ${n} items; '${c.name}' now holds ${c.count}\n`);
      } finally {
        c.close();
      }
    });

  program
    .command('info')
    .description('collections, or one collection: counts, dims, params, sizes on disk, model figures')
    .option('--collection <name>', 'collection name')
    .option('--json', 'print JSON')
    .option('--store <uri>', 'the collections of this LanceDB store (see `build --store`)')
    .action(async (f: { collection?: string; json?: boolean; store?: string }) => {
      const g = globals(ctx);
      if (f.store !== undefined) {
        await withStore(ctx, f.store, async (store) => {
          const heads = f.collection ? [await store.requireHead(f.collection)] : await store.list();
          if (f.json) process.stdout.write(`${JSON.stringify(f.collection ? heads[0]!.manifest : heads.map((h) => h.name), null, f.collection ? 2 : 0)}\n`);
          else if (!heads.length) process.stdout.write(`no collections in ${store.label}\n`);
          else for (const h of heads) process.stdout.write(`${h.name} (${h.manifest.kind}): ${h.manifest.count} items, ${h.manifest.codeDim}-d codes, ${h.seq} writes since its build, in ${store.label}\n`);
        });
        return;
      }
      if (!f.collection) {
        const names = listCollections(g.dataDir);
        process.stdout.write(f.json ? `${JSON.stringify(names)}\n` : names.length ? `${names.join('\n')}\n` : `no collections in ${g.dataDir}\n`);
        const stopped = resumableBuilds(g.dataDir);
        if (!f.json && stopped.length) process.stdout.write(`stopped builds, resumed by the same build command: ${stopped.join(', ')}\n`);
        return;
      }
      await startBackend(ctx);
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const sizes = c.diskSizes();
        const info = { ...c.manifest, disk: sizes, bytesPerItem: c.count ? (sizes.index ?? 0) / c.count : 0 };
        if (f.json) {
          process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
          return;
        }
        const m = c.manifest;
        const t = (m.model.training ?? {}) as Record<string, number>;
        process.stdout.write(
          [
            `collection ${m.name} (${m.kind}) in ${c.paths.home} (version ${c.paths.version})`,
            `  items          ${m.count} (graph elements ${c.graphSize}, ${c.graphSize - m.count} deleted slots, freed by compaction); generation ${m.generation}`,
            `  codes          ${m.codeDim}-d, space ${m.space}${c.binaryBits ? `, binary ${c.binaryBits} bits` : ''}`,
            `  hnsw           M ${m.hnsw.M}, efConstruction ${m.hnsw.efConstruction}, ef ${m.hnsw.ef}`,
            `  model          ${String(m.model.arch)} from ${String(m.model.source)}, ${t.epochs} epochs, held-out loss ${Number(t.heldOutLoss).toFixed(3)}, ${Number(t.samplesPerSec).toFixed(0)} samples/s`,
            `  raw vectors    ${m.rawDim} x ${m.rawType}`,
            ...imageLines(c),
            `  on disk        index ${fmtBytes(sizes.index ?? 0)}, catalogue ${fmtBytes(sizes.catalogue ?? 0)}, model ${fmtBytes(sizes.model ?? 0)}`,
            `  created        ${m.createdAt}, updated ${m.updatedAt}`,
            '',
          ].join('\n'),
        );
      } finally {
        c.close();
      }
    });

  program
    .command('export')
    .description('write the codes as FILE.npy + FILE.labels.npy + FILE.keys.json (for Faiss, Qdrant, NumPy)')
    .requiredOption('--collection <name>', 'collection name')
    .requiredOption('--out <file>', 'output .npy path')
    .action(async (f: { collection: string; out: string }) => {
      await startBackend(ctx);
      const g = globals(ctx);
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const { rows: meta, data } = c.itemsWithCodes();
        await fs.mkdir(path.dirname(path.resolve(f.out)), { recursive: true });
        await writeCodes(f.out, data, c.manifest.codeDim, meta.map((r) => r.key), meta.map((r) => r.label));
        process.stdout.write(`wrote ${meta.length}x${c.manifest.codeDim} float32 codes to ${f.out}\n`);
      } finally {
        c.close();
      }
    });
}
