import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { buildDense } from '../src/encoder/dense.js';
import { corrupt, evaluateLoss, objective, reconLoss } from '../src/encoder/objective.js';
import { trainAutoencoder, TRAIN_DEFAULTS } from '../src/encoder/train.js';
import { backend, digits } from './helpers.js';
import { toFloats } from '../data/images.js';

before(backend);

const arch = { arch: 'dense' as const, inputDim: 784, hidden: [64], codeDim: 8, activation: 'relu' as const };

describe('trainAutoencoder', () => {
  it('lowers the held-out loss on real digits and restores the best epoch', async () => {
    const set = digits(600);
    const parts = buildDense(arch, 1);
    const x = tf.tensor2d(toFloats(set.pixels), [600, 784]);
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
    // A learning rate this small leaves the held-out loss where it was (within the 1e-4 improvement threshold), so
    // with patience 1 training must end after epoch 2 with epoch 1 the best, not run all 30 epochs.
    const r = await trainAutoencoder(parts, set.pixels, 100, 784, { ...TRAIN_DEFAULTS, epochs: 30, patience: 1, batchSize: 50, learningRate: 1e-9, loss: 'mse', regularisers: {}, quiet: true });
    assert.equal(r.epochs, 2);
    assert.equal(r.bestEpoch, 1);
    parts.encoder.dispose();
    parts.decoder.dispose();
  });
});

describe('corrupt', () => {
  const set = digits(200);
  const stats = (reg: Parameters<typeof corrupt>[1]) =>
    tf.tidy(() => {
      const x = tf.tensor2d(toFloats(set.pixels), [200, 784]);
      const on = tf.cast(tf.greater(x, 0), 'float32');
      const y = corrupt(x, reg, 7);
      // share of the non-zero inputs that survive, and the ratio of the means
      const kept = tf.sum(tf.mul(on, tf.cast(tf.greater(tf.abs(y), 0), 'float32'))).div(tf.sum(on)).dataSync()[0]!;
      return { kept, mean: tf.mean(y).div(tf.mean(x)).dataSync()[0]! };
    });

  it('masking zeroes about the given fraction, so the mean shrinks with it', () => {
    const m = stats({ denoise: { kind: 'masking', level: 0.7 } });
    assert.ok(Math.abs(m.kept - 0.3) < 0.02, `kept ${m.kept}`);
    assert.ok(Math.abs(m.mean - 0.3) < 0.02, `mean ${m.mean}`);
  });

  it('dropout zeroes as many but rescales the survivors: the expected input is the clean one', () => {
    const d = stats({ denoise: { kind: 'dropout', level: 0.7 } });
    assert.ok(Math.abs(d.kept - 0.3) < 0.02, `kept ${d.kept}`);
    assert.ok(Math.abs(d.mean - 1) < 0.05, `mean ${d.mean}`);
  });

  it('leaves the input alone without corruption or at level 0', () => {
    assert.deepEqual(stats({}), { kept: 1, mean: 1 });
    assert.deepEqual(stats({ denoise: { kind: 'dropout', level: 0 } }), { kept: 1, mean: 1 });
  });
});

describe('objective target', () => {
  it('scores the reconstruction against the target when one is given (input in, proportions out)', () => {
    const set = digits(16);
    const parts = buildDense({ ...arch, inputDim: 784 }, 3);
    tf.tidy(() => {
      const x = tf.tensor2d(toFloats(set.pixels), [16, 784]);
      const target = tf.div(x, tf.sum(x, 1, true)) as tf.Tensor2D;
      const logits = parts.decoder.apply(parts.encoder.apply(x)) as tf.Tensor;
      const want = reconLoss(target, logits, 'softmax-ce').dataSync()[0]!;
      const got = objective(parts, x, 'softmax-ce', {}, 0, false, target).dataSync()[0]!;
      assert.ok(Math.abs(got - want) < 1e-4 * Math.abs(want), `${got} vs ${want}`);
      assert.notEqual(objective(parts, x, 'softmax-ce', {}, 0, false).dataSync()[0]!, got);
    });
    parts.encoder.dispose();
    parts.decoder.dispose();
  });

  it('refuses targets of the wrong size', async () => {
    const set = digits(40);
    const parts = buildDense(arch, 3);
    await assert.rejects(
      trainAutoencoder(parts, set.pixels, 40, 784, { ...TRAIN_DEFAULTS, epochs: 1, loss: 'bce', regularisers: {}, quiet: true, target: { data: new Float32Array(39 * 784), dim: 784 } }),
      { code: 'INVALID_DIM' },
    );
    parts.encoder.dispose();
    parts.decoder.dispose();
  });
});

describe('objective regularisers', () => {
  const set = digits(32);
  const loss = (reg: Parameters<typeof objective>[3], training = true) => {
    const parts = buildDense(arch, 4);
    const x = tf.tensor2d(toFloats(set.pixels), [32, 784]);
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
