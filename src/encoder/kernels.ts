import * as tf from '@tensorflow/tfjs';

/*
 * The wasm backend's MatMul runs ~10x slower when asked for a transposed operand (backprop asks for aᵀ·g and
 * g·wᵀ on every layer). These wrappers materialise the transpose with the wasm Transpose kernel (a memory
 * pass) and then call the stock, fast, untransposed kernel.
 */

type KernelFunc = tf.KernelConfig['kernelFunc'];
type TensorInfo = tf.TensorInfo;
interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: { disposeData(id: object): void };
  attrs?: Record<string, unknown>;
}

const WRAPPED = ['BatchMatMul', '_FusedMatMul'] as const;
const stock = new Map<string, tf.KernelConfig>();

function swapLast2(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

function wrap(original: KernelFunc, transposeFn: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return original(args as never);
    const temps: TensorInfo[] = [];
    const materialise = (x: TensorInfo): TensorInfo => {
      const t = transposeFn({ inputs: { x }, backend: args.backend, attrs: { perm: swapLast2(x.shape.length) } } as never) as TensorInfo;
      temps.push(t);
      return t;
    };
    const inputs = { ...args.inputs };
    if (attrs.transposeA) inputs.a = materialise(inputs.a!);
    if (attrs.transposeB) inputs.b = materialise(inputs.b!);
    try {
      return original({ ...args, inputs, attrs: { ...attrs, transposeA: false, transposeB: false } } as never);
    } finally {
      for (const t of temps) args.backend.disposeData(t.dataId);
    }
  }) as KernelFunc;
}

/** Replaces the wasm MatMul kernels by transpose-then-multiply versions; idempotent. */
export function installFastKernels(): void {
  if (stock.size > 0) return;
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!transpose) return;
  for (const name of WRAPPED) {
    const cfg = tf.getKernel(name, 'wasm');
    if (!cfg) continue;
    stock.set(name, cfg);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...cfg, kernelFunc: wrap(cfg.kernelFunc, transpose.kernelFunc) });
  }
}

/** Puts tfjs's stock wasm kernels back (benchmarks compare against them). */
export function uninstallFastKernels(): void {
  for (const [name, cfg] of stock) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(cfg);
  }
  stock.clear();
}

export function fastKernelsInstalled(): boolean {
  return stock.size > 0;
}

/**
 * Filter gradient of a 2-D convolution from ops the wasm backend has: for each filter tap (i, j), the strided
 * slice of the padded input that tap sees, multiplied by the output gradient (one MatMul of ic × N × oc).
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: 'same' | 'valid' | number): tf.Tensor4D {
  return tf.tidy(() => {
    const [fh, fw, ic, oc] = filterShape;
    const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
    const [b, h, w] = x.shape;
    const [, oh, ow] = dy.shape;
    let top = 0;
    let left = 0;
    if (pad === 'same') {
      top = Math.floor(Math.max(0, (oh - 1) * sh + fh - h) / 2);
      left = Math.floor(Math.max(0, (ow - 1) * sw + fw - w) / 2);
    } else if (typeof pad === 'number') {
      top = pad;
      left = pad;
    }
    const needH = (oh - 1) * sh + fh;
    const needW = (ow - 1) * sw + fw;
    const xp = tf.pad(x, [[0, 0], [top, Math.max(0, needH - h - top)], [left, Math.max(0, needW - w - left)], [0, 0]]);
    const g = dy.reshape([b * oh * ow, oc]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const patch = tf.stridedSlice(xp, [0, i, j, 0], [b, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, ic], [1, sh, sw, 1]);
        taps.push(tf.matMul(patch.reshape([b * oh * ow, ic]), g, true, false));
      }
    }
    return tf.stack(taps).reshape([fh, fw, ic, oc]) as tf.Tensor4D;
  });
}

type ConvAttrs = { strides: number | [number, number]; pad: 'same' | 'valid' | number; dataFormat?: string; dilations?: number | [number, number] };

function checkAttrs(a: ConvAttrs): void {
  const dil = a.dilations === undefined ? [1, 1] : typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations;
  if ((a.dataFormat ?? 'NHWC') !== 'NHWC' || dil[0] !== 1 || dil[1] !== 1) {
    throw new Error('convolution gradients on wasm support NHWC without dilation; use LATENTDEX_BACKEND=cpu for other convolutions');
  }
}

let convGradsInstalled = false;

/**
 * The wasm backend ships no Conv2DBackpropFilter kernel (and its Conv3DBackpropFilterV2 is wrong for strides
 * above 1), so convolutional models could not train on it. This registers Conv2D and Conv2DBackpropInput
 * (transposed convolution) gradients whose filter part is conv2dFilterGrad; the input part is unchanged.
 */
export function installConvGradients(): void {
  if (convGradsInstalled || tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  convGradsInstalled = true;
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as ConvAttrs;
      checkAttrs(a);
      const pad = a.pad as 'same' | 'valid';
      return {
        x: () => tf.conv2dTranspose(dy as tf.Tensor4D, filter, x.shape, a.strides, pad),
        filter: () => conv2dFilterGrad(x, dy as tf.Tensor4D, filter.shape, a.strides, a.pad),
      };
    },
  });
  tf.registerGradient({
    kernelName: 'Conv2DBackpropInput',
    inputsToSave: ['dy', 'filter'],
    gradFunc: (ddx, saved, attrs) => {
      const [dy, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as ConvAttrs;
      checkAttrs(a);
      const pad = a.pad as 'same' | 'valid';
      return {
        dy: () => tf.conv2d(ddx as tf.Tensor4D, filter, a.strides, pad),
        filter: () => conv2dFilterGrad(ddx as tf.Tensor4D, dy, filter.shape, a.strides, a.pad),
      };
    },
  });
}
