/**
 * Training speed as `latentdex train` trains, for `npm run bench:train` and `npm run bench:scale`: samples/s of one
 * configuration on mnist:train digits, and the PyTorch anchor (bench/torch_train.py, Debian's python3-torch).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../data/mnist.js';
import type { ArchConfig } from '../src/encoder/manifest.js';
import { buildParts } from '../src/encoder/model.js';
import { TRAIN_DEFAULTS, trainAutoencoder } from '../src/encoder/train.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Samples/s of the second epoch (the first warms up) and its held-out loss, training as `latentdex train` does. */
export async function measureTraining(arch: ArchConfig, n: number, batchSize: number, threads: number): Promise<{ rate: number; held: number }> {
  const parts = buildParts(arch, 1);
  const set = loadMnist('train');
  const r = await trainAutoencoder(parts, set.pixels.subarray(0, n * 784), n, 784, { ...TRAIN_DEFAULTS, epochs: 2, patience: 10, batchSize, loss: 'bce', regularisers: {}, quiet: true, arch, threads });
  parts.encoder.dispose();
  parts.decoder.dispose();
  return { rate: r.history[1]!.samplesPerSec, held: r.history[1]!.heldOutLoss };
}

export function torchAnchor(): number | null {
  const r = spawnSync('/usr/bin/python3', [path.join(HERE, '..', '..', 'bench', 'torch_train.py'), '30'], { encoding: 'utf8' });
  const v = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(v) ? v : null;
}
