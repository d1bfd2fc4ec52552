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
