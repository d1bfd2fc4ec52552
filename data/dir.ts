import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fail, messageOf, messageWithout } from '../src/errors.js';
import { counted, log, progress } from '../src/progress.js';
import { walkFiles } from './walk.js';
import { pathKey, pathKeyProblem } from './keys.js';
import { decodeImage, isColourImage, type DecodedImage, type DecodeTarget, type Fit, type Resample } from './decode.js';
import { skippedText, type ImageRows, type ImageSet, type SkippedFile } from './images.js';
import { BlobSpool } from './spool.js';

/** Extensions read as images; .svg files are listed too, so that the user learns why they were left out. */
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.jfif', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg', '.svgz', '.bmp']);

/** What the user (or a model) says about the image shape; unset fields are chosen from the folder. */
export interface ShapeRequest {
  size?: number;
  channels?: 1 | 3 | 'auto';
  fit?: Fit;
  background?: string;
}

/** The shape of a new model fed from a folder: 32 px, colour when the folder holds colour, aspect kept, white behind alpha. */
export const DIR_DEFAULTS = { size: 32, fit: 'contain' as Fit, background: '#ffffff', resample: 'area' as Resample };

export interface DirOptions {
  /** the exact target (a model's input); otherwise `shape` with DIR_DEFAULTS */
  target?: DecodeTarget;
  shape?: ShapeRequest;
  limit?: number;
  /** an unusable file is an error instead of being skipped */
  strict?: boolean;
  /** keep a colour preview per image (default true; sources.ts asks for them only when building a collection) */
  previews?: boolean;
  quiet?: boolean;
  /** images decoded at once (default 4 per core: libvips threads make the rest) */
  concurrency?: number;
  /** where previews (and, for openDirImages, pixels) are spooled; default the system's temporary folder */
  spoolDir?: string;
  /** called with the keys of the files to be read before any is decoded (an add refuses stored keys at once) */
  checkKeys?: (keys: string[]) => void;
}

/** Files looked at for `--channels auto`, spread over the folder. */
const COLOUR_SAMPLE = 64;

async function channelsOf(files: string[]): Promise<1 | 3> {
  const step = Math.max(1, Math.floor(files.length / COLOUR_SAMPLE));
  for (let i = 0; i < files.length; i += step) {
    const buf = await fs.readFile(files[i]!).catch(() => undefined);
    if (buf && (await isColourImage(buf))) return 3;
  }
  return 1;
}

/** Evenly spread indices of at most `limit` of n items (all of them without a limit), so every class stays represented. */
export function spread(n: number, limit: number | undefined): number[] {
  if (limit === undefined || limit >= n) return Array.from({ length: n }, (_, i) => i);
  if (!Number.isInteger(limit) || limit < 1) throw fail('INVALID_ARGUMENT', `--limit must be a positive integer, got ${limit}`);
  return Array.from({ length: limit }, (_, i) => Math.floor((i * n) / limit));
}

/** A folder decoded file by file: the target, the files read, which of them were usable and which were skipped. */
interface DecodedDir {
  root: string;
  target: DecodeTarget;
  files: string[];
  /** indices into `files` of the usable images, in file order */
  kept: number[];
  skipped: SkippedFile[];
  previews?: BlobSpool;
}

/**
 * Decodes every image below `root` (at most `limit`, spread over the folder), in parallel, at the model's size; each
 * usable image's pixels go to `sinkOf(n, dim)`'s function as they come, its preview to a spool.
 */
async function decodeDir(root: string, o: DirOptions, sinkOf: (n: number, dim: number) => (i: number, px: Uint8Array) => void): Promise<DecodedDir> {
  if (!root) throw fail('BAD_SOURCE', 'dir source needs a folder: dir:PATH');
  let stat;
  try {
    stat = await fs.stat(root);
  } catch (e) {
    throw fail('BAD_SOURCE', `folder '${root}' does not exist (${messageOf(e)})`, e);
  }
  if (!stat.isDirectory()) throw fail('BAD_SOURCE', `'${root}' is not a folder; dir: takes a folder of images`);
  const unreadable: SkippedFile[] = [];
  const walked = await walkFiles(root, IMAGE_EXT, (p, e) => unreadable.push({ path: path.resolve(p), reason: e instanceof Error && e.message.startsWith('a symbolic link') ? e.message : `folder cannot be read (${messageOf(e)})` }));
  // a file's key is its path below the root: a name that cannot be a key (a line break in it) is skipped
  const all = walked.filter((f) => {
    const bad = pathKeyProblem(pathKey(root, f));
    if (bad) unreadable.push({ path: path.resolve(f), reason: bad });
    return !bad;
  });
  if (o.strict && unreadable.length) throw fail('BAD_FILE', `${skippedText(unreadable[0]!)} (without --strict it would be skipped)`);
  if (all.length === 0) throw fail('BAD_SOURCE', `folder '${root}' holds no image files (PNG, JPEG, WebP, GIF, TIFF, AVIF)`);
  const files = spread(all.length, o.limit).map((i) => all[i]!);
  o.checkKeys?.(files.map((f) => pathKey(root, f)));
  const s = o.shape ?? {};
  const channels = o.target?.channels ?? (s.channels === 1 || s.channels === 3 ? s.channels : await channelsOf(files));
  const size = s.size ?? DIR_DEFAULTS.size;
  const target: DecodeTarget = o.target ?? { width: size, height: size, channels, fit: s.fit ?? DIR_DEFAULTS.fit, background: s.background ?? DIR_DEFAULTS.background, resample: DIR_DEFAULTS.resample };
  const n = files.length;
  const put = sinkOf(n, target.width * target.height * target.channels);
  const ok = new Uint8Array(n);
  const reasons = new Map<number, string>();
  const spool = o.previews === false ? undefined : new BlobSpool(o.spoolDir);
  const bar = progress({ title: 'decode', total: n, unit: 'images', quiet: o.quiet || n < 200 });
  let next = 0;
  let done = 0;
  let stop = false;
  const worker = async () => {
    for (let i = next++; i < n && !stop; i = next++) {
      const f = files[i]!;
      let img: DecodedImage | undefined;
      try {
        img = await decodeImage(await fs.readFile(f), target, f, { preview: !!spool });
      } catch (e) {
        // the reason without the file's name, which the list of skipped files puts before it
        reasons.set(i, messageWithout(e, f));
        if (o.strict) {
          // the other workers stop after the file in their hands
          stop = true;
          throw fail('BAD_FILE', `${f}: ${reasons.get(i)} (without --strict it would be skipped)`, e);
        }
      }
      if (img) {
        // outside the decode's try: a spool that cannot be written (a full disk) stops the read, never skips a file
        put(i, img.pixels);
        if (spool && img.preview) spool.set(i, img.preview);
        ok[i] = 1;
      }
      if (++done % 64 === 0) bar.update(done);
    }
  };
  // 4 per core: measured 5% more images/s than 2 on 2 cores (each decode waits on file reads and thread hand-offs)
  const width = o.concurrency ?? Math.max(2, 4 * os.availableParallelism());
  const workers = Array.from({ length: Math.min(width, n) }, worker);
  try {
    await Promise.all(workers);
  } catch (e) {
    // nothing may still write into the spool once it is closed
    await Promise.allSettled(workers);
    spool?.close();
    throw e;
  } finally {
    bar.update(done);
    bar.stop();
  }
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (ok[i]) kept.push(i);
  spool?.keep(kept);
  const skipped: SkippedFile[] = [...unreadable, ...[...reasons.entries()].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ path: path.resolve(files[i]!), reason }))];
  if (kept.length === 0) {
    spool?.close();
    throw fail('BAD_SOURCE', `folder '${root}' holds no usable image: ${counted(skipped.length, 'file')} could not be decoded (first: ${skippedText(skipped[0]!)})`);
  }
  if (skipped.length) log(`skipped ${skipped.length} of ${counted(n + unreadable.length, 'file')} in '${root}' that could not be used (first: ${skippedText(skipped[0]!)})`, o.quiet);
  return { root, target, files, kept, skipped, ...(spool ? { previews: spool } : {}) };
}

/** The set a decoded folder makes, without its pixels: keys are paths below the root, labels their folders. */
function dirMeta(d: DecodedDir): Omit<ImageSet, 'pixels'> {
  const rel = d.kept.map((i) => pathKey(d.root, d.files[i]!));
  return {
    kind: 'image',
    source: `dir:${d.root}`,
    ...d.target,
    fit: d.target.fit,
    keys: rel,
    labels: rel.map((r) => (r.includes('/') ? r.slice(0, r.lastIndexOf('/')) : null)),
    uris: d.kept.map((i) => path.resolve(d.files[i]!)),
    ...(d.previews ? { previews: d.previews } : {}),
    skipped: d.skipped,
    roots: [path.resolve(d.root)],
  };
}

/**
 * `dir:PATH`: every image below PATH, label = the sub-folder holding it (none at top level). Files are decoded in
 * parallel straight into one byte array at the model's size; previews are spooled to disk. A file that cannot be
 * used is skipped and listed (or, with `strict`, stops the read with BAD_FILE).
 */
export async function loadDir(root: string, o: DirOptions = {}): Promise<ImageSet> {
  let pixels = new Uint8Array(0);
  let dim = 0;
  const d = await decodeDir(root, o, (n, rowBytes) => {
    dim = rowBytes;
    pixels = new Uint8Array(n * dim);
    return (i, px) => pixels.set(px, i * dim);
  });
  // Compact the usable rows to the front, in file order.
  d.kept.forEach((i, j) => {
    if (i !== j) pixels.copyWithin(j * dim, i * dim, (i + 1) * dim);
  });
  return { ...dirMeta(d), pixels: pixels.subarray(0, d.kept.length * dim) };
}

/**
 * `dir:PATH` for a build that streams: decoded as `loadDir` decodes it, but each image's pixels are spooled to disk,
 * so that memory holds keys and offsets, never the pixels of a million images.
 */
export async function openDirImages(root: string, o: DirOptions = {}): Promise<ImageRows> {
  const rows = new BlobSpool(o.spoolDir);
  let d: DecodedDir;
  try {
    d = await decodeDir(root, o, () => (i, px) => rows.set(i, Buffer.from(px.buffer, px.byteOffset, px.byteLength)));
  } catch (e) {
    rows.close();
    throw e;
  }
  rows.keep(d.kept);
  const dim = d.target.width * d.target.height * d.target.channels;
  return {
    meta: dirMeta(d),
    read(at) {
      const out = new Uint8Array(at.length * dim);
      at.forEach((r, j) => out.set(rows.get(r), j * dim));
      return out;
    },
    close() {
      rows.close();
      d.previews?.close();
    },
  };
}
