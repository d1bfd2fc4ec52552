import { fail } from '../src/errors.js';
import { loadDir, spread, type ShapeRequest } from './dir.js';
import { loadIdx } from './idx.js';
import { selectImages, type ImageSet } from './images.js';
import { loadMnist } from './mnist.js';
import type { DecodeTarget } from './decode.js';
import { loadBrown, loadBrownPieces } from './brown.js';
import { loadJsonl } from './jsonl.js';
import { loadTextDir } from './textdir.js';
import { selectTexts, type TextSet } from './texts.js';

export interface LoadOptions {
  /** keep at most this many items (evenly spread over the set, so every class stays represented) */
  limit?: number;
  /** the exact image shape (a model's input, when encoding or adding) */
  target?: DecodeTarget;
  /** the shape the user asked for a new model (dir: sources; others keep their native shape) */
  shape?: ShapeRequest;
  /** an unusable file stops the read instead of being skipped */
  strict?: boolean;
  /** keep a colour preview per image (dir: sources; for collections) */
  previews?: boolean;
  /** where a folder's previews (and, streaming, pixels) are spooled; default the system's temporary folder */
  spoolDir?: string;
  /** dir: called with the keys of the files to be read before any is decoded */
  checkKeys?: (keys: string[]) => void;
  quiet?: boolean;
  /** jsonl: sources: the field naming each record's source document (its group) */
  groupBy?: string;
  /** groupBy is the field a collection was built with (an add): records without it are no error */
  groupOptional?: boolean;
}

export const IMAGE_SOURCE_HELP = 'mnist | mnist:train | mnist:test | idx:IMAGES[,LABELS] | dir:PATH';

/** Evenly spaced subset of at most `limit` items (undefined: all of them). */
export function limitIndices(n: number, limit: number | undefined): number[] | undefined {
  if (limit === undefined || limit >= n) return undefined;
  return spread(n, limit);
}

/**
 * Refuses a fixed-size source (mnist, idx) whose images are not the shape asked for: --image-size and --channels
 * shape only dir: sources, and a model takes the size it was trained on.
 */
export function checkImageShape(spec: string, set: Pick<ImageSet, 'width' | 'height' | 'channels'>, opts: Pick<LoadOptions, 'shape' | 'target'>): void {
  const sh = opts.shape;
  if (sh && ((sh.size !== undefined && sh.size !== set.width) || (sh.channels !== undefined && sh.channels !== 'auto' && sh.channels !== set.channels))) {
    throw fail('INVALID_ARGUMENT', `source '${spec}' has ${set.width}x${set.height}x${set.channels} images; --image-size and --channels apply to dir: sources`);
  }
  const t = opts.target;
  if (t && (t.width !== set.width || t.height !== set.height || t.channels !== set.channels)) {
    throw fail('INVALID_DIM', `source '${spec}' has ${set.width}x${set.height}x${set.channels} images; the model takes ${t.width}x${t.height}x${t.channels}`);
  }
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
      // A folder is read at the limit directly: files not wanted are never decoded.
      return loadDir(rest, { target: opts.target, shape: opts.shape, limit: opts.limit, strict: opts.strict, quiet: opts.quiet, previews: opts.previews ?? false, spoolDir: opts.spoolDir, checkKeys: opts.checkKeys });
    default:
      throw fail('BAD_SOURCE', `unknown source '${spec}'; use ${SOURCE_HELP}${/[/\\.]/.test(scheme) ? ` (a folder of images: dir:${spec}; a file of JSON lines: jsonl:${spec})` : ''}`);
  }
  checkImageShape(spec, set, opts);
  const idx = limitIndices(set.keys.length, opts.limit);
  return idx ? selectImages(set, idx) : set;
}

export const TEXT_SOURCE_HELP = 'brown | brown:short | text:DIR | jsonl:FILE';
export const SOURCE_HELP = `images: ${IMAGE_SOURCE_HELP}; texts: ${TEXT_SOURCE_HELP}`;

export function isTextSpec(spec: string): boolean {
  return spec === 'brown' || spec.startsWith('brown:') || spec.startsWith('text:') || spec.startsWith('jsonl:');
}

/** Reads a text source spec: `brown`, `text:DIR`, `jsonl:FILE`. */
export async function loadTextSource(spec: string, opts: Pick<LoadOptions, 'limit' | 'groupBy' | 'groupOptional' | 'strict' | 'quiet'> = {}): Promise<TextSet> {
  if (opts.groupBy !== undefined && !spec.startsWith('jsonl:')) throw fail('INVALID_ARGUMENT', `--group-by reads a field of jsonl: records; '${spec}' has its own groups (brown: the source text)`);
  let set: TextSet;
  if (spec === 'brown') set = loadBrown();
  else if (spec === 'brown:short') set = loadBrownPieces();
  else if (spec.startsWith('text:')) set = await loadTextDir(spec.slice(5), { strict: opts.strict, quiet: opts.quiet });
  else if (spec.startsWith('jsonl:')) set = await loadJsonl(spec.slice(6), { groupBy: opts.groupBy, groupOptional: opts.groupOptional, strict: opts.strict, quiet: opts.quiet });
  else throw fail('BAD_SOURCE', `unknown text source '${spec}'; use ${TEXT_SOURCE_HELP}`);
  const idx = limitIndices(set.keys.length, opts.limit);
  return idx ? selectTexts(set, idx) : set;
}
