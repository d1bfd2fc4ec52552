import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildDense } from '../src/encoder/dense.js';
import { evaluateLoss, objective, trainAutoencoder, TRAIN_DEFAULTS } from '../src/encoder/train.js';
import { backend, digits } from './helpers.js';

before(backend);

const arch = { arch: 'dense' as const, inputDim: 784, hidden: [64], codeDim: 8, activation: 'relu' as const };

describe('trainAutoencoder', () => {
  it('lowers the held-out loss on real digits and restores the best epoch', async () => {
    const set = digits(600);
    const parts = buildDense(arch, 1);
    const x = tf.tensor2d(set.pixels, [600, 784]);
    const start = evaluateLoss(parts, x, 'bce', {});
    const r = await trainAutoencoder(parts, set.pixels, 600, 784, { ...TRAIN_DEFAULTS, epochs: 4, batchSize: 64, loss: 'bce', regularisers: {}, quiet: true });
    const end = evaluateLoss(parts, x, 'bce', {});
    assert.ok(end < start * 0.8, `loss ${start} -> ${end}`);
    assert.equal(r.history.length, 4);
    assert.equal(r.heldOutLoss, Math.min(...r.history.map((h) => h.heldOutLoss)));
    assert.equal(r.trainItems + r.heldOutItems, 600);
    assert.ok(r.samplesPerSec > 0);
    x.dispose();
    parts.encoder.dispose();
    parts.decoder.dispose();
  });

  it('repeats exactly for the same seed', async () => {
    const set = digits(200);
    const run = async () => {
      const parts = buildDense(arch, 9);
      const r = await trainAutoencoder(parts, set.pixels, 200, 784, { ...TRAIN_DEFAULTS, epochs: 1, batchSize: 50, seed: 5, loss: 'bce', regularisers: {}, quiet: true });
      parts.encoder.dispose();
      parts.decoder.dispose();
      return r.heldOutLoss;
    };
    assert.equal(await run(), await run());
  });

  it('stops early when the held-out loss stops improving', async () => {
    const set = digits(100);
    const parts = buildDense(arch, 2);
    // A learning rate this large makes training diverge or stall, so patience 1 ends it well before 30 epochs.
    const r = await trainAutoencoder(parts, set.pixels, 100, 784, { ...TRAIN_DEFAULTS, epochs: 30, patience: 1, batchSize: 100, learningRate: 0.5, loss: 'mse', regularisers: {}, quiet: true }).catch(() => undefined);
    assert.ok(r === undefined || r.epochs < 30);
    parts.encoder.dispose();
    parts.decoder.dispose();
  });
});

describe('objective regularisers', () => {
  const set = digits(32);
  const loss = (reg: Parameters<typeof objective>[3], training = true) => {
    const parts = buildDense(arch, 4);
    const x = tf.tensor2d(set.pixels, [32, 784]);
    const v = tf.tidy(() => objective(parts, x, 'bce', reg, 11, training).dataSync()[0]!);
    x.dispose();
    parts.encoder.dispose();
    parts.decoder.dispose();
    return v;
  };
  const plain = loss({});

  it('sparse adds the L1 norm of the code, in proportion to its weight', () => {
    const a = loss({ sparse: 0.1 }) - plain;
    const b = loss({ sparse: 0.2 }) - plain;
    assert.ok(a > 0);
    assert.ok(Math.abs(b - 2 * a) < 1e-5 * plain + 1e-3 * b, `${a} ${b}`);
  });

  it('contractive adds a positive Jacobian penalty, in proportion to its weight', () => {
    const a = loss({ contractive: 0.01 }) - plain;
    const b = loss({ contractive: 0.02 }) - plain;
    assert.ok(a > 0);
    assert.ok(Math.abs(b - 2 * a) < 1e-5 * plain + 1e-2 * b, `${a} ${b}`);
  });

  it('denoising corrupts the input and so changes the loss; not at evaluation', () => {
    assert.notEqual(loss({ denoise: { kind: 'masking', level: 0.5 } }), plain);
    assert.notEqual(loss({ denoise: { kind: 'gaussian', level: 0.3 } }), plain);
    assert.equal(loss({ denoise: { kind: 'masking', level: 0.5 } }, false), loss({}, false));
  });

  it('shift moves the input image (not the target) during training only', () => {
    const shift = { shift: { pixels: 2, width: 28, height: 28, channels: 1 } };
    assert.notEqual(loss(shift), plain);
    assert.equal(loss(shift, false), loss({}, false));
  });

  it('binary noise changes the training loss and not the evaluation loss', () => {
    const noisy = loss({ binaryBits: 8, binaryNoise: 4 });
    const quiet = loss({ binaryBits: 8, binaryNoise: 0 });
    assert.notEqual(noisy, quiet);
    assert.equal(loss({ binaryBits: 8, binaryNoise: 4 }, false), loss({ binaryBits: 8, binaryNoise: 0 }, false));
  });
});
