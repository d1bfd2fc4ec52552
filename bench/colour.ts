import { loadDir } from '../data/dir.js';
import { imageDim } from '../data/images.js';
import { standardised } from '../src/encoder/input-scale.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel, type ImageModelOptions } from '../src/encoder/fit.js';
import { compareModels, formatCompareTable } from '../src/search/compare.js';
import { emojiFolder } from './emoji.js';
import { environment, publish } from './report.js';

// Colour retrieval on the open emoji set: every image a query against the rest (itself excluded), P@10 by
// category. The models never see the categories; pixels and PCA-32 are measured in the same run.
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const quick = process.env.BENCH_QUICK === '1';
const set = await loadDir(emojiFolder(), { previews: false });
process.stderr.write(`${set.keys.length} images, ${set.width}x${set.height}x${set.channels}, fit ${set.fit}\n`);
const shape = { width: set.width, height: set.height, channels: set.channels };
// Each family with colour's default input (standardised) and with pixels read as 0-1, the default before it.
const family: [string, ImageModelOptions][] = [
  ['dense 32 (default: standardised input)', {}],
  ['dense 32, 0-1 input', { inputScale: '0-1' }],
  ['conv 32 (standardised input)', { arch: 'conv' }],
  ['conv 32, 0-1 input', { arch: 'conv', inputScale: '0-1' }],
  ['dense 32, shift 2', { regularisers: { shift: { pixels: 2, ...shape } } }],
  ['binary 64 bits, noise', { regularisers: { binaryBits: 64, binarize: 'noise' } }],
  ['binary 64 bits, median cut (the default)', { regularisers: { binaryBits: 64, binarize: 'median' } }],
  ['binary 64 bits, median cut, 0-1 input', { regularisers: { binaryBits: 64, binarize: 'median' }, inputScale: '0-1' }],
];
const only = process.env.BENCH_ONLY?.split(',');
const models = [];
for (const [name, o] of family.filter(([n]) => !only || only.includes(n))) {
  process.stderr.write(`training ${name}\n`);
  models.push({ name, model: await fitImageModel(set, { ...(quick ? { epochs: 1 } : {}), quiet: true, ...o }) });
}
const side = { n: set.keys.length, raw: set.pixels, labels: set.labels, groups: null, keys: set.keys };
const rows = compareModels(models, { kind: 'image', items: side, queries: side, inputOf: () => ({ items: set.pixels, queries: set.pixels }) }, 10);
// The anchors on the input the standardised models see: what standardising alone buys, without a model.
const z = { ...side, raw: standardised(set.pixels, set.keys.length, imageDim(set)) };
for (const r of compareModels([], { kind: 'image', items: z, queries: z, inputOf: () => ({ items: z.raw, queries: z.raw }) }, 10)) {
  rows.push({ ...r, name: r.name.replace(/^(pixels|PCA)/, '$1 of standardised images,'), reconError: null });
}
publish(
  'colour',
  'Colour images: the emoji set (`npm run bench:colour`)',
  `npm \`emoji-datasource-google\`: ${set.keys.length} 64-px colour PNGs in ${new Set(set.labels).size} categories, read as a \`dir:\` folder with the defaults (${set.width}x${set.height}x${set.channels}, fit ${set.fit}, alpha on white). Every image is a query against all the others; P@10 = share of the 10 nearest in the query's category. Models are trained on all images without labels (10% held out for early stopping), with the defaults (colour input standardised: each image to mean 0 and standard deviation 1, linear output, squared error; rows marked 0-1 read pixels as they are, with a sigmoid output and cross-entropy): at most 30 epochs (conv 10), batch 256 (conv 64) made smaller for a small set so that an epoch takes at least 25 steps (here 68 and 64).\n\n${formatCompareTable(rows, 10)}\n\n${environment(backendName())}`,
);
models.forEach((m) => m.model.dispose());
