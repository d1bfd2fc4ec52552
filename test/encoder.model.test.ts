import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildConv } from '../src/encoder/conv.js';
import { buildDense, DENSE_DEFAULTS } from '../src/encoder/dense.js';
import { TrainedModel } from '../src/encoder/model.js';
import { backend, digits, smallModel, tmpDir } from './helpers.js';

before(backend);

describe('buildDense', () => {
  it('builds 784-1000-500-250-32 and its mirror by default', () => {
    const { encoder, decoder } = buildDense({ ...DENSE_DEFAULTS, inputDim: 784 });
    assert.deepEqual(encoder.layers.map((l) => (l.getWeights()[0] as tf.Tensor).shape), [[784, 1000], [1000, 500], [500, 250], [250, 32]]);
    assert.deepEqual(decoder.layers.map((l) => (l.getWeights()[0] as tf.Tensor).shape), [[32, 250], [250, 500], [500, 1000], [1000, 784]]);
    encoder.dispose();
    decoder.dispose();
  });
});

describe('buildConv', () => {
  it('goes 28→14→7 and back for 1 channel', () => {
    const { encoder, decoder } = buildConv({ arch: 'conv', width: 28, height: 28, channels: 1, filters: [32, 64], codeDim: 16 });
    assert.deepEqual(encoder.outputs[0]!.shape, [null, 16]);
    assert.deepEqual(decoder.outputs[0]!.shape, [null, 784]);
    const conv = encoder.layers.filter((l) => l.getClassName() === 'Conv2D');
    assert.deepEqual(conv.map((l) => l.outputShape), [[null, 14, 14, 32], [null, 7, 7, 64]]);
    encoder.dispose();
    decoder.dispose();
  });

  it('handles a square size that is not a multiple of 4, with 3 channels', () => {
    const { encoder, decoder } = buildConv({ arch: 'conv', width: 30, height: 30, channels: 3, filters: [8, 16], codeDim: 8 });
    const x = tf.zeros([2, 30 * 30 * 3]);
    const y = tf.tidy(() => decoder.predict(encoder.predict(x) as tf.Tensor) as tf.Tensor);
    assert.deepEqual(y.shape, [2, 2700]);
    tf.dispose([x, y]);
    encoder.dispose();
    decoder.dispose();
  });
});

describe('TrainedModel', () => {
  it('gives the same codes after a save/load round trip', async () => {
    const set = digits(200);
    const model = await smallModel(set, { epochs: 1 });
    const dir = path.join(tmpDir(), 'model');
    await model.save(dir);
    const again = await TrainedModel.load(dir);
    const a = model.encode(set.pixels, 200);
    const b = again.encode(set.pixels, 200);
    assert.equal(a.length, 200 * 8);
    assert.deepEqual(Array.from(b), Array.from(a));
    assert.deepEqual(again.manifest, model.manifest);
    model.dispose();
    again.dispose();
  });

  it('encodes and reconstructs without leaking tensors', async () => {
    const set = digits(100);
    const model = await smallModel(set, { epochs: 1 });
    const before = tf.memory().numTensors;
    model.encode(set.pixels, 100, 32);
    model.reconstruct(set.pixels, 100, { batch: 32 });
    model.decode(new Float32Array(8 * 3), 3);
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });

  it('rejects input of the wrong size with INVALID_DIM', async () => {
    const model = await smallModel(digits(50), { epochs: 1 });
    assert.throws(() => model.encode(new Float32Array(100), 1), { code: 'INVALID_DIM' });
    model.dispose();
  });

  it('refuses a model whose manifest does not match its network', async () => {
    const model = await smallModel(digits(50), { epochs: 1 });
    const dir = path.join(tmpDir(), 'model');
    await model.save(dir);
    const mf = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { codeDim: number };
    mf.codeDim = 64;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(mf));
    await assert.rejects(TrainedModel.load(dir), { code: 'MANIFEST_MISMATCH' });
    await assert.rejects(TrainedModel.load(path.join(dir, 'nope')), { code: 'MODEL_NOT_FOUND' });
    model.dispose();
  });
});
