import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { backendName } from '../src/encoder/backend.js';
import { GradientReplicas, packTensors, shardGradients, type ReplicaSpec, type Shard } from '../src/encoder/data-parallel.js';
import { buildDense, type DenseConfig } from '../src/encoder/dense.js';
import { objective, trainableVars } from '../src/encoder/objective.js';
import { gatherRows, trainAutoencoder, TRAIN_DEFAULTS } from '../src/encoder/train.js';
import { backend, digits } from './helpers.js';

before(backend);

const arch: DenseConfig = { arch: 'dense', inputDim: 784, hidden: [64], codeDim: 8, activation: 'elu' };
const set = digits(1200);
const rowsOf = (from: number, n: number) => gatherRows(set.pixels, 784, Array.from({ length: n }, (_, i) => from + i));
const spec = (): ReplicaSpec => ({ arch, loss: 'bce', regularisers: { denoise: { kind: 'masking', level: 0.3 } }, learningRate: 1e-3, backend: backendName() });

describe('shardGradients', () => {
  for (const loss of ['bce', 'linear-mse'] as const) {
    it(`sums to the whole batch gradient when a batch is split in two (${loss})`, () => {
      const parts = buildDense(arch, 4);
      const vars = trainableVars(parts);
      const plain = { loss, regularisers: {} };
      const whole = shardGradients(parts, vars, plain, { x: rowsOf(0, 64), n: 64, seed: 1 });
      const a = shardGradients(parts, vars, plain, { x: rowsOf(0, 40), n: 40, seed: 1 });
      const b = shardGradients(parts, vars, plain, { x: rowsOf(40, 24), n: 24, seed: 1 });
      let worst = 0;
      let scale = 0;
      for (let j = 0; j < whole.sum.length; j++) {
        worst = Math.max(worst, Math.abs(a.sum[j]! + b.sum[j]! - whole.sum[j]!));
        scale = Math.max(scale, Math.abs(whole.sum[j]!));
      }
      assert.ok(worst <= 1e-4 * scale, `largest difference ${worst} against largest gradient ${scale}`);
      assert.ok(Math.abs(a.loss + b.loss - whole.loss) <= 1e-4 * whole.loss);
      parts.encoder.dispose();
      parts.decoder.dispose();
    });
  }
});

describe('GradientReplicas', () => {
  it('takes the steps tfjs Adam takes on whole batches, and every replica computes with the same weights', async () => {
    const split = buildDense(arch, 5);
    const whole = buildDense(arch, 5);
    const vars = trainableVars(split);
    const wholeVars = trainableVars(whole);
    const optimizer = tf.train.adam(1e-3);
    const pool = await GradientReplicas.start(2, { ...spec(), regularisers: {} }, packTensors(vars));
    try {
      const before = packTensors(vars);
      for (let step = 0; step < 4; step++) {
        const shards: Shard[] = [0, 1, 2].map((t) => ({ x: rowsOf(step * 96 + t * 32, 32), n: 32, seed: step }));
        const loss = await pool.step({ parts: split, vars, loss: 'bce', regularisers: {} }, shards);
        const xb = tf.tensor2d(rowsOf(step * 96, 96), [96, 784]);
        const cost = optimizer.minimize(() => objective(whole, xb, 'bce', {}, step), true, wholeVars)!;
        assert.ok(Math.abs(loss - cost.dataSync()[0]!) <= 1e-4 * loss, `step ${step}: loss ${loss} split, ${cost.dataSync()[0]} whole`);
        tf.dispose([xb, cost]);
      }
      const mine = packTensors(vars);
      const reference = packTensors(wholeVars);
      assert.ok(!Buffer.from(mine.buffer).equals(Buffer.from(before.buffer)), 'the steps changed the weights');
      let worst = 0;
      for (let j = 0; j < mine.length; j++) worst = Math.max(worst, Math.abs(mine[j]! - reference[j]!));
      // Adam moves a weight by about 1e-3 per step; the two sums of float32 gradients differ in rounding only
      assert.ok(worst < 1e-5, `largest difference from tfjs Adam: ${worst}`);
      for (const i of [0, 1]) assert.ok(Buffer.from((await pool.weightsOf(i)).buffer).equals(Buffer.from(mine.buffer)), `replica ${i} computes with other weights`);
    } finally {
      await pool.close();
      optimizer.dispose();
      for (const p of [split, whole]) {
        p.encoder.dispose();
        p.decoder.dispose();
      }
    }
  });

  it('takes a step of fewer shards than threads (a last batch of one row), leaking no tensors', async () => {
    const parts = buildDense(arch, 8);
    const vars = trainableVars(parts);
    const pool = await GradientReplicas.start(2, spec(), packTensors(vars));
    const tensors = tf.memory().numTensors;
    try {
      const before = packTensors(vars);
      const loss = await pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [{ x: rowsOf(0, 1), n: 1, seed: 1 }]);
      assert.ok(Number.isFinite(loss) && loss > 0);
      assert.ok(!Buffer.from(packTensors(vars).buffer).equals(Buffer.from(before.buffer)));
      await pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [{ x: rowsOf(0, 3), n: 3, seed: 1 }, { x: rowsOf(3, 2), n: 2, seed: 2 }]);
      await assert.rejects(pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [{ x: rowsOf(0, 1), n: 1, seed: 1 }, { x: new Float32Array(0), n: 0, seed: 2 }]), { code: 'INTERNAL' });
      assert.equal(tf.memory().numTensors, tensors);
    } finally {
      await pool.close();
      parts.encoder.dispose();
      parts.decoder.dispose();
    }
  });

  it('rejects a step whose shard this thread cannot compute with INTERNAL once the replicas have answered', async () => {
    const parts = buildDense(arch, 9);
    const vars = trainableVars(parts);
    const pool = await GradientReplicas.start(1, spec(), packTensors(vars));
    try {
      const bad: Shard = { x: new Float32Array(10 * 100), n: 10, seed: 1 };
      await assert.rejects(pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [bad, { x: rowsOf(0, 10), n: 10, seed: 1 }]), { code: 'INTERNAL' });
      // the pool still answers
      assert.ok(Number.isFinite(await pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [{ x: rowsOf(0, 8), n: 8, seed: 1 }, { x: rowsOf(8, 8), n: 8, seed: 2 }])));
    } finally {
      await pool.close();
      parts.encoder.dispose();
      parts.decoder.dispose();
    }
  });

  it('rejects a step whose shard a replica cannot compute with INTERNAL, and does not hang', async () => {
    const parts = buildDense(arch, 6);
    const vars = trainableVars(parts);
    const pool = await GradientReplicas.start(1, spec(), packTensors(vars));
    try {
      const bad: Shard = { x: new Float32Array(10 * 100), n: 10, seed: 1 };
      await assert.rejects(pool.step({ parts, vars, loss: 'bce', regularisers: {} }, [{ x: rowsOf(0, 10), n: 10, seed: 1 }, bad]), { code: 'INTERNAL' });
    } finally {
      await pool.close();
      parts.encoder.dispose();
      parts.decoder.dispose();
    }
  });
});

describe('trainAutoencoder on two threads', () => {
  it('follows the one-thread loss trajectory at equal epochs and leaks no tensors', async () => {
    const run = async (threads: number) => {
      const parts = buildDense(arch, 7);
      const r = await trainAutoencoder(parts, set.pixels, 1200, 784, { ...TRAIN_DEFAULTS, epochs: 4, batchSize: 64, seed: 2, loss: 'bce', regularisers: {}, quiet: true, arch, threads });
      parts.encoder.dispose();
      parts.decoder.dispose();
      return r;
    };
    const tensors = tf.memory().numTensors;
    const one = await run(1);
    const two = await run(2);
    // three threads and a last batch of one row (1,139 items: 1,025 train, 114 held out) train too
    const parts = buildDense(arch, 7);
    const odd = await trainAutoencoder(parts, set.pixels.subarray(0, 1139 * 784), 1139, 784, { ...TRAIN_DEFAULTS, epochs: 1, batchSize: 64, seed: 2, loss: 'bce', regularisers: {}, quiet: true, arch, threads: 3, heldOutFraction: 0.1 });
    assert.equal(odd.threads, 3);
    assert.equal(odd.trainItems % 64, 1);
    parts.encoder.dispose();
    parts.decoder.dispose();
    assert.equal(one.threads, 1);
    assert.equal(two.threads, 2);
    assert.equal(two.history.length, 4);
    for (let e = 0; e < 4; e++) {
      const [a, b] = [one.history[e]!.heldOutLoss, two.history[e]!.heldOutLoss];
      assert.ok(Math.abs(a - b) <= 0.03 * a, `epoch ${e + 1}: held-out loss ${a} on one thread, ${b} on two`);
    }
    assert.ok(two.history[3]!.heldOutLoss < two.history[0]!.heldOutLoss, 'two threads learn');
    assert.equal(tf.memory().numTensors, tensors);
  });
});
