/**
 * `npm run bench:scale`: a million-item build, training on both cores, exact scans and exact Hamming search at scale, each next to an anchor
 * measured in the same run. Env: BENCH_MILLION_N (items of the build, default 1,000,000; 0 skips it), BENCH_HAMMING_N
 * (codes for the Hamming rows, default 10,000,000).
 */
import { PackedCodes } from '../src/encoder/binary.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitPca, pcaProject } from '../src/encoder/pca.js';
import { rng } from '../src/encoder/rng.js';
import { exactKnn } from '../src/indexer/exact.js';
import { FlatScan, scanKernel } from '../src/indexer/flat-scan.js';
import { MultiIndexHash } from '../src/indexer/mih.js';
import { exactScan } from '../src/indexer/retrieval.js';
import { DENSE_DEFAULTS } from '../src/encoder/dense.js';
import type { ArchConfig } from '../src/encoder/manifest.js';
import { fashion } from './fashion.js';
import { measureTraining, torchAnchor } from './training-speed.js';
import { millionRows } from './scale-million.js';
import { environment, publish, table } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });

/** Queries per second of `run` over `count` queries (after one warm-up query). */
function qps(count: number, run: (i: number) => unknown): number {
  run(0);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) run(i);
  return count / ((performance.now() - t0) / 1000);
}

const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rows: (string | number)[][] = [];

// First, while this process is small: the million-item build runs in processes of its own.
const millionN = Number(process.env.BENCH_MILLION_N ?? 1_000_000);
if (millionN > 0) rows.push(...(await millionRows(millionN)));

// Training on both cores, on one, and PyTorch on two threads: the default dense model, batch 256, 8,000 digits.
const denseArch: ArchConfig = { ...DENSE_DEFAULTS, inputDim: 784 };
const two = await measureTraining(denseArch, 8000, 256, 2);
const one = await measureTraining(denseArch, 8000, 256, 1);
const torch = torchAnchor();
rows.push([
  'training, default dense model, batch 256 (samples/s)',
  `${fmt(two.rate)} on 2 threads (held-out loss ${fmt(two.held, 2)})`,
  `1 thread: ${fmt(one.rate)} (held-out loss ${fmt(one.held, 2)}); PyTorch, 2 threads: ${torch === null ? 'not installed (apt-get install python3-torch)' : `${fmt(torch)} (latentdex at ${fmt(two.rate / torch, 2)}×)`}`,
  '≥ 1.2× PyTorch',
]);

// Exact pixel scan over the 60,000 Fashion-MNIST training images (784 bytes each), test images as queries.
const train = await fashion('train');
const test = await fashion('t10k', 1000);
const d = 784;
const n = train.keys.length;
const q = (i: number) => test.pixels.subarray((i % 1000) * d, ((i % 1000) + 1) * d);
const plainPixels = qps(30, (i) => exactKnn(train.pixels, d, q(i), 10, 'l2'));
const pixelScan = new FlatScan(train.pixels, d, 'l2');
const simdPixels = qps(300, (i) => pixelScan.knn(q(i), 10));
const pixelRetriever = exactScan('pixels', train.pixels, d, 'l2');
const batch = Float32Array.from(test.pixels.subarray(0, 500 * d));
const tB = performance.now();
pixelRetriever.searchMany(batch, 500, 10);
const batchPixels = 500 / ((performance.now() - tB) / 1000);
rows.push([`exact pixel scan, ${fmt(n)} × ${d} bytes, 10-NN (queries/s)`, `${fmt(simdPixels)} (wasm SIMD); ${fmt(batchPixels)} batched for eval`, `${fmt(plainPixels)} (plain JS loop, the implementation before)`, '≥ 100']);

// Exact 32-d scan: PCA-32 projections of the same images stand in for codes (a scan's cost is the same for any values).
const pca = fitPca(Float32Array.from(train.pixels.subarray(0, 10000 * d), (v) => v / 255), 10000, d, 32, { seed: 1 });
const codes = pcaProject(pca, Float32Array.from(train.pixels, (v) => v / 255), n);
const qCodes = pcaProject(pca, Float32Array.from(test.pixels, (v) => v / 255), 1000);
const cq = (i: number) => qCodes.subarray((i % 1000) * 32, ((i % 1000) + 1) * 32);
const plainCodes = qps(300, (i) => exactKnn(codes, 32, cq(i), 10, 'l2'));
const codeScan = new FlatScan(codes, 32, 'l2');
const simdCodes = qps(3000, (i) => codeScan.knn(cq(i), 10));
rows.push([`exact code scan, ${fmt(n)} × 32 floats, 10-NN (queries/s)`, `${fmt(simdCodes)} (wasm SIMD)`, `${fmt(plainCodes)} (plain JS loop)`, '≥ 5,000']);

// Exact Hamming 10-NN over random 64-bit codes (uniform: the hardest case for multi-index hashing).
const hn = Number(process.env.BENCH_HAMMING_N ?? 10_000_000);
const r = rng(7);
const words = new Uint32Array(hn * 2);
for (let i = 0; i < words.length; i++) words[i] = Math.floor(r() * 2 ** 32) >>> 0;
const packed = new PackedCodes(64, words, hn);
const tBuild = performance.now();
const mih = new MultiIndexHash(packed);
const buildS = (performance.now() - tBuild) / 1000;
const randomQ = Array.from({ length: 200 }, () => Uint32Array.from([Math.floor(r() * 2 ** 32) >>> 0, Math.floor(r() * 2 ** 32) >>> 0]));
// near-duplicate lookups: a stored code with 4 bits flipped
const nearQ = Array.from({ length: 200 }, (_, i) => {
  const row = Math.floor(r() * hn);
  const w = Uint32Array.from([words[row * 2]!, words[row * 2 + 1]!]);
  for (let f = 0; f < 4; f++) w[i % 2 === 0 ? 0 : 1]! ^= 1 << Math.floor(r() * 32);
  return w;
});
const ms = (count: number, run: (i: number) => unknown) => 1000 / qps(count, run);
const linearMs = ms(5, (i) => packed.search(randomQ[i]!, 10));
const mihRandomMs = ms(200, (i) => mih.search(randomQ[i]!, 10));
const mihNearMs = ms(200, (i) => mih.search(nearQ[i]!, 10));
for (let i = 0; i < 5; i++) {
  if (JSON.stringify(mih.search(randomQ[i]!, 10)) !== JSON.stringify(packed.search(randomQ[i]!, 10))) throw new Error('multi-index hashing disagrees with the linear scan');
}
rows.push([`exact Hamming 10-NN, ${fmt(hn)} random 64-bit codes (ms/query)`, `${fmt(mihRandomMs, 2)} (multi-index hashing, ${mih.substrings} tables; built in ${fmt(buildS, 1)} s)`, `${fmt(linearMs, 1)} (linear popcount scan)`, '< 10']);
rows.push([`same, near-duplicate queries (a stored code, 4 bits flipped) (ms/query)`, `${fmt(mihNearMs, 3)}`, `${fmt(linearMs, 1)}`, '< 10']);

publish(
  'scale',
  'Scale: a million-item build, training on two cores, exact scans and exact Hamming search (`npm run bench:scale`)',
  `${millionN > 0 ? `Build rows: \`npm run bench:million\`'s set of ${fmt(millionN)} Fashion-MNIST variants as an uncompressed IDX file, built by \`latentdex build\` with the defaults and a model trained beforehand on 20,000 of them (3 epochs); the anchor builds 60,000 of them (spread over the set) with the same model in the same run.\n\n` : ''}${table(['figure', 'latentdex', 'anchor, same run', 'goal'], rows)}\n\nScan kernel: ${scanKernel()}. Multi-index hashing answers exactly what the linear scan answers (checked in the run). ${environment(backendName())}`,
);
