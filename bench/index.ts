import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { exactKnn } from '../src/indexer/exact.js';
import { fashion } from './fashion.js';
import { environment, publish, table } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const train = await fashion('train');
const queries = await fashion('t10k', 1000);
// The model is trained first (not timed): the figure is the build of an index once a model exists.
const model = await fitImageModel(await fashion('train', 10000), { epochs: 3, quiet: true });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-'));
const t0 = performance.now();
const c = await buildCollection(model, imageItems(train), {
  dataDir,
  name: 'fashion',
  kind: 'image',
  space: 'l2',
  rawDim: 784,
  rawType: 'u8',
  params: {},
  quiet: true,
});
const buildSeconds = (performance.now() - t0) / 1000;

const n = c.count;
const cd = c.manifest.codeDim;
const qCodes = model.encode(queries.pixels, queries.keys.length);
const { ids, data } = c.codeMatrix();
const nq = queries.keys.length;
let recall = 0;
const tH = performance.now();
const hnsw = Array.from({ length: nq }, (_, i) => c.search(qCodes.subarray(i * cd, (i + 1) * cd), 10));
const hnswQps = nq / ((performance.now() - tH) / 1000);
const tE = performance.now();
const exact = Array.from({ length: nq }, (_, i) => exactKnn(data, cd, qCodes.subarray(i * cd, (i + 1) * cd), 10, 'l2'));
const exactQps = nq / ((performance.now() - tE) / 1000);
for (let i = 0; i < nq; i++) {
  const truth = new Set(exact[i]!.map((h) => ids[h.index]));
  recall += hnsw[i]!.filter((h) => truth.has(h.id)).length / 10;
}
recall /= nq;
const raw = c.rawMatrix();
const tP = performance.now();
const pixelQueries = 100;
for (let i = 0; i < pixelQueries; i++) exactKnn(raw.data, 784, queries.pixels.subarray(i * 784, (i + 1) * 784), 10, 'l2');
const pixelQps = pixelQueries / ((performance.now() - tP) / 1000);
const sizes = c.diskSizes();
const rows = [
  ['build: encode + HNSW insert + SQLite catalogue + save', `${buildSeconds.toFixed(1)} s for ${n} items`, 'goal < 60 s', `${(n / buildSeconds).toFixed(0)} items/s`],
  [`HNSW recall@10 vs exact code search (ef ${c.manifest.hnsw.ef}, M ${c.manifest.hnsw.M})`, recall.toFixed(4), 'goal ≥ 0.99', ''],
  ['queries/s, HNSW over 32-d codes (1 thread)', hnswQps.toFixed(0), `exact 32-d code scan: ${exactQps.toFixed(0)}`, `${(hnswQps / exactQps).toFixed(0)}× faster`],
  ['queries/s, exact 784-d pixel scan (the baseline)', pixelQps.toFixed(0), '', `HNSW ${(hnswQps / pixelQps).toFixed(0)}× faster`],
  ['bytes per item on disk: codes + graph (codes.hnsw)', ((sizes.index ?? 0) / n).toFixed(0), 'raw float32 pixels: 3136', `${(3136 / ((sizes.index ?? 0) / n)).toFixed(1)}× smaller`],
  ['bytes per item: whole catalogue (pixels u8, thumbnail, code, key)', ((sizes.catalogue ?? 0) / n).toFixed(0), '', ''],
];
publish(
  'index',
  'Index build and HNSW (`npm run bench:index`)',
  `Fashion-MNIST train (${n} items of 28x28, \`idx:\` source), model trained beforehand (untimed); ${nq} t10k queries.\n\n${table(['figure', 'value', 'anchor', 'ratio'], rows)}\n\n${environment(backendName())}`,
);
c.close();
model.dispose();
fs.rmSync(dataDir, { recursive: true, force: true });
