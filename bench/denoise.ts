import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../data/mnist.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel, type ImageModelOptions } from '../src/encoder/fit.js';
import { gridPng } from '../src/encoder/png.js';
import { rng } from '../src/encoder/rng.js';
import { compareModels } from '../src/search/compare.js';
import { environment, publish, table } from './report.js';

// Denoising digits: squared error to the clean digit of the noisy input (anchor) and of three models' outputs, with
// each model's P@10 on mnist:test (does training to denoise cost search quality?). Writes docs/denoise.png.
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const train = loadMnist('train');
const test = loadMnist('test');
const n = test.keys.length;
const clean = Float32Array.from(test.pixels, (v) => v / 255);
const random = rng(7);
const gaussian = clean.map((v) => Math.min(1, Math.max(0, v + 0.3 * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()))));
const masked = clean.map((v) => (random() < 0.25 ? 0 : v));
const noises: [string, Float32Array][] = [
  ['Gaussian noise σ 0.3', gaussian],
  ['25% of pixels dropped', masked],
];
const family: [string, ImageModelOptions][] = [
  ['dense 32 (plain)', {}],
  ['dense 32, --denoise gaussian:0.3', { regularisers: { denoise: { kind: 'gaussian', level: 0.3 } } }],
  ['dense 32, --denoise masking:0.25', { regularisers: { denoise: { kind: 'masking', level: 0.25 } } }],
];
const sq = (a: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - clean[i]!) ** 2;
  return s / n;
};
const rows: (string | number)[][] = [['noisy input, no model (anchor)', ...noises.map(([, x]) => sq(x).toFixed(2)), '–']];
const pictures: Float32Array[][] = [];
const show = Array.from({ length: 12 }, (_, i) => i * 97);
const pick = (x: Float32Array) => show.map((i) => x.subarray(i * 784, (i + 1) * 784));
pictures.push(pick(clean), pick(gaussian));
for (const [name, o] of family) {
  process.stderr.write(`training ${name}\n`);
  const model = await fitImageModel(train, { quiet: true, ...o });
  const outs = noises.map(([, x]) => model.reconstruct(x, n));
  const [p] = compareModels([{ name, model }], {
    kind: 'image',
    items: { n: train.keys.length, raw: train.pixels, labels: train.labels, groups: null, keys: train.keys },
    queries: { n, raw: test.pixels, labels: test.labels, groups: null, keys: test.keys },
    inputOf: () => ({ items: train.pixels, queries: test.pixels }),
  });
  rows.push([name, ...outs.map((y) => sq(y).toFixed(2)), p!.precision.toFixed(3)]);
  pictures.push(pick(outs[0]!));
  model.dispose();
}
fs.writeFileSync(path.join(ROOT, 'docs', 'denoise.png'), gridPng(pictures, 28, 28, 1, 2));
publish(
  'denoise',
  'Denoising digits (`npm run bench:denoise`)',
  `Models trained on \`mnist:train\` (8,000, no labels), applied to the 2,000 \`mnist:test\` digits with noise added; squared error to the clean digit summed over 784 pixels (lower is better), and P@10 of the model's codes (exact search of mnist:train by mnist:test). Picture: docs/denoise.png (rows: clean, noisy, then each model's output in the order of the table).\n\n${table(['model', ...noises.map(([name]) => name), 'P@10'], rows)}\n\n${environment(backendName())}`,
);
