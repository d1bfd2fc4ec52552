import { backendName, initBackend } from '../src/encoder/backend.js';
import { CONV_DEFAULTS } from '../src/encoder/conv.js';
import { DENSE_DEFAULTS } from '../src/encoder/dense.js';
import { installFastKernels, uninstallFastKernels } from '../src/encoder/kernels.js';
import type { ArchConfig } from '../src/encoder/manifest.js';
import { environment, publish, table } from './report.js';
import { measureTraining as measure, torchAnchor } from './training-speed.js';

const BATCH = 256;

/** Training FLOPs per sample: forward 2·Σ(in·out), backward twice that (input and weight gradients). */
function flopsPerSample(dims: number[]): number {
  let macs = 0;
  for (let i = 0; i + 1 < dims.length; i++) macs += dims[i]! * dims[i + 1]!;
  return 2 * macs * 3;
}

const backend = await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const dims = [784, ...DENSE_DEFAULTS.hidden, 32, ...[...DENSE_DEFAULTS.hidden].reverse(), 784];
const fps = flopsPerSample(dims);
const rows: (string | number)[][] = [];
const dense: ArchConfig = { ...DENSE_DEFAULTS, inputDim: 784 };
const conv: ArchConfig = { ...CONV_DEFAULTS, width: 28, height: 28, channels: 1 };
const gflops = (rate: number) => ((rate * fps) / 1e9).toFixed(1);
const one = await measure(dense, 8000, BATCH, 1);
const two = await measure(dense, 8000, BATCH, 2);
const kernels = backend === 'wasm' ? ' + transpose-then-MatMul kernels' : '';
rows.push([`latentdex dense, ${backend}${kernels}, 2 threads`, two.rate.toFixed(0), gflops(two.rate), two.held.toFixed(2)]);
rows.push([`latentdex dense, ${backend}${kernels}, 1 thread (anchor)`, one.rate.toFixed(0), gflops(one.rate), one.held.toFixed(2)]);
if (backend === 'wasm') {
  uninstallFastKernels();
  const stock = await measure(dense, 1500, BATCH, 1);
  installFastKernels();
  rows.push(['latentdex dense, stock tfjs wasm kernels, 1 thread (anchor, 1,500 items)', stock.rate.toFixed(0), gflops(stock.rate), '']);
}
const torch = torchAnchor();
rows.push(['PyTorch CPU dense, 2 threads (anchor, bench/torch_train.py)', torch === null ? 'not installed (apt-get install python3-torch)' : torch.toFixed(0), torch === null ? '' : gflops(torch), '']);
if (torch !== null) rows.push(['latentdex 2 threads / PyTorch 2 threads (goal ≥ 1.2×)', `${(two.rate / torch).toFixed(2)}×`, '', '']);
const convOne = await measure(conv, 3000, 64, 1);
const convTwo = await measure(conv, 3000, 64, 2);
rows.push([`latentdex conv ${CONV_DEFAULTS.filters.join('-')}, batch 64, 2 threads`, convTwo.rate.toFixed(0), '', convTwo.held.toFixed(2)]);
rows.push([`latentdex conv, batch 64, 1 thread (anchor)`, convOne.rate.toFixed(0), '', convOne.held.toFixed(2)]);
publish(
  'train',
  'Training speed (`npm run bench:train`)',
  `Default dense autoencoder ${dims.join('-')}, batch ${BATCH}, Adam, BCE, on 8,000 mnist:train digits (10% held out); ${(fps / 1e6).toFixed(1)} MFLOP per training sample. Samples/s of the second epoch; held-out loss after two epochs from the same seed (threads split each batch, so the two should agree). Conv rows: 3,000 digits. PyTorch trains the same dense model on random inputs.\n\n${table(['what', 'samples/s', 'GFLOP/s', 'held-out loss'], rows)}\n\n${environment(backendName())}`,
);
