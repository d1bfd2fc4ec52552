import { loadMnist } from '../data/mnist.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel, type ImageModelOptions } from '../src/encoder/fit.js';
import { compareModels, formatCompareTable } from '../src/search/compare.js';
import { environment, publish } from './report.js';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const items = loadMnist('train');
const queries = loadMnist('test');
const quick = process.env.BENCH_QUICK === '1';
const shape = { width: 28, height: 28, channels: 1 };
const family: [string, ImageModelOptions][] = [
  ['dense 32', {}],
  ['conv 32', { arch: 'conv' }],
  ['dense 32, denoising masking:0.25', { regularisers: { denoise: { kind: 'masking', level: 0.25 } } }],
  ['dense 32, sparse 0.01', { regularisers: { sparse: 0.01 } }],
  ['dense 32, contractive 0.05', { regularisers: { contractive: 0.05 } }],
  ['dense 32, shift 2', { regularisers: { shift: { pixels: 2, ...shape } } }],
  ['binary 64 bits (semantic hashing)', { regularisers: { binaryBits: 64, binaryNoise: 4 } }],
];
const models = [];
for (const [name, o] of family) {
  process.stderr.write(`training ${name}\n`);
  models.push({ name, model: await fitImageModel(items, { ...(quick ? { epochs: 1 } : {}), quiet: true, ...o }) });
}
const rows = compareModels(
  models,
  {
    kind: 'image',
    items: { n: items.keys.length, raw: items.pixels, labels: items.labels, groups: null, keys: items.keys },
    queries: { n: queries.keys.length, raw: queries.pixels, labels: queries.labels, groups: null, keys: queries.keys },
    inputOf: () => ({ items: items.pixels, queries: queries.pixels }),
  },
  10,
);
publish(
  'models',
  'The autoencoder family (`npm run bench:models`)',
  `Trained on \`mnist:train\` (8,000; 10% held out for early stopping; at most ${quick ? 1 : 30} epochs, conv ${quick ? 1 : 10} at batch 64), searched exactly in each code space (Hamming for binary codes) with the 2,000 \`mnist:test\` digits as queries. Reconstruction error: squared error per test image summed over 784 pixels.\n\n${formatCompareTable(rows, 10)}\n\n${environment(backendName())}`,
);
models.forEach((m) => m.model.dispose());
