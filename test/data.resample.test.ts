import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flattenRgb, resampleArea, type Rgba } from '../data/resample.js';

/** An RGBA image from [r, g, b, a] pixels, row-major. */
function image(width: number, height: number, px: number[][]): Rgba {
  return { width, height, data: Uint8Array.from(px.flat()) };
}

const RED = [255, 0, 0, 255];
const BLUE = [0, 0, 255, 255];
const CLEAR = [0, 255, 0, 0];
const WHITE = '#ffffff';

describe('resampleArea', () => {
  it('averages the source pixels each output covers (fill)', () => {
    // 4 x 2: two red columns, then a red and a blue one
    const src = image(4, 2, [RED, RED, RED, BLUE, RED, RED, RED, BLUE]);
    const out = resampleArea(src, { width: 2, height: 1, channels: 3, fit: 'fill', background: WHITE });
    assert.deepEqual([...out], [255, 0, 0, 128, 0, 128]);
  });

  it('letterboxes on the background (contain) and crops the centre (cover)', () => {
    const src = image(4, 2, [RED, RED, BLUE, BLUE, RED, RED, BLUE, BLUE]);
    const contain = resampleArea(src, { width: 2, height: 2, channels: 3, fit: 'contain', background: WHITE });
    // the 2:1 image fills the top row; the row below is background
    assert.deepEqual([...contain], [255, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255]);
    const cover = resampleArea(src, { width: 2, height: 2, channels: 3, fit: 'cover', background: WHITE });
    // the central 2 x 2 window: a red column and a blue one
    assert.deepEqual([...cover], [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255]);
  });

  it('composites alpha on the background before averaging, and gives grey as luma', () => {
    const src = image(2, 1, [CLEAR, [0, 0, 0, 255]]);
    assert.deepEqual([...resampleArea(src, { width: 2, height: 1, channels: 3, fit: 'fill', background: WHITE })], [255, 255, 255, 0, 0, 0]);
    // white and black averaged: 127.5, rounded either way
    const [grey] = resampleArea(src, { width: 1, height: 1, channels: 1, fit: 'fill', background: WHITE });
    assert.ok(grey === 127 || grey === 128, String(grey));
  });

  it('enlarges a single pixel to a flat image, and interpolates between two', () => {
    assert.deepEqual([...resampleArea(image(1, 1, [BLUE]), { width: 2, height: 2, channels: 3, fit: 'fill', background: WHITE })], [0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255]);
    const two = resampleArea(image(2, 1, [[0, 0, 0, 255], [200, 200, 200, 255]]), { width: 4, height: 1, channels: 1, fit: 'fill', background: WHITE });
    assert.deepEqual([...two], [0, 50, 150, 200]);
  });

  it('reads RGB without alpha exactly as the same image with opaque alpha', () => {
    const rgba = image(4, 2, [RED, BLUE, RED, BLUE, [10, 20, 30, 255], RED, RED, BLUE]);
    const rgb: Rgba = { width: 4, height: 2, channels: 3, data: Uint8Array.from(Array.from({ length: 8 }, (_, p) => [...rgba.data.subarray(p * 4, p * 4 + 3)]).flat()) };
    for (const fit of ['fill', 'contain', 'cover'] as const) {
      const t = { width: 3, height: 3, channels: 3, fit, background: '#336699' };
      assert.deepEqual([...resampleArea(rgb, t)], [...resampleArea(rgba, t)], fit);
    }
  });
});

describe('flattenRgb', () => {
  it('composites alpha on the background, rounding, and passes RGB through', () => {
    const half = [200, 0, 100, 128];
    const out = flattenRgb(image(3, 1, [CLEAR, RED, half]), '#ffffff');
    // 200·128/255 + 255·127/255 = 227.4…; 0 + 127 = 127; 100·128/255 + 127 = 177.2…
    assert.deepEqual([...out], [255, 255, 255, 255, 0, 0, 227, 127, 177]);
    const rgb: Rgba = { width: 1, height: 1, channels: 3, data: Uint8Array.of(1, 2, 3) };
    assert.deepEqual([...flattenRgb(rgb, '#000000')], [1, 2, 3]);
  });
});
