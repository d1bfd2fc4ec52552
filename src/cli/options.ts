import { InvalidArgumentError } from 'commander';
import type { Regularisers } from '../encoder/manifest.js';

export function intArg(min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got '${v}'`);
    return n;
  };
}

export function floatArg(min = 0, max = Number.MAX_VALUE) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got '${v}'`);
    return n;
  };
}

export function listArg(v: string): number[] {
  const parts = v.split(/[-,x]/).map(Number);
  if (parts.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`expected sizes like 1000,500,250, got '${v}'`);
  return parts;
}

export function denoiseArg(v: string): NonNullable<Regularisers['denoise']> {
  const m = /^(masking|gaussian):([0-9.]+)$/.exec(v);
  const level = m ? Number(m[2]) : NaN;
  if (!m || !(level >= 0 && level <= 1)) throw new InvalidArgumentError(`expected masking:FRACTION or gaussian:STD (0..1), got '${v}'`);
  return { kind: m[1] as 'masking' | 'gaussian', level };
}

/** The flags shared by `train` and `build` that shape and train a model. */
export interface ModelFlags {
  arch?: 'dense' | 'conv';
  codeDim?: number;
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  patience?: number;
  seed?: number;
  loss?: 'bce' | 'mse';
  denoise?: NonNullable<Regularisers['denoise']>;
  sparse?: number;
  contractive?: number;
  binary?: number;
}

export function regularisersOf(f: ModelFlags): Regularisers {
  return {
    ...(f.denoise ? { denoise: f.denoise } : {}),
    ...(f.sparse ? { sparse: f.sparse } : {}),
    ...(f.contractive ? { contractive: f.contractive } : {}),
    ...(f.binary ? { binaryBits: f.binary, binaryNoise: 4 } : {}),
  };
}
