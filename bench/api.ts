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
import { fashion } from './fashion.js';
import { environment, publish, table } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-api-'));
const digits = await loadImageSource('mnist');
const model = await fitImageModel(digits, { epochs: 3, quiet: true });
(await buildCollection(model, imageItems(digits), { dataDir, name: 'digits', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
const fx = await fashion('train');
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
  `autocannon on loopback, ${DURATION} s per route, 8 connections (4 for uploads); p50 latency.\n\n${table(['route', 'p50', 'anchor', 'throughput'], rows)}\n\n${environment(backendName())}`,
);
