import type { Fit, Resample } from './decode.js';

/** A file of a source that could not be used, and why. */
export interface SkippedFile {
  path: string;
  reason: string;
}

/** "path: reason" for messages; a path holding control characters (a line break, an escape) is quoted and escaped. */
export function skippedText(f: SkippedFile): string {
  const escaped = () => JSON.stringify(f.path).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${/\p{Cc}/u.test(f.path) ? escaped() : f.path}: ${f.reason}`;
}

/** Per-item blobs read back one at a time (image previews spooled to disk, or a view of such a spool). */
export interface Previews {
  get(i: number): Buffer;
  close(): void;
}

/** A set of images held as bytes (n × height × width × channels, HWC), as the catalogue and the baseline use them. */
export interface ImageSet {
  kind: 'image';
  /** the source spec it was read from, e.g. `mnist:train` */
  source: string;
  width: number;
  height: number;
  channels: number;
  /** how images of another aspect ratio were made square, and the colour alpha was composited on (dir: sources) */
  fit?: Fit;
  background?: string;
  /** how the pixels were resampled (see DecodeTarget) */
  resample?: Resample;
  keys: string[];
  /** label per item as text (digit, class folder name), null when unknown */
  labels: (string | null)[];
  uris: string[];
  pixels: Uint8Array;
  /** colour previews of the original files, one per item (dir: sources); others draw theirs from the pixels */
  previews?: Previews;
  /** files of the source that could not be used */
  skipped: SkippedFile[];
  /** folders the items were read from (dir: sources), absolute */
  roots: string[];
}

/** Pixels as the model takes them: bytes (read as v/255) or floats in [0,1]. */
export type Pixels = Uint8Array | Float32Array;

export function imageDim(s: Pick<ImageSet, 'width' | 'height' | 'channels'>): number {
  return s.width * s.height * s.channels;
}

export function imageRow(s: ImageSet, i: number): Uint8Array {
  const d = imageDim(s);
  return s.pixels.subarray(i * d, (i + 1) * d);
}

/** Floats in [0,1] of pixel bytes (or the floats themselves). */
export function toFloats(p: Pixels): Float32Array {
  if (p instanceof Float32Array) return p;
  const out = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i]! / 255;
  return out;
}

/** Bytes of pixel floats in [0,1] (or the bytes themselves). */
export function toBytes(p: ArrayLike<number> | Uint8Array): Uint8Array {
  if (p instanceof Uint8Array) return p;
  const out = new Uint8Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(p[i]! * 255)));
  return out;
}

/** Keeps the items whose index passes `keep`, in order. */
export function filterImages(s: ImageSet, keep: (i: number) => boolean, source = s.source): ImageSet {
  const idx: number[] = [];
  for (let i = 0; i < s.keys.length; i++) if (keep(i)) idx.push(i);
  return selectImages(s, idx, source);
}

/** The items at `idx`, pixels copied; a selection of a set with previews has none (they stay with the whole set). */
export function selectImages(s: ImageSet, idx: readonly number[], source = s.source): ImageSet {
  const d = imageDim(s);
  const pixels = new Uint8Array(idx.length * d);
  idx.forEach((i, j) => pixels.set(s.pixels.subarray(i * d, (i + 1) * d), j * d));
  const { previews: _drop, ...rest } = s;
  return {
    ...rest,
    source,
    keys: idx.map((i) => s.keys[i]!),
    labels: idx.map((i) => s.labels[i]!),
    uris: idx.map((i) => s.uris[i]!),
    pixels,
  };
}

/** A set of images read a few rows at a time (a file on disk, a spool): memory holds keys and labels, not pixels. */
export interface ImageRows {
  /** the set without pixels */
  meta: Omit<ImageSet, 'pixels'>;
  /** the pixels of these rows, in this order */
  read(rows: readonly number[]): Uint8Array;
  close(): void;
}
