import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fastKernelsInstalled, installConvGradients, installFastKernels, uninstallFastKernels } from '../src/encoder/kernels.js';
import { backend } from './helpers.js';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Loss of a two-layer net whose backprop asks for both transposed MatMul variants (and the fused one). */
function grads(x: tf.Tensor2D, w1: tf.Variable, b1: tf.Variable, w2: tf.Variable): tf.Tensor[] {
  const f = () => {
    const h = tf.fused.matMul({ a: x, b: w1, bias: b1, activation: 'relu' });
    return tf.sum(tf.square(tf.matMul(h, w2))) as tf.Scalar;
  };
  const { grads: g } = tf.variableGrads(f, [w1, b1, w2]);
  return [g[w1.name]!, g[b1.name]!, g[w2.name]!];
}

describe('fast wasm MatMul kernels', () => {
  let previous = '';
  before(async () => {
    await backend();
    previous = tf.getBackend();
    await tf.setBackend('wasm');
  });
  after(async () => {
    installFastKernels();
    await tf.setBackend(previous);
  });

  it('give the stock kernels’ products for every transpose combination', () => {
    installFastKernels();
    assert.ok(fastKernelsInstalled());
    const a = tf.randomNormal([5, 7], 0, 1, 'float32', 1);
    const b = tf.randomNormal([7, 3], 0, 1, 'float32', 2);
    const at = a.transpose();
    const bt = b.transpose();
    const fast = [tf.matMul(a, b), tf.matMul(at, b, true, false), tf.matMul(a, bt, false, true), tf.matMul(at, bt, true, true)];
    uninstallFastKernels();
    const stock = [tf.matMul(a, b), tf.matMul(at, b, true, false), tf.matMul(a, bt, false, true), tf.matMul(at, bt, true, true)];
    fast.forEach((t, i) => assert.ok(maxDiff(t, stock[i]!) < 1e-5, `variant ${i}`));
    tf.dispose([a, b, at, bt, ...fast, ...stock]);
  });

  it('give the stock kernels’ gradients through a fused dense layer', () => {
    const x = tf.randomNormal([16, 12], 0, 1, 'float32', 3) as tf.Tensor2D;
    const w1 = tf.variable(tf.randomNormal([12, 9], 0, 0.5, 'float32', 4));
    const b1 = tf.variable(tf.randomNormal([9], 0, 0.5, 'float32', 5));
    const w2 = tf.variable(tf.randomNormal([9, 4], 0, 0.5, 'float32', 6));
    uninstallFastKernels();
    const stock = grads(x, w1, b1, w2);
    installFastKernels();
    const fast = grads(x, w1, b1, w2);
    fast.forEach((g, i) => {
      const scale = tf.tidy(() => tf.max(tf.abs(stock[i]!)).dataSync()[0]!);
      assert.ok(maxDiff(g, stock[i]!) <= 1e-5 * Math.max(1, scale), `gradient ${i}`);
    });
    tf.dispose([x, w1, b1, w2, ...stock, ...fast]);
  });

  it('match a finite-difference gradient', () => {
    installFastKernels();
    const x = tf.randomNormal([6, 5], 0, 1, 'float32', 7) as tf.Tensor2D;
    const w = tf.variable(tf.randomNormal([5, 3], 0, 1, 'float32', 8));
    const f = () => tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar;
    const { grads: g } = tf.variableGrads(f, [w]);
    const analytic = g[w.name]!.dataSync();
    const base = w.dataSync().slice();
    const h = 1e-2;
    for (const i of [0, 7, 14]) {
      const plus = base.slice();
      plus[i]! += h;
      const minus = base.slice();
      minus[i]! -= h;
      w.assign(tf.tensor2d(plus, [5, 3]));
      const fp = tf.tidy(() => f().dataSync()[0]!);
      w.assign(tf.tensor2d(minus, [5, 3]));
      const fm = tf.tidy(() => f().dataSync()[0]!);
      const numeric = (fp - fm) / (2 * h);
      assert.ok(Math.abs(numeric - analytic[i]!) < 1e-2 * Math.max(1, Math.abs(numeric)), `element ${i}: ${numeric} vs ${analytic[i]}`);
    }
    tf.dispose([x, w, g[w.name]!]);
  });
});

describe('conv gradients on wasm', () => {
  let previous = '';
  before(async () => {
    await backend();
    previous = tf.getBackend();
  });
  after(async () => {
    await tf.setBackend(previous);
  });

  /** Filter gradients of a conv then a transposed conv (the conv autoencoder's two layer kinds). */
  function grads(pad: 'same' | 'valid', stride: number): Float32Array[] {
    const x = tf.tensor4d(tf.randomNormal([3, 9, 9, 2], 0, 1, 'float32', 1).dataSync(), [3, 9, 9, 2]);
    const f = tf.variable(tf.randomNormal([3, 3, 2, 4], 0, 1, 'float32', 2));
    const ft = tf.variable(tf.randomNormal([3, 3, 4, 4], 0, 1, 'float32', 3));
    const { grads: g } = tf.variableGrads(() => {
      const y = tf.conv2d(x, f as tf.Tensor4D, stride, pad);
      const z = tf.conv2dTranspose(y, ft as tf.Tensor4D, [3, y.shape[1] * stride, y.shape[2] * stride, 4], stride, 'same');
      return tf.sum(tf.square(z)) as tf.Scalar;
    }, [f, ft]);
    const out = [g[f.name]!.dataSync() as Float32Array, g[ft.name]!.dataSync() as Float32Array];
    tf.dispose([x, f, ft, g[f.name]!, g[ft.name]!]);
    return out;
  }

  it('match the cpu backend for strides 1 and 2, same and valid padding', async () => {
    const cases: ['same' | 'valid', number][] = [['same', 1], ['same', 2], ['valid', 1], ['valid', 2]];
    await tf.setBackend('cpu');
    const ref = cases.map(([p, s]) => grads(p, s));
    await tf.setBackend('wasm');
    installConvGradients();
    cases.forEach(([p, s], c) => {
      grads(p, s).forEach((g, k) => {
        const r = ref[c]![k]!;
        const scale = Math.max(...r.map(Math.abs));
        const diff = Math.max(...g.map((v, i) => Math.abs(v - r[i]!)));
        assert.ok(diff <= 1e-5 * scale, `${p} stride ${s} gradient ${k}: ${diff}`);
      });
    });
  });
});
