/**
 * `npm run bench:store`: a collection in a LanceDB store next to the local SQLite + HNSW collection, in the same run.
 * Fashion-MNIST 60k (a model trained on 20,000 of its images): build time into the store (local folder and a local
 * S3 server), queries/s and recall@10 of the store's IVF_PQ index vs the local HNSW graph, and how long a write takes
 * to show on a second replica (`serve --store`, in a process of its own). The million-item set
 * (`npm run bench:million`, /tmp/latentdex-million) encoded with the same model: queries/s and recall@10 of both
 * paths again. Env: BENCH_STORE_MILLION=0 skips the million rows.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnv } from '../src/config.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { selectImages } from '../data/images.js';
import { buildCollection } from '../src/indexer/build.js';
import { exactKnn } from '../src/indexer/exact.js';
import { HnswIndex, HNSW_DEFAULTS } from '../src/indexer/hnsw.js';
import { imageItems } from '../src/indexer/items.js';
import { LanceStore, publishable, type Head } from '../src/indexer/lance-store.js';
import { parseStore } from '../src/indexer/store-spec.js';
import { loadIdx } from '../data/idx.js';
import { progress } from '../src/progress.js';
import { tmpDir } from '../test/helpers.js';
import { startS3 } from '../test/s3-server.js';
import { fashion } from './fashion.js';
import { environment, publish, table } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const K = 10;
const QUERIES = 1000;
const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const seconds = (t0: number) => (performance.now() - t0) / 1000;

const train = await fashion('train');
const test = await fashion('t10k', QUERIES);
const model = await fitImageModel(selectImages(train, Array.from({ length: 20_000 }, (_, i) => i * 3)), { hidden: [256, 128], codeDim: 32, epochs: 4, batchSize: 256, quiet: true, seed: 1 });
const cd = model.codeDim;
const queries = model.encode(Float32Array.from(test.pixels, (v) => v / 255), QUERIES);

/** Mean share of the exact k nearest codes a search found. */
function recall(codes: Float32Array, found: string[][], keyOf: (row: number) => string): number {
  let hit = 0;
  for (let q = 0; q < QUERIES; q++) {
    const truth = new Set(exactKnn(codes, cd, queries.subarray(q * cd, (q + 1) * cd), K, 'l2').map((n) => keyOf(n.index)));
    hit += found[q]!.filter((k) => truth.has(k)).length;
  }
  return hit / (QUERIES * K);
}

/** Runs every query once (after one warm-up); queries/s and the keys found. */
async function run(search: (q: Float32Array) => Promise<string[]> | string[]): Promise<{ qps: number; found: string[][] }> {
  await search(queries.subarray(0, cd));
  const found: string[][] = [];
  const t0 = performance.now();
  for (let q = 0; q < QUERIES; q++) found.push(await search(queries.subarray(q * cd, (q + 1) * cd)));
  return { qps: QUERIES / seconds(t0), found };
}

const rows: (string | number)[][] = [];
const NO_S3 = readEnv({}).s3;

// Fashion-MNIST 60k: the local collection, then copied into a LanceDB folder and into LanceDB on a local S3 server.
const dataDir = tmpDir('latentdex-bench-store-');
let t0 = performance.now();
const c = await buildCollection(model, imageItems(train), { dataDir, name: 'fashion', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true });
const localBuild = seconds(t0);
const items = c.itemsWithCodes();
const codes60 = items.data;
const keyOf60 = (row: number) => items.rows[row]!.key;
const keyById = new Map(items.rows.map((r) => [r.id, r.key]));

const folder = await LanceStore.connect(parseStore(`lancedb:${tmpDir('latentdex-lance-')}`, NO_S3));
t0 = performance.now();
const head = await folder.publish(publishable(c), { quiet: true });
const folderBuild = seconds(t0);

const s3 = await startS3();
Object.assign(process.env, s3.env);
const s3Spec = `lancedb:s3://${s3.bucket}/bench`;
const onS3 = await LanceStore.connect(parseStore(s3Spec, readEnv(s3.env).s3));
t0 = performance.now();
const s3Head = await onS3.publish(publishable(c), { quiet: true });
const s3Build = seconds(t0);
rows.push(['build of 60,000 items into the store (copy + IVF_PQ index)', `${fmt(folderBuild, 1)} s (LanceDB folder); ${fmt(s3Build, 1)} s (LanceDB on local S3: s3rver + conditional writes)`, `local build (encode + SQLite + HNSW): ${fmt(localBuild, 1)} s`]);

const local60 = await run((q) => c.search(q, K).map((n) => keyById.get(n.id)!));
const lanceSearch = await folder.searcher(head);
const lance60 = await run(async (q) => (await lanceSearch(q, K)).map((h) => h.key));
const exact60 = await run(async (q) => (await lanceSearch(q, K, { exact: true })).map((h) => h.key));
rows.push([
  '60,000: 10-NN queries/s, recall@10 (exact code scan as truth)',
  `LanceDB IVF_PQ (${Math.round(Math.sqrt(60_000))} lists, 20 probed, refine ×10): ${fmt(lance60.qps)} q/s, recall ${fmt(recall(codes60, lance60.found, keyOf60), 3)}`,
  `local HNSW (M 16, ef 100): ${fmt(local60.qps)} q/s, recall ${fmt(recall(codes60, local60.found, keyOf60), 3)}; LanceDB exact scan (index bypassed): ${fmt(exact60.qps)} q/s, recall ${fmt(recall(codes60, exact60.found, keyOf60), 3)}`,
]);
const labelled = await run(async (q) => (await lanceSearch(q, K, { labels: ['3'] })).map((h) => h.key));
rows.push(['60,000: 10-NN with filter label = 3, pushed down', `LanceDB: ${fmt(labelled.qps)} q/s`, `unfiltered: ${fmt(lance60.qps)} q/s`]);
c.close();

// A second replica: its copy of the collection, then how long a write through the store takes to show on it.
const cache = tmpDir('latentdex-replica-');
t0 = performance.now();
const replica = spawn(process.execPath, [CLI, '--quiet', 'serve', '--store', s3Spec, '--port', '0', '--cache-dir', cache], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  replica.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = / at (http:\/\/\S+?)\/?\n/.exec(out);
    if (m) resolve(m[1]!);
  });
  replica.on('exit', (code) => reject(new Error(`replica exited with ${code}`)));
});
const replicaStart = seconds(t0);
const shows: number[] = [];
const commits: number[] = [];
const sample = [...(await (async () => {
  const out = [];
  for await (const b of onS3.rows(s3Head, { keys: [keyOf60(0)] })) out.push(...b);
  return out;
})())][0]!;
for (let i = 0; i < 10; i++) {
  const key = `written-${i}`;
  t0 = performance.now();
  await onS3.write('fashion', [{ ...sample, key }], []);
  commits.push(seconds(t0));
  while ((await fetch(`${url}/api/collections/fashion/items/${key}`)).status !== 200) await new Promise((r) => setTimeout(r, 10));
  shows.push(seconds(t0));
}
replica.kill('SIGTERM');
await s3.close();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
rows.push([
  'a write (1 item) through the store, until a second replica shows it (median of 10)',
  `${fmt(median(shows) * 1000)} ms (max ${fmt(Math.max(...shows) * 1000)} ms), replica polling every 1,000 ms`,
  `the write's commit alone: ${fmt(median(commits) * 1000)} ms; the replica's first copy of 60,000 items from S3: ${fmt(replicaStart, 1)} s`,
]);

// The million-item set: codes of the same model, into LanceDB and into a local HNSW graph.
const millionFile = '/tmp/latentdex-million/million-images-idx3-ubyte';
if (process.env.BENCH_STORE_MILLION !== '0' && fs.existsSync(millionFile)) {
  const set = await loadIdx(`${millionFile},${millionFile.replace("images-idx3", "labels-idx1")}`);
  const n = set.keys.length;
  const codes = new Float32Array(n * cd);
  const bar = progress({ title: 'encode', total: n });
  const B = 4096;
  for (let i = 0; i < n; i += B) {
    const m = Math.min(B, n - i);
    codes.set(model.encode(Float32Array.from(set.pixels.subarray(i * 784, (i + m) * 784), (v) => v / 255), m), i * cd);
    bar.update(i + m);
  }
  bar.stop();
  const keyOf = (row: number) => set.keys[row]!;
  // the store's rows hold what a collection's do: code, label and the raw pixels of the baseline
  const big = await LanceStore.connect(parseStore(`lancedb:${tmpDir('latentdex-lance-')}`, NO_S3));
  t0 = performance.now();
  const modelDir = path.join(tmpDir('latentdex-model-'), 'model');
  await model.save(modelDir);
  const bigHead: Head = await big.publish(
    {
      manifest: { ...head.manifest, name: 'million', count: n },
      modelDir,
      *items() {
        for (let i = 0; i < n; i++) {
          yield { key: set.keys[i]!, label: set.labels[i] ?? null, uri: null, raw: Buffer.from(set.pixels.buffer, set.pixels.byteOffset + i * 784, 784), thumb: null, code: Buffer.from(codes.buffer, i * cd * 4, cd * 4), bits: null, recon: null };
        }
      },
    },
    { quiet: true },
  );
  const bigBuild = seconds(t0);
  t0 = performance.now();
  const graph = HnswIndex.create(cd, 'l2', n, HNSW_DEFAULTS);
  const gbar = progress({ title: 'hnsw', total: n });
  for (let i = 0; i < n; i++) {
    graph.add(codes.subarray(i * cd, (i + 1) * cd), i);
    if (i % 10_000 === 0) gbar.update(i);
  }
  gbar.stop();
  const graphBuild = seconds(t0);
  rows.push([`build of ${fmt(n)} codes into the store (rows + IVF_PQ index)`, `${fmt(bigBuild)} s (LanceDB folder)`, `local HNSW graph of the same codes: ${fmt(graphBuild)} s`]);
  const bigSearch = await big.searcher(bigHead);
  const lanceM = await run(async (q) => (await bigSearch(q, K)).map((h) => h.key));
  const localM = await run((q) => graph.search(q, K, n, HNSW_DEFAULTS.ef).map((r) => keyOf(r.id)));
  rows.push([
    `${fmt(n)}: 10-NN queries/s, recall@10`,
    `LanceDB IVF_PQ (${Math.round(Math.sqrt(n))} lists, 20 probed, refine ×10): ${fmt(lanceM.qps)} q/s, recall ${fmt(recall(codes, lanceM.found, keyOf), 3)}`,
    `local HNSW (M 16, ef 100): ${fmt(localM.qps)} q/s, recall ${fmt(recall(codes, localM.found, keyOf), 3)}`,
  ]);
  big.close();
}
folder.close();
onS3.close();
model.dispose();

publish(
  'store',
  'A collection in LanceDB vs the local collection (`npm run bench:store`)',
  `${environment(backendName())}; LanceDB 0.37.1\n\n${table(['figure', 'LanceDB store', 'anchor, same run'], rows)}\n\nQueries are 1,000 Fashion-MNIST test images encoded by a dense model trained on 20,000 training images; recall is against an exact scan of the same codes. The local S3 server is s3rver on loopback behind a proxy that enforces If-None-Match as S3 does (no network latency): a real object store adds its round trips to every store figure.`,
);
