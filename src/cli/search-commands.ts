import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { count, encodable, loadSource, queriesOf, vectorsOf, type Loaded } from './sources.js';
import { reportSkipped } from './collection-commands.js';
import { TrainedModel } from '../encoder/model.js';
import { fail } from '../errors.js';
import { compareModels, formatCompareTable } from '../search/compare.js';
import { projectCodes, renderMapPng } from '../search/map.js';
import { writeFileAtomic } from '../encoder/npy.js';
import { Collection, type RawVectors } from '../indexer/collection.js';
import { evaluate, formatEvalTable, type QuerySet } from '../search/eval.js';
import { globals, startBackend, type Ctx } from './context.js';
import { floatArg, intArg, outFileArg } from './options.js';
import { MAX_FEEDBACK, MAX_SHORTLIST, RERANK_DEFAULTS, rerankOptions } from '../search/rerank.js';
import { DemoBuilds } from '../search/demo.js';
import { checkListen, serve } from '../search/serve.js';
import { DEFAULT_HOT_LIMIT, DEFAULT_SYNC_MS, StoreMirror, sweepTempCaches, TEMP_CACHE_PREFIX } from '../indexer/mirror.js';
import { log } from '../progress.js';
import { openStore } from './store.js';
import { backendName } from '../encoder/backend.js';

/** Loads eval queries for a collection from a source spec (`groupBy`: the jsonl field naming their source document). */
export async function loadQueries(c: Collection, spec: string, o: { limit?: number; groupBy?: string; quiet?: boolean } = {}): Promise<QuerySet> {
  if (o.groupBy !== undefined && !c.hasSharedGroups()) {
    throw fail('INVALID_ARGUMENT', `collection '${c.name}' was built without source documents, so --group-by cannot skip a query's own; rebuild it with \`latentdex build --collection ${c.name} --source SRC --group-by ${o.groupBy} --replace\``);
  }
  // a query text without a word of the vocabulary has no code, as a build's item has none: left out and listed,
  // with the files of an image source that could not be read
  const { loaded, skipped } = encodable(c.model, await loadSource(spec, { limit: o.limit, model: c.model, groupBy: o.groupBy, quiet: o.quiet }));
  reportSkipped(skipped, { strict: false });
  return queriesOf(c.model, loaded);
}

export function addSearchCommands(ctx: Ctx): void {
  ctx.program
    .command('eval')
    .description('precision@k, mAP, HNSW recall, queries/s and bytes/item: codes (HNSW, exact) vs the exact baseline vs PCA/LSA')
    .option('--collection <name>', 'collection to search')
    .requiredOption('--queries <src>', 'query source (a query never counts itself, nor its own source document)')
    .option('--compare-models <dirs...>', 'instead of a collection: compare these model directories on --source and --queries')
    .option('--source <src>', 'with --compare-models: the items searched')
    .option('--k <n>', 'neighbours per query', intArg(1, 1000), 10)
    .option('--ef <n>', 'HNSW ef (default: the collection’s)', intArg(1, 4096))
    .option('--limit <n>', 'use at most N queries', intArg())
    .option('--group-by <field>', "jsonl queries: the field naming each record's source document; neighbours from the query's own are skipped")
    .option('--rerank <n>', `two-stage row: rows the codes shortlist for the exact re-ranking (0: no such row; default ${RERANK_DEFAULTS.text.shortlist})`, intArg(0, MAX_SHORTLIST))
    .option('--blend <w>', `two-stage row, texts: weight of the code distance in the re-ranking (default ${RERANK_DEFAULTS.text.blend})`, floatArg(0, 1))
    .option('--feedback <n>', `two-stage row, texts: the best re-ranked documents folded into the query for a second re-ranking (0: none; default ${RERANK_DEFAULTS.text.feedback}; with feedback, the row without it is shown too)`, intArg(0, MAX_FEEDBACK))
    .option('--json', 'print JSON instead of a markdown table')
    .action(async (f: { collection?: string; queries: string; compareModels?: string[]; source?: string; k: number; ef?: number; limit?: number; groupBy?: string; rerank?: number; blend?: number; feedback?: number; json?: boolean }) => {
      await startBackend(ctx);
      const g = globals(ctx);
      if (f.compareModels) {
        if (!f.source) throw fail('INVALID_ARGUMENT', '--compare-models needs --source (the items to search) and --queries');
        const models = [];
        for (const dir of f.compareModels) models.push({ name: path.basename(path.resolve(dir)), model: await TrainedModel.load(dir) });
        const first = models[0]!.model;
        const items = await loadSource(f.source, { model: first, groupBy: f.groupBy, quiet: g.quiet });
        const queries = await loadSource(f.queries, { limit: f.limit, model: first, groupBy: f.groupBy, quiet: g.quiet });
        const side = (l: Loaded, raw: RawVectors) => ({ n: count(l), raw, labels: l.set.labels, groups: l.kind === 'text' ? l.set.groups : null, keys: l.set.keys });
        const rows = compareModels(
          models,
          {
            kind: items.kind,
            items: side(items, vectorsOf(first, items).raw),
            queries: side(queries, vectorsOf(first, queries).raw),
            inputOf: (m) => ({ items: vectorsOf(m, items).input, queries: vectorsOf(m, queries).input }),
          },
          f.k,
          rerankOptions(items.kind, { rerank: f.rerank ?? RERANK_DEFAULTS.text.shortlist, blend: f.blend, feedback: f.feedback }),
        );
        process.stdout.write(f.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatCompareTable(rows, f.k)}\n`);
        models.forEach((m) => m.model.dispose());
        return;
      }
      if (!f.collection) throw fail('INVALID_ARGUMENT', 'name a --collection (or give --compare-models DIR... --source SRC)');
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const q = await loadQueries(c, f.queries, { limit: f.limit, groupBy: f.groupBy, quiet: g.quiet });
        const report = evaluate(c, q, { k: f.k, ef: f.ef, quiet: g.quiet, rerank: { rerank: f.rerank, blend: f.blend, feedback: f.feedback } });
        process.stdout.write(f.json ? `${JSON.stringify(report, null, 2)}\n` : formatEvalTable(report));
      } finally {
        c.close();
      }
    });
}

export function addMapCommand(ctx: Ctx): void {
  ctx.program
    .command('map')
    .description("picture of a collection's codes: PCA to 2-D, one colour per label (legend in label order)")
    .requiredOption('--collection <name>', 'collection name')
    .option('--out <file>', 'PNG to write', outFileArg, 'map.png')
    .option('--max <n>', 'items drawn at most (evenly spaced)', intArg(10, 1000000), 10000)
    .action(async (f: { collection: string; out: string; max: number }) => {
      await startBackend(ctx);
      const g = globals(ctx);
      const c = await Collection.open(g.dataDir, f.collection, { quiet: g.quiet });
      try {
        const map = projectCodes(c, f.max);
        await writeFileAtomic(f.out, renderMapPng(map));
        process.stdout.write(`map of ${map.points.length} codes (${map.labels.length} labels: ${map.labels.join(', ')}) written to ${f.out}\n`);
      } finally {
        c.close();
      }
    });
}

export function addServeCommand(ctx: Ctx, webDir: string, version: string): void {
  ctx.program
    .command('serve')
    .description('serve the search API and the web page')
    .option('--port <n>', 'port', intArg(0, 65535), 8080)
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--demo', 'build the demo collections first when they are absent')
    .option('--max-upload-mb <n>', 'largest accepted upload', intArg(1, 100), 5)
    .option('--serve-originals', "serve image items' original files, only from the folders each collection was read from")
    .option('--allowed-host <names...>', 'host names the page may be opened under besides localhost (a loopback server refuses others: DNS-rebinding guard)')
    .option('--store <uri>', "serve a LanceDB store's collections as one of many stateless replicas (see `build --store`)")
    .option('--cache-dir <dir>', 'with --store: where the local copies are kept (default: a temporary folder removed at exit)')
    .option('--sync-ms <n>', "with --store: how often the store is asked for new writes, the longest a write takes to show here", intArg(50, 3_600_000), DEFAULT_SYNC_MS)
    .option('--hot-limit <n>', 'with --store: copy collections of at most N items (each copy holds whole rows on this disk)', intArg(1), DEFAULT_HOT_LIMIT)
    .action(async (f: { port: number; host: string; demo?: boolean; maxUploadMb: number; serveOriginals?: boolean; allowedHost?: string[]; store?: string; cacheDir?: string; syncMs: number; hotLimit: number }, cmd: Command) => {
      const g = globals(ctx);
      if (f.store !== undefined && f.demo) throw fail('INVALID_ARGUMENT', '--demo builds local collections; give --store or --demo, not both');
      // a replica's options given without a store are refused, not ignored
      for (const o of cmd.options.filter((x) => ['cacheDir', 'syncMs', 'hotLimit'].includes(x.attributeName()))) {
        if (f.store === undefined && cmd.getOptionValueSource(o.attributeName()) === 'cli') throw fail('INVALID_ARGUMENT', `${o.long} sets how a replica of a store works; give it with --store`);
      }
      const store = f.store !== undefined ? await openStore(ctx, f.store) : undefined;
      if (store && !f.cacheDir) {
        const swept = sweepTempCaches(os.tmpdir());
        if (swept) log(`removed ${swept} temporary caches left by replicas that were killed`, g.quiet);
      }
      const tempCache = store && !f.cacheDir ? await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_CACHE_PREFIX)) : undefined;
      const cacheDir = f.cacheDir ? path.resolve(f.cacheDir) : tempCache;
      const dropCache = () => tempCache && fs.rmSync(tempCache, { recursive: true, force: true });
      await startBackend(ctx);
      let mirror: StoreMirror | undefined;
      try {
        if (store && cacheDir) {
          await checkListen(f.host, f.port);
          mirror = new StoreMirror(store, { cacheDir, intervalMs: f.syncMs, hotLimit: f.hotLimit, quiet: g.quiet, lockTimeoutMs: 5000 });
          await mirror.start();
        }
      } catch (e) {
        await mirror?.close();
        store?.close();
        dropCache();
        throw e;
      }
      const dataDir = cacheDir ?? g.dataDir;
      // Missing demo collections are built in the background: the page is served at once and shows their progress.
      const demo = f.demo ? new DemoBuilds({ dataDir, quiet: g.quiet }) : undefined;
      const running = await serve({ dataDir, host: f.host, port: f.port, apiKey: ctx.env.apiKey, maxUploadBytes: f.maxUploadMb * 1048576, serveOriginals: !!f.serveOriginals, allowedHosts: f.allowedHost, webDir, backend: backendName(), version, quiet: g.quiet, demo, mirror }).catch((e: unknown) => {
        store?.close();
        dropCache();
        throw e;
      });
      demo?.start();
      const building = demo?.status().map((b) => b.name) ?? [];
      process.stdout.write(`latentdex serving ${[...running.engine.names(), ...(mirror?.indexedNames() ?? [])].join(', ') || 'no collections'}${building.length ? ` (building ${building.join(', ')})` : ''}${store ? ` from ${store.label}` : ''} at ${running.url}/\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          demo?.close();
          void running.close().then(() => {
            store?.close();
            dropCache();
            resolve();
          });
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
