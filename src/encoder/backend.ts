import * as tf from '@tensorflow/tfjs';
import { fail, messageOf } from '../errors.js';
import { installFastKernels, installConvGradients } from './kernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendOptions {
  /** force one backend (LATENTDEX_BACKEND); 'node' is accepted for 'tensorflow' */
  prefer?: string;
  /** keep tfjs's stock wasm MatMul kernels (for benchmarks and gradient tests) */
  stockKernels?: boolean;
}

let chosen: Promise<BackendName> | undefined;

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    if (name === 'tensorflow') {
      // optionalDependency: absent where libtensorflow could not be downloaded.
      const mod = '@tensorflow/tfjs-node';
      await import(mod);
    } else if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    }
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function choose(opts: BackendOptions): Promise<BackendName> {
  let want = opts.prefer?.toLowerCase();
  if (want === 'node' || want === 'tfjs-node') want = 'tensorflow';
  if (want !== undefined && !ORDER.includes(want as BackendName)) {
    throw fail('INVALID_ARGUMENT', `unknown backend '${opts.prefer}'; use one of tensorflow (tfjs-node), wasm, cpu`);
  }
  const order = want ? [want as BackendName] : ORDER;
  for (const name of order) {
    if (await tryBackend(name)) {
      await tf.ready();
      if (name === 'wasm') installConvGradients();
      if (name === 'wasm' && !opts.stockKernels) installFastKernels();
      return name;
    }
  }
  throw fail('BACKEND_UNAVAILABLE', `backend '${want}' could not be loaded; unset LATENTDEX_BACKEND to fall back automatically`);
}

/** Picks tfjs-node if it loads, else wasm, else cpu (or the forced one) once per process. */
export function initBackend(opts: BackendOptions = {}): Promise<BackendName> {
  chosen ??= choose(opts).catch((e: unknown) => {
    chosen = undefined;
    throw e instanceof Error && 'code' in e ? e : fail('BACKEND_UNAVAILABLE', messageOf(e), e);
  });
  return chosen;
}

export function backendName(): string {
  return tf.getBackend();
}
