import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage, PREVIEW_SIDE, type DecodeTarget } from '../data/decode.js';

const W = 40;
const H = 20;

/** A 40 × 20 RGBA image: the left half opaque blue, the right half fully transparent (its colour hidden green). */
function halfClear(): Buffer {
  const px = Buffer.alloc(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      if (x < W / 2) px.set([0, 0, 255, 255], o);
      else px.set([0, 255, 0, 0], o);
    }
  }
  return px;
}

/** The same picture with grey + alpha bands: the left half opaque black. */
function halfClearGrey(): Buffer {
  const px = Buffer.alloc(W * H * 2);
  for (let p = 0; p < W * H; p++) px.set((p % W) < W / 2 ? [0, 255] : [200, 0], p * 2);
  return px;
}

const clear = () => sharp(halfClear(), { raw: { width: W, height: H, channels: 4 } });
const rgbaFiles: Record<string, () => Promise<Buffer>> = {
  'PNG with alpha': () => clear().png().toBuffer(),
  'palette PNG with a transparent entry': () => clear().png({ palette: true }).toBuffer(),
  'GIF with transparency': () => clear().gif().toBuffer(),
  'lossless WebP with alpha': () => clear().webp({ lossless: true }).toBuffer(),
};

/** Mean colour of the left and right halves of HWC pixels. */
function halves(px: Uint8Array, w: number, h: number, c: number): { left: number[]; right: number[] } {
  const sum = (from: number, to: number) => {
    const s = new Array<number>(c).fill(0);
    for (let y = 0; y < h; y++) for (let x = from; x < to; x++) for (let k = 0; k < c; k++) s[k]! += px[(y * w + x) * c + k]!;
    return s.map((v) => Math.round(v / ((to - from) * h)));
  };
  return { left: sum(0, Math.floor(w / 2) - 1), right: sum(Math.ceil(w / 2) + 1, w) };
}

/** Each value within `tol` of the expected one (resampling filters ring a little near the edge between the halves). */
function near(actual: number[], expected: number[], tol = 4): void {
  assert.ok(actual.length === expected.length && actual.every((v, i) => Math.abs(v - expected[i]!) <= tol), `${actual} is not ${expected}`);
}

describe('decodeImage', () => {
  for (const resample of ['area', 'lanczos3'] as const) {
    for (const [what, make] of Object.entries(rgbaFiles)) {
      it(`puts the transparent half of a ${what} on the model's background and the preview's white (${resample})`, async () => {
        const target: DecodeTarget = { width: 16, height: 8, channels: 3, fit: 'fill', background: '#ff0000', resample };
        const img = await decodeImage(await make(), target, what, { preview: true });
        const { left, right } = halves(img.pixels, 16, 8, 3);
        // the opaque half keeps its colour; the transparent half is the background, never its hidden green
        near(left, [0, 0, 255]);
        near(right, [255, 0, 0]);
        const p = await sharp(img.preview!).raw().toBuffer({ resolveWithObject: true });
        assert.equal(Math.max(p.info.width, p.info.height), PREVIEW_SIDE);
        const pv = halves(p.data, p.info.width, p.info.height, p.info.channels);
        assert.ok(pv.right.slice(0, 3).every((v) => v > 245), `preview's transparent half is white: ${pv.right}`);
        assert.ok(pv.left[2]! > 200 && pv.left[0]! < 40, `preview's opaque half is blue: ${pv.left}`);
      });
    }
  }

  it('reads grey with alpha as colour and grey targets alike', async () => {
    const file = await sharp(halfClearGrey(), { raw: { width: W, height: H, channels: 2 } }).png().toBuffer();
    const colour = await decodeImage(file, { width: 16, height: 8, channels: 3, fit: 'fill', background: '#ffffff', resample: 'area' });
    near(halves(colour.pixels, 16, 8, 3).left, [0, 0, 0]);
    near(halves(colour.pixels, 16, 8, 3).right, [255, 255, 255]);
    const grey = await decodeImage(file, { width: 16, height: 8, channels: 1, fit: 'fill', background: '#ffffff', resample: 'lanczos3' });
    near(halves(grey.pixels, 16, 8, 1).left, [0]);
    near(halves(grey.pixels, 16, 8, 1).right, [255]);
  });

  it('gives an opaque JPEG the same pixels by both resamplers, within their filters', async () => {
    const rgb = Buffer.alloc(64 * 32 * 3);
    for (let p = 0; p < 64 * 32; p++) rgb.set((p % 64) < 32 ? [220, 30, 30] : [30, 30, 220], p * 3);
    const file = await sharp(rgb, { raw: { width: 64, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const area = await decodeImage(file, { width: 16, height: 8, channels: 3, fit: 'fill', background: '#000000', resample: 'area' });
    const lanczos = await decodeImage(file, { width: 16, height: 8, channels: 3, fit: 'fill', background: '#000000', resample: 'lanczos3' });
    for (const img of [area, lanczos]) {
      const { left, right } = halves(img.pixels, 16, 8, 3);
      assert.ok(left[0]! > 190 && left[2]! < 60 && right[2]! > 190 && right[0]! < 60, `${left} ${right}`);
    }
  });
});
