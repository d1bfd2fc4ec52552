/**
 * Writes a million-image IDX data set made from Fashion-MNIST's 60,000 training images, for `npm run bench:scale`:
 * the originals, then shifted (up to 3 pixels), mirrored and cropped-and-rescaled variants, each variant drawn from
 * a seeded generator. Uncompressed, so that a build reads it in batches without holding it: 784 MB + 1 MB labels.
 * Usage: `node dist/bench/make-million.js [OUT_DIR] [COUNT]` (default /tmp/latentdex-million, 1,000,000). Never
 * committed: the script is the data set.
 */
import fs from 'node:fs';
import path from 'node:path';
import { rng } from '../src/encoder/rng.js';
import { progress } from '../src/progress.js';
import { fashion } from './fashion.js';

const SIDE = 28;
const PX = SIDE * SIDE;

/** The header of an unsigned-byte IDX file of these dimensions. */
function idxHeader(dims: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt8(0x08, 2);
  b.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

/** One variant of `src` into `out`: a shift by (dx, dy), a mirror, or a crop of `crop` pixels rescaled to 28×28. */
function variant(src: Uint8Array, out: Uint8Array, r: () => number): void {
  const kind = Math.floor(r() * 3);
  const dx = Math.floor(r() * 7) - 3;
  const dy = Math.floor(r() * 7) - 3;
  const crop = 20 + Math.floor(r() * 8);
  const ox = Math.floor(r() * (SIDE - crop + 1));
  const oy = Math.floor(r() * (SIDE - crop + 1));
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let sx: number;
      let sy: number;
      if (kind === 0) [sx, sy] = [x - dx, y - dy];
      else if (kind === 1) [sx, sy] = [SIDE - 1 - x + dx, y];
      else [sx, sy] = [ox + Math.floor((x * crop) / SIDE), oy + Math.floor((y * crop) / SIDE)];
      out[y * SIDE + x] = sx >= 0 && sx < SIDE && sy >= 0 && sy < SIDE ? src[sy * SIDE + sx]! : 0;
    }
  }
}

const outDir = process.argv[2] ?? '/tmp/latentdex-million';
const count = Number(process.argv[3] ?? 1_000_000);
if (!Number.isInteger(count) || count < 1) throw new Error(`COUNT must be a positive integer, got ${process.argv[3]}`);
const train = await fashion('train');
const n = train.keys.length;
fs.mkdirSync(outDir, { recursive: true });
const imgFile = path.join(outDir, 'million-images-idx3-ubyte');
const labFile = path.join(outDir, 'million-labels-idx1-ubyte');
const img = fs.openSync(`${imgFile}.tmp`, 'w');
fs.writeSync(img, idxHeader([count, SIDE, SIDE]));
const labels = Buffer.alloc(count);
const r = rng(2014);
const CHUNK = 4096;
const buf = new Uint8Array(CHUNK * PX);
const bar = progress({ title: 'write', total: count, unit: 'images' });
for (let s = 0; s < count; s += CHUNK) {
  const m = Math.min(CHUNK, count - s);
  for (let j = 0; j < m; j++) {
    const i = s + j;
    const src = train.pixels.subarray((i % n) * PX, ((i % n) + 1) * PX);
    const out = buf.subarray(j * PX, (j + 1) * PX);
    if (i < n) out.set(src);
    else variant(src, out, r);
    labels[i] = Number(train.labels[i % n]);
  }
  fs.writeSync(img, buf.subarray(0, m * PX));
  bar.update(s + m);
}
bar.stop();
fs.closeSync(img);
fs.renameSync(`${imgFile}.tmp`, imgFile);
fs.writeFileSync(`${labFile}.tmp`, Buffer.concat([idxHeader([count]), labels]));
fs.renameSync(`${labFile}.tmp`, labFile);
process.stdout.write(`wrote ${count} images to ${imgFile} and their labels to ${labFile}\nbuild: latentdex build --collection million --source idx:${imgFile},${labFile}\n`);
