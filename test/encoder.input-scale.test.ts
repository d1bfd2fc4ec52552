import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ImageSet } from '../data/images.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { imageStats, restoreLike, standardised, standardiseRows } from '../src/encoder/input-scale.js';
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

/** Gaussian noise of sd `sigma` added to pixels (as floats in [0,1], clipped), from a seeded generator. */
function noisy(x: Uint8Array, sigma: number, seed = 1): Float32Array {
  let h = seed;
  const uniform = () => ((h = (Math.imul(h, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from(x, (v) => Math.min(1, Math.max(0, v / 255 + sigma * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()))));
}

const mse = (a: ArrayLike<number>, b: ArrayLike<number>, scale = 1) => {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j]! - b[j]! * scale) ** 2;
  return s / a.length;
};

describe('standardised input', () => {
  it('gives every image mean 0 and standard deviation s / (s + 0.01), on the host as in a tensor', () => {
    const set = colourDigits(4);
    const d = 784 * 3;
    const values = standardised(set.pixels, 4, d);
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
    const t = tf.tensor2d(Float32Array.from(set.pixels, (v) => v / 255), [4, d]);
    const rows = standardiseRows(t);
    const inTensor = rows.dataSync();
    tf.dispose([t, rows]);
    for (let j = 0; j < values.length; j++) assert.ok(Math.abs(inTensor[j]! - values[j]!) < 1e-3);
    // the caller's floats are left as they were
    const floats = Float32Array.from(set.pixels, (v) => v / 255);
    const copy = floats.slice();
    standardised(floats, 4, d);
    assert.deepEqual(floats, copy);
  });

  it('makes every flat grey image all zeros, but keeps a flat colour’s hue', () => {
    for (const v of [0, 77, 255]) assert.deepEqual(Array.from(standardised(new Uint8Array(12).fill(v), 1, 12)), new Array(12).fill(0));
    const red = standardised(Uint8Array.from({ length: 12 }, (_, j) => (j % 3 === 0 ? 200 : 0)), 1, 12);
    const blue = standardised(Uint8Array.from({ length: 12 }, (_, j) => (j % 3 === 2 ? 200 : 0)), 1, 12);
    assert.ok(mse(red, blue) > 1);
  });

  it('gives pixels back from a faithful output, a poor output as it is, and never NaN', () => {
    const set = colourDigits(3);
    const d = 784 * 3;
    const clean = Float32Array.from(set.pixels, (v) => v / 255);
    assert.ok(mse(restoreLike(standardised(set.pixels, 3, d), 3, d, set.pixels), clean) < 1e-10);
    // a poor output keeps its own contrast: it is shown as the model made it
    const half = standardised(set.pixels, 3, d).map((v, j) => (j % 2 ? v : 0));
    const shown = restoreLike(half, 3, d, set.pixels);
    const stats = imageStats(set.pixels, 3, d);
    for (let j = 0; j < d; j += 2) assert.ok(Math.abs(shown[j]! - stats.mean[0]!) < 1e-6);
    for (let j = 1; j < d; j += 2) assert.ok(Math.abs(shown[j]! - clean[j]!) < 1e-5);
    // a broken output (NaN) becomes pixels, not NaN
    assert.ok(restoreLike(new Float32Array(d).fill(NaN), 1, d, set.pixels).every((v) => v >= 0 && v <= 1));
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

  it('refuses a loss that does not fit the input scale with INVALID_ARGUMENT', async () => {
    await assert.rejects(fit(colourDigits(40), { loss: 'bce' }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(fit(digits(40), { loss: 'linear-mse' }), { code: 'INVALID_ARGUMENT' });
  });

  it('gives a washed-out copy of an image its code: queries are standardised as the training images were', async () => {
    const set = colourDigits(300);
    const d = 784 * 3;
    const model = await fit(set);
    const codes = model.encode(set.pixels, 300);
    for (const i of [7, 150, 299]) {
      const q = model.encode(washedOut(set.pixels.subarray(i * d, (i + 1) * d)), 1);
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

  it('trains the same standardised objective on two threads', async () => {
    const set = colourDigits(256);
    const one = await fit(set, { epochs: 3 });
    const two = await fit(set, { epochs: 3, threads: 2 });
    assert.equal(two.manifest.training.threads, 2);
    const [a, b] = [one.manifest.training.heldOutLoss, two.manifest.training.heldOutLoss];
    assert.ok(Math.abs(a - b) / a < 0.2, `held-out loss ${a} on one thread, ${b} on two`);
    [one, two].forEach((m) => m.dispose());
  });

  it('reconstructs a noisy colour image nearer to the clean one than the noise left it (noise added to pixels in training)', async () => {
    const set = colourDigits(400);
    const d = 784 * 3;
    const model = await fit(set, { epochs: 6, regularisers: { denoise: { kind: 'gaussian', level: 0.2 } } });
    const x = set.pixels.subarray(0, 40 * d);
    const dirty = noisy(x, 0.2, 9);
    const out = mse(model.reconstruct(dirty, 40), x, 1 / 255);
    assert.ok(out < 0.75 * mse(dirty, x, 1 / 255), `denoised ${out}, noisy ${mse(dirty, x, 1 / 255)}`);
    model.dispose();
  });

  it('decodes a stored code like its reconstruction, shows a bare code at the typical brightness, and survives a save/load', async () => {
    const set = colourDigits(100);
    const d = 784 * 3;
    const model = await fit(set);
    const x = set.pixels.subarray(0, 3 * d);
    const before = tf.memory().numTensors;
    const rec = model.reconstruct(x, 3);
    const dec = model.decode(model.encode(x, 3), 3, { like: x });
    const bare = model.decode(model.encode(x, 3), 3);
    assert.equal(tf.memory().numTensors, before);
    for (let j = 0; j < rec.length; j++) assert.ok(Math.abs(rec[j]! - dec[j]!) < 1e-5);
    // back in pixel units: near the image, not off by its brightness
    assert.ok(mse(rec, x, 1 / 255) < 0.05, `mean squared error ${mse(rec, x, 1 / 255)}`);
    const typical = model.manifest.input.type === 'pixels' ? model.manifest.input.typical! : { mean: NaN };
    const bareMean = bare.reduce((s, v) => s + v, 0) / bare.length;
    assert.ok(Math.abs(bareMean - typical.mean) < 0.15, `bare decode mean ${bareMean}, typical ${typical.mean}`);
    const dir = path.join(tmpDir(), 'model');
    await model.save(dir);
    const again = await TrainedModel.load(dir);
    assert.deepEqual(Array.from(again.reconstruct(x, 3)), Array.from(rec));
    assert.deepEqual(again.manifest.input, model.manifest.input);
    // a manifest edited into a combination the model was not trained with is refused on load, naming the field
    const manifestFile = path.join(dir, 'manifest.json');
    const saved = fs.readFileSync(manifestFile, 'utf8');
    type Edited = { input: Record<string, unknown>; output: string; loss: string };
    const edits: [(m: Edited) => void, RegExp][] = [
      [(m) => delete m.input.typical, /input\.typical/],
      [(m) => (m.input.scale = '0-1'), /a 0-1 input goes with output 'sigmoid'/],
      [(m) => Object.assign(m, { output: 'sigmoid', loss: 'bce' }), /a standardised input goes with output 'linear'/],
      [(m) => (m.input.scale = '0-255'), /input\.scale.*'0-1' \| 'standardised'/],
    ];
    for (const [edit, why] of edits) {
      const m = JSON.parse(saved) as Edited;
      edit(m);
      fs.writeFileSync(manifestFile, JSON.stringify(m));
      await assert.rejects(TrainedModel.load(dir), (e: Error & { code?: string }) => e.code === 'MANIFEST_MISMATCH' && why.test(e.message));
    }
    [model, again].forEach((v) => v.dispose());
  });
});
