import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import sharp from 'sharp';
import { imagePng } from '../src/encoder/png.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('imagePng', () => {
  it('draws the pixels it is given (grey and colour), as sharp decodes them', async () => {
    const grey = Uint8Array.from({ length: 6 * 4 }, (_, i) => i * 10);
    const g = await sharp(imagePng(grey, 6, 4, 1)).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([g.info.width, g.info.height], [6, 4]);
    assert.deepEqual(Array.from({ length: 24 }, (_, i) => g.data[i * g.info.channels]), Array.from(grey));
    const colour = Uint8Array.from({ length: 3 * 2 * 3 }, (_, i) => 255 - i * 7);
    const c = await sharp(imagePng(colour, 3, 2, 3)).removeAlpha().raw().toBuffer();
    assert.deepEqual(Array.from(c), Array.from(colour));
  });

  it('keeps no memory per image: 20,000 thumbnails leave the process as large as it was', () => {
    const px = new Uint8Array(28 * 28);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 20_000; i++) imagePng(px, 28, 28, 1);
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    // a retained PNG instance per call (pngjs's `new PNG()`) grew this by 700 MB
    assert.ok(grown < 50 * 1048576, `${(grown / 1048576).toFixed(0)} MB retained`);
  });
});
