import { fail } from '../src/errors.js';
import { loadDir } from './dir.js';
import { loadIdx } from './idx.js';
import { selectImages, type ImageSet } from './images.js';
import { loadMnist } from './mnist.js';
import type { DecodeTarget } from './decode.js';

export interface LoadOptions {
  /** keep at most this many items (evenly spread over the set, so every class stays represented) */
  limit?: number;
  /** size images are resized to (dir: sources); a model's input when encoding */
  target?: DecodeTarget;
}

export const DEFAULT_TARGET: DecodeTarget = { width: 28, height: 28, channels: 1 };

export const IMAGE_SOURCE_HELP = 'mnist | mnist:train | mnist:test | idx:IMAGES[,LABELS] | dir:PATH';

/** Evenly spaced subset of at most `limit` items. */
export function limitIndices(n: number, limit: number | undefined): number[] | undefined {
  if (limit === undefined || limit >= n) return undefined;
  if (!Number.isInteger(limit) || limit < 1) throw fail('INVALID_ARGUMENT', `--limit must be a positive integer, got ${limit}`);
  return Array.from({ length: limit }, (_, i) => Math.floor((i * n) / limit));
}

/** Reads an image source spec: `mnist[:train|:test]`, `idx:IMAGES[,LABELS]`, `dir:PATH`. */
export async function loadImageSource(spec: string, opts: LoadOptions = {}): Promise<ImageSet> {
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  let set: ImageSet;
  switch (scheme) {
    case 'mnist':
      set = loadMnist(rest);
      break;
    case 'idx':
      set = await loadIdx(rest);
      break;
    case 'dir':
      if (!rest) throw fail('BAD_SOURCE', `dir source needs a folder: dir:PATH`);
      set = await loadDir(rest, opts.target ?? DEFAULT_TARGET);
      break;
    default:
      throw fail('BAD_SOURCE', `unknown image source '${spec}'; use ${IMAGE_SOURCE_HELP}`);
  }
  const t = opts.target;
  if (t && (t.width !== set.width || t.height !== set.height || t.channels !== set.channels)) {
    throw fail('INVALID_DIM', `source '${spec}' has ${set.width}x${set.height}x${set.channels} images; the model takes ${t.width}x${t.height}x${t.channels}`);
  }
  const idx = limitIndices(set.keys.length, opts.limit);
  return idx ? selectImages(set, idx) : set;
}
