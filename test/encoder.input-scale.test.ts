import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ImageSet } from '../data/images.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { destandardise, imageStats, standardised } from '../src/encoder/input-scale.js';
import { TrainedModel } from '../src/encoder/model.js';
import { backend, digits, tmpDir } from './helpers.js';

before(backend);

/** Real digits painted in a colour of their own on a tinted ground: a small colour set (28×28×3). */
function colourDigits(n: number): ImageSet {
  const g = digits(n);
  const pixels = new Uint8Array(n * 784 * 3);
  for (let i = 0; i < n; i++) {
    const ink = [(i * 97) % 256, (i * 57 + 80) % 256, (i * 31 + 160) % 256];
    const ground = [230 - (i % 5) * 20, 220, 200 + (i % 3) * 20];
    for (let p = 0; p < 784; p++) {
      const a = g.pixels[i * 784 + p]! / 255;
      for (let c = 0; c < 3; c++) pixels[(i * 784 + p) * 3 + c] = Math.round(a * ink[c]! + (1 - a) * ground[c]!);
    }
  }
  return { ...g, source: 'colour-digits', channels: 3, pixels };
}

/** The same image with its contrast halved and made brighter, as bytes. */
function washedOut(x: Uint8Array): Uint8Array {
  return Uint8Array.from(x, (v) => Math.round(v * 0.5 + 100));
}

const fit = (set: ImageSet, o: Parameters<typeof fitImageModel>[1] = {}) => fitImageModel(set, { hidden: [64], codeDim: 8, epochs: 2, batchSize: 32, quiet: true, seed: 5, ...o });

describe('standardised', () => {
  it('gives every image mean 0 and standard deviation s / (s + 0.01), and destandardise gives the pixels back', () => {
    const set = colourDigits(4);
    const d = 784 * 3;
    const { values, stats } = standardised(set.pixels, 4, d);
    const sdOf = (row: Float32Array) => {
      const m = row.reduce((s, v) => s + v, 0) / d;
      return { m, sd: Math.sqrt(row.reduce((s, v) => s + (v - m) ** 2, 0) / d) };
    };
    for (let i = 0; i < 4; i++) {
      const pixel = sdOf(Float32Array.from(set.pixels.subarray(i * d, (i + 1) * d), (v) => v / 255)).sd;
      const { m, sd } = sdOf(values.subarray(i * d, (i + 1) * d));
      assert.ok(Math.abs(m) < 1e-4, `mean ${m}`);
      assert.ok(Math.abs(sd - pixel / (pixel + 0.01)) < 1e-4, `sd ${sd} of an image of sd ${pixel}`);
    }
    const back = destandardise(values, 4, d, stats);
    for (let j = 0; j < back.length; j++) assert.ok(Math.abs(back[j]! - set.pixels[j]! / 255) < 1e-5);
    // bytes and the same pixels as floats give the same stats; the caller's floats are left as they were
    const floats = Float32Array.from(set.pixels, (v) => v / 255);
    const copy = floats.slice();
    assert.deepEqual(Array.from(imageStats(floats, 4, d).mean), Array.from(stats.mean));
    standardised(floats, 4, d);
    assert.deepEqual(floats, copy);
  });

  it('makes a flat image all zeros, not noise', () => {
    const { values } = standardised(new Uint8Array(12).fill(77), 1, 12);
    assert.deepEqual(Array.from(values), new Array(12).fill(0));
  });
});

describe('fitImageModel input scale', () => {
  it('standardises colour images by default and keeps 0-1 for grey ones', async () => {
    const colour = await fit(colourDigits(120));
    assert.equal(colour.manifest.input.type === 'pixels' && colour.manifest.input.scale, 'standardised');
    assert.equal(colour.manifest.output, 'linear');
    assert.equal(colour.manifest.loss, 'linear-mse');
    const grey = await fit(digits(120));
    assert.equal(grey.manifest.input.type === 'pixels' && grey.manifest.input.scale, '0-1');
    assert.equal(grey.manifest.output, 'sigmoid');
    assert.equal(grey.manifest.loss, 'bce');
    const asked = await fit(colourDigits(120), { inputScale: '0-1' });
    assert.equal(asked.manifest.loss, 'bce');
    [colour, grey, asked].forEach((m) => m.dispose());
  });

  it('refuses a 0-1 loss for a standardised input with INVALID_ARGUMENT', async () => {
    await assert.rejects(fit(colourDigits(40), { loss: 'bce' }), { code: 'INVALID_ARGUMENT' });
  });

  it('finds an image from a washed-out copy of it (brightness and contrast do not move the code)', async () => {
    const set = colourDigits(300);
    const d = 784 * 3;
    const model = await fit(set);
    const codes = model.encode(set.pixels, 300);
    for (const i of [7, 150, 299]) {
      const x = set.pixels.subarray(i * d, (i + 1) * d);
      const q = model.encode(washedOut(x), 1);
      let best = -1;
      let bestD = Infinity;
      for (let j = 0; j < 300; j++) {
        let s = 0;
        for (let k = 0; k < 8; k++) s += (codes[j * 8 + k]! - q[k]!) ** 2;
        if (s < bestD) [best, bestD] = [j, s];
      }
      assert.equal(best, i, `image ${i}`);
    }
    model.dispose();
  });

  it('reconstructs pixels in [0,1], decodes a stored code like its reconstruction, and survives a save/load', async () => {
    const set = colourDigits(100);
    const d = 784 * 3;
    const model = await fit(set);
    const x = set.pixels.subarray(0, 3 * d);
    const before = tf.memory().numTensors;
    const rec = model.reconstruct(x, 3);
    const dec = model.decode(model.encode(x, 3), 3, x);
    const bare = model.decode(model.encode(x, 3), 3);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(rec.every((v) => v >= 0 && v <= 1));
    for (let j = 0; j < rec.length; j++) assert.ok(Math.abs(rec[j]! - dec[j]!) < 1e-5);
    assert.ok(bare.every((v) => v >= 0 && v <= 1));
    // back in pixel units: near the image, not off by its brightness
    const err = rec.reduce((s, v, j) => s + (v - x[j]! / 255) ** 2, 0) / rec.length;
    assert.ok(err < 0.05, `mean squared error ${err}`);
    const dir = path.join(tmpDir(), 'model');
    await model.save(dir);
    const again = await TrainedModel.load(dir);
    assert.deepEqual(Array.from(again.reconstruct(x, 3)), Array.from(rec));
    assert.deepEqual(again.manifest.input, model.manifest.input);
    // a standardised manifest without its typical brightness is refused on load
    const manifestFile = path.join(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { input: Record<string, unknown> };
    delete m.input.typical;
    fs.writeFileSync(manifestFile, JSON.stringify(m));
    await assert.rejects(TrainedModel.load(dir), { code: 'MANIFEST_MISMATCH' });
    [model, again].forEach((v) => v.dispose());
  });
});
