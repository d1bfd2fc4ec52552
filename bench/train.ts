import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadMnist } from '../data/mnist.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { buildDense, DENSE_DEFAULTS } from '../src/encoder/dense.js';
import { installFastKernels, uninstallFastKernels } from '../src/encoder/kernels.js';
import { objective } from '../src/encoder/train.js';
import { environment, publish, table } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BATCH = 256;

/** Training FLOPs per sample: forward 2·Σ(in·out), backward twice that (input and weight gradients). */
function flopsPerSample(dims: number[]): number {
  let macs = 0;
  for (let i = 0; i + 1 < dims.length; i++) macs += dims[i]! * dims[i + 1]!;
  return 2 * macs * 3;
}

/** Samples/s of Adam steps on the default dense autoencoder, with batches gathered on the backend. */
function measure(steps: number): number {
  const arch = { ...DENSE_DEFAULTS, inputDim: 784 };
  const parts = buildDense(arch, 1);
  const set = loadMnist('train');
  const x = tf.tensor2d(set.pixels, [set.keys.length, 784]);
  const vars = [...parts.encoder.trainableWeights, ...parts.decoder.trainableWeights].map((w) => w.read() as tf.Variable);
  const opt = tf.train.adam(1e-3);
  const step = (i: number) => {
    const cost = tf.tidy(() => {
      const idx = tf.range((i * BATCH) % 7680, ((i * BATCH) % 7680) + BATCH, 1, 'int32');
      const xb = tf.gather(x, idx) as tf.Tensor2D;
      return opt.minimize(() => objective(parts, xb, 'bce', {}, i, true), true, vars)!;
    });
    cost.dataSync();
    cost.dispose();
  };
  for (let i = 0; i < 2; i++) step(i);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step(i);
  const rate = (steps * BATCH) / ((performance.now() - t0) / 1000);
  opt.dispose();
  x.dispose();
  parts.encoder.dispose();
  parts.decoder.dispose();
  return rate;
}

function torchAnchor(): number | null {
  const r = spawnSync('/usr/bin/python3', [path.join(HERE, '..', '..', 'bench', 'torch_train.py'), '30'], { encoding: 'utf8' });
  const v = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(v) ? v : null;
}

const backend = await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const dims = [784, ...DENSE_DEFAULTS.hidden, 32, ...[...DENSE_DEFAULTS.hidden].reverse(), 784];
const fps = flopsPerSample(dims);
const rows: (string | number)[][] = [];
const fast = measure(40);
rows.push([`latentdex training, ${backend}${backend === 'wasm' ? ' + transpose-then-MatMul kernels' : ''}`, fast.toFixed(0), ((fast * fps) / 1e9).toFixed(1)]);
if (backend === 'wasm') {
  uninstallFastKernels();
  const stock = measure(6);
  installFastKernels();
  rows.push(['stock tfjs wasm kernels (anchor)', stock.toFixed(0), ((stock * fps) / 1e9).toFixed(1)]);
  rows.push(['speed-up over stock', `${(fast / stock).toFixed(1)}×`, '']);
}
const torch = torchAnchor();
rows.push(['PyTorch CPU, 2 threads (anchor, bench/torch_train.py)', torch === null ? 'not installed (apt-get install python3-torch)' : torch.toFixed(0), torch === null ? '' : ((torch * fps) / 1e9).toFixed(1)]);
publish(
  'train',
  'Training speed (`npm run bench:train`)',
  `Default dense autoencoder ${dims.join('-')}, batch ${BATCH}, Adam, BCE; ${(fps / 1e6).toFixed(1)} MFLOP per training sample.\n\n${table(['what', 'samples/s', 'GFLOP/s'], rows)}\n\n${environment(backendName())}`,
);
