import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { initBackend } from '../src/encoder/backend.js';
import { loadMnist } from '../data/mnist.js';
import { selectImages, type ImageSet } from '../data/images.js';
import { fitImageModel } from '../src/encoder/fit.js';
import type { TrainedModel } from '../src/encoder/model.js';

export async function backend(): Promise<string> {
  return initBackend({ prefer: process.env.LATENTDEX_BACKEND });
}

export function tmpDir(prefix = 'latentdex-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** n real MNIST digits spread over all classes (from the 8,000 training items). */
export function digits(n: number, split: 'train' | 'test' = 'train'): ImageSet {
  const s = loadMnist(split);
  return selectImages(s, Array.from({ length: n }, (_, i) => Math.floor((i * s.keys.length) / n)));
}

/** A small dense model trained briefly on real digits: fast enough for unit tests. */
export async function smallModel(set: ImageSet, o: { codeDim?: number; epochs?: number } = {}): Promise<TrainedModel> {
  return fitImageModel(set, { hidden: [64], codeDim: o.codeDim ?? 8, epochs: o.epochs ?? 2, batchSize: 64, quiet: true, seed: 3 });
}

/** A PNG of one greyscale image (bytes, or floats in [0,1]). */
export function pngOf(pixels: Uint8Array | ArrayLike<number>, w: number, h: number): Buffer {
  const p = new PNG({ width: w, height: h });
  const bytes = pixels instanceof Uint8Array;
  for (let i = 0; i < w * h; i++) {
    const v = bytes ? pixels[i]! : Math.round(pixels[i]! * 255);
    p.data[i * 4] = p.data[i * 4 + 1] = p.data[i * 4 + 2] = v;
    p.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(p);
}

/** Writes set items as PNGs into dir/<label>/<key>.png. */
export function writePngFolder(dir: string, set: ImageSet, n: number): void {
  const d = set.width * set.height;
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `class-${set.labels[i]}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `${set.keys[i]}.png`), pngOf(set.pixels.subarray(i * d, (i + 1) * d), set.width, set.height));
  }
}
