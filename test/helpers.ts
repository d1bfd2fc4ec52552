import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { initBackend } from '../src/encoder/backend.js';
import { loadMnist } from '../data/mnist.js';
import { selectImages, type ImageSet } from '../data/images.js';
import { fitImageModel } from '../src/encoder/fit.js';
import type { TrainedModel } from '../src/encoder/model.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';

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

/** A collection 'd' of the first n digits of `set` in a new data directory, built with a briefly trained model. */
export async function digitCollection(set: ImageSet, n: number): Promise<string> {
  const dataDir = tmpDir();
  const model = await smallModel(set, { epochs: 1 });
  (await buildCollection(model, imageItems(selectImages(set, Array.from({ length: n }, (_, i) => i))), { dataDir, name: 'd', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
  model.dispose();
  return dataDir;
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

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A tiny PNG whose header claims w × h pixels: a decompression bomb, to be refused before decoding. */
export function pngBomb(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A folder as users have them: colour PNGs and JPEGs of mixed sizes in two label folders, a 16,000 px wide PNG,
 * an EXIF-rotated JPEG (stored 300×200, shown 200×300), WebP/GIF/TIFF copies, a grey PNG, and six files that
 * cannot be used (corrupt JPEG, truncated PNG, empty file, SVG, text, a name with a line break). Returns the folder and the unusable names.
 */
export async function messyFolder(dir: string): Promise<{ usable: number; bad: string[] }> {
  const sharp = (await import('sharp')).default;
  const solid = (w: number, h: number, c: { r: number; g: number; b: number }) => sharp({ create: { width: w, height: h, channels: 3, background: c } });
  for (const sub of ['red', 'blue', 'misc']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  for (let i = 0; i < 6; i++) {
    await solid(40 + i * 9, 30 + i * 5, { r: 220, g: 20 + i * 10, b: 20 }).png().toFile(path.join(dir, 'red', `r${i}.png`));
    await solid(50 + i * 3, 90, { r: 20, g: 30 + i * 10, b: 210 }).jpeg().toFile(path.join(dir, 'blue', `b${i}.jpg`));
  }
  await solid(16000, 120, { r: 230, g: 10, b: 10 }).png().toFile(path.join(dir, 'red', 'huge-wide.png'));
  await solid(300, 200, { r: 20, g: 20, b: 220 }).jpeg().withMetadata({ orientation: 6 }).toFile(path.join(dir, 'blue', 'rotated.jpg'));
  await solid(64, 64, { r: 30, g: 30, b: 200 }).webp().toFile(path.join(dir, 'blue', 'b.webp'));
  await solid(64, 64, { r: 30, g: 30, b: 200 }).gif().toFile(path.join(dir, 'blue', 'b.gif'));
  await solid(64, 64, { r: 30, g: 30, b: 200 }).tiff().toFile(path.join(dir, 'blue', 'b.tiff'));
  await solid(64, 64, { r: 128, g: 128, b: 128 }).greyscale().png().toFile(path.join(dir, 'misc', 'grey.png'));
  fs.writeFileSync(path.join(dir, 'misc', 'empty.png'), '');
  fs.writeFileSync(path.join(dir, 'misc', 'corrupt.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(100, 7)]));
  fs.writeFileSync(path.join(dir, 'misc', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  fs.writeFileSync(path.join(dir, 'misc', 'truncated.png'), (await solid(100, 100, { r: 1, g: 200, b: 1 }).png().toBuffer()).subarray(0, 60));
  fs.writeFileSync(path.join(dir, 'misc', 'notes.png'), 'these are my notes, saved with the wrong extension');
  // a good image whose name cannot be a key (a line break): listed first, with the files the walk could not use
  await solid(20, 20, { r: 9, g: 9, b: 9 }).png().toFile(path.join(dir, 'misc', 'line\nbreak.png'));
  return { usable: 18, bad: ['misc/line\nbreak.png', 'misc/corrupt.jpg', 'misc/empty.png', 'misc/logo.svg', 'misc/notes.png', 'misc/truncated.png'] };
}
