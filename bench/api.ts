import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { loadImageSource } from '../data/sources.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { imagePng } from '../src/encoder/png.js';
import { serve } from '../src/search/serve.js';
import { FILTER_SCAN_VALUES, type SearchOptions } from '../src/search/engine.js';
import { fashion } from './fashion.js';
import { environment, publish, table } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-api-'));
const digits = await loadImageSource('mnist');
const model = await fitImageModel(digits, { epochs: 3, quiet: true });
(await buildCollection(model, imageItems(digits), { dataDir, name: 'digits', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
// Keys name a part (p00/ … p99/): a prefix selects 10% (p1) or 1% (p17/) of the items, at random w.r.t. their content.
const fxRaw = await fashion('train');
const fx = { ...fxRaw, keys: fxRaw.keys.map((k, i) => `p${String(i % 100).padStart(2, '0')}/${k}`) };
(await buildCollection(model, imageItems(fx), { dataDir, name: 'fashion', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
model.dispose();

const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true });
const { url, engine } = running;
const keys = digits.keys.filter((_, i) => i % 97 === 0);
const DURATION = Number(process.env.BENCH_SECONDS ?? 8);

// Loopback only, bounded by duration: query by key, k = 10.
let n = 0;
const byKey = await autocannon({
  url,
  connections: 8,
  duration: DURATION,
  requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/api/collections/digits/items/${keys[n++ % keys.length]}/neighbors?k=10` }) }],
});

const boundary = '----latentdexbench';
const png = imagePng(digits.pixels.subarray(784 * 123, 784 * 124), 28, 28, 1);
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\nContent-Type: image/png\r\n\r\n`),
  png,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);
const upload = await autocannon({
  url: `${url}/api/collections/digits/search?k=10`,
  connections: 4,
  duration: DURATION,
  method: 'POST',
  headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  body,
});

// Codes vs exact pixel search per query on 60,000 Fashion-MNIST items, from the engine's own timings.
let codeMs = 0;
let pixelMs = 0;
const Q = 100;
for (let i = 0; i < Q; i++) {
  const r = await engine.byKey('fashion', fx.keys[i * 571]!, { k: 10, compare: true });
  codeMs += r.codes.latencyMs;
  pixelMs += r.baseline!.latencyMs;
}

// Filtered search on Fashion-MNIST 60,000: recall@10 against the exact filtered scan of the codes, and queries/s.
const fq = Array.from({ length: 200 }, (_, i) => fx.keys[(i * 293) % fx.keys.length]!);
const filters: [string, SearchOptions['filter']][] = [
  ['none (100%)', undefined],
  ['labels 0–4 (50%)', { labels: ['0', '1', '2', '3', '4'] }],
  ['key prefix p1 (10%)', { prefix: 'p1' }],
  ['label 3 (10%)', { labels: ['3'] }],
  ['key prefix p17/ (1%)', { prefix: 'p17/' }],
  ['label 3 and prefix p1 (1%)', { labels: ['3'], prefix: 'p1' }],
];
const ALL = { labels: Array.from({ length: 10 }, (_, i) => String(i)) };
const timed = async (o: SearchOptions) => {
  const out: string[][] = [];
  const t0 = performance.now();
  for (const key of fq) out.push((await engine.byKey('fashion', key, { k: 10, ...o })).codes.hits.map((h) => h.key));
  return { keys: out, qps: fq.length / ((performance.now() - t0) / 1000) };
};
const recallOf = (got: string[][], want: string[][]) => got.reduce((s, g, i) => s + g.filter((k) => want[i]!.includes(k)).length / Math.max(1, want[i]!.length), 0) / got.length;
const filterRows: string[][] = [];
for (const [name, filter] of filters) {
  const exact = await timed({ filter: filter ?? ALL, filterPlan: 'scan' });
  const graph = await timed(filter ? { filter, filterPlan: 'graph' } : {});
  const auto = filter ? await timed({ filter }) : graph;
  const matched = filter ? (await engine.byKey('fashion', fq[0]!, { k: 1, filter })).filter!.matched : fx.keys.length;
  filterRows.push([
    name,
    matched.toLocaleString('en'),
    `${recallOf(graph.keys, exact.keys).toFixed(3)} · ${graph.qps.toFixed(0)} q/s`,
    filter ? `${recallOf(auto.keys, exact.keys).toFixed(3)} · ${auto.qps.toFixed(0)} q/s` : '—',
    `${exact.qps.toFixed(0)} q/s`,
  ]);
}

// Batches: 100 queries by key in one request vs one request each (loopback HTTP, sequential).
const bkeys = digits.keys.filter((_, i) => i % 100 === 0).slice(0, 100);
const best = async (f: () => Promise<void>) => {
  let b = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    await f();
    b = Math.min(b, performance.now() - t0);
  }
  return b / bkeys.length;
};
const batchRows: string[][] = [];
for (const compare of [false, true]) {
  const qs = `k=10${compare ? '&compare=pixel' : ''}`;
  const single = await best(async () => {
    for (const key of bkeys) await (await fetch(`${url}/api/collections/digits/items/${key}/neighbors?${qs}`)).arrayBuffer();
  });
  const batched = await best(async () => {
    const r = await fetch(`${url}/api/collections/digits/search/batch?${qs}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ queries: bkeys.map((key) => ({ key })) }) });
    if (!r.ok) throw new Error(`batch failed: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  });
  batchRows.push([`100 keys, k=10${compare ? ', with the exact pixel baseline' : ''}`, `${batched.toFixed(2)} ms/query`, `one request each: ${single.toFixed(2)} ms/query`, `${(single / batched).toFixed(1)}×`]);
}

await running.close();
fs.rmSync(dataDir, { recursive: true, force: true });

const errs = (r: autocannon.Result) => r.errors + r.non2xx;
const rows = [
  ['GET neighbors by key, k=10 (digits, 10,000 items)', `${byKey.latency.p50} ms`, 'goal ≤ 2 ms', `${byKey.requests.average.toFixed(0)} req/s (goal ≥ 1,500), ${errs(byKey)} errors`],
  ['POST search, uploaded 28x28 PNG, k=10', `${upload.latency.p50} ms`, 'goal ≤ 15 ms', `${upload.requests.average.toFixed(0)} req/s, ${errs(upload)} errors`],
  ['per query on Fashion-MNIST 60,000: codes (HNSW)', `${(codeMs / Q).toFixed(3)} ms`, `exact pixel scan: ${(pixelMs / Q).toFixed(1)} ms`, `${(pixelMs / codeMs).toFixed(0)}× faster (goal ≥ 50×)`],
];
publish(
  'api',
  'HTTP API (`npm run bench:api`)',
  [
    `autocannon on loopback, ${DURATION} s per route, 8 connections (4 for uploads); p50 latency.`,
    table(['route', 'p50', 'anchor', 'throughput'], rows),
    `Filtered search, Fashion-MNIST 60,000 items, 200 queries by key, k=10, default ef: recall@10 against the exact scan of the codes the filter lets through (the anchor), and engine queries/s. "auto" is what the API does: an exact scan of the allowed rows when they hold at most ${FILTER_SCAN_VALUES.toLocaleString('en')} code values (${FILTER_SCAN_VALUES / 32} rows of 32-d codes), the filtered HNSW search otherwise.`,
    table(['filter', 'items matched', 'HNSW with the filter inside', 'auto (API)', 'exact filtered scan (anchor)'], filterRows),
    'Batches: POST /search/batch with 100 keys vs 100 sequential GETs, loopback, best of 3.',
    table(['batch', 'batched', 'anchor', 'speed-up'], batchRows),
    environment(backendName()),
  ].join('\n\n'),
);
