import sharp from 'sharp';
import { fail, isLatentdexError, messageOf } from '../src/errors.js';
import { flattenRgb, resampleArea, type Rgba } from './resample.js';

/** How a non-square image becomes the model's square: crop to fill (cover), letterbox (contain) or stretch (fill). */
export const FITS = ['cover', 'contain', 'fill'] as const;
export type Fit = (typeof FITS)[number];

/** The pixels a model sees: size, channels, how the aspect ratio is handled and what transparent pixels become. */
export interface DecodeTarget {
  width: number;
  height: number;
  channels: number;
  /** default 'fill' (the behaviour of models saved before the option existed) */
  fit?: Fit;
  /** alpha is composited on this colour; default black (as models saved before the option existed) */
  background?: string;
  /** how the pixels are resampled: 'area' in JavaScript from the decoded preview-sized image (new models), or
   * libvips' lanczos3 in a second pipeline (the default: models saved before the option existed) */
  resample?: Resample;
}

/** The model manifest's schema lists the same two (src/encoder/manifest.ts). */
export type Resample = 'lanczos3' | 'area';

/**
 * Largest image accepted, in pixels (width × height), before any decoding: it stops decompression bombs while a
 * 16,000 × 16,000 scan or a 100-megapixel camera file still decodes (libvips streams it through the resize).
 */
export const MAX_INPUT_PIXELS = 16384 * 16384;

/** Largest image accepted from an HTTP client: a query needs no 268-megapixel scan, and decoding one costs seconds. */
export const MAX_UPLOAD_PIXELS = 40_000_000;

/** Long side of the colour preview kept per image item. */
export const PREVIEW_SIDE = 160;

/** Formats decoded from their first bytes; everything else (SVG and other markup, PDF, BMP…) is refused unread. */
const SIGNATURES: { format: string; test: (b: Buffer) => boolean }[] = [
  { format: 'png', test: (b) => b.length > 8 && b.readUInt32BE(0) === 0x89504e47 },
  { format: 'jpeg', test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { format: 'gif', test: (b) => b.subarray(0, 4).toString('latin1') === 'GIF8' },
  { format: 'webp', test: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
  { format: 'tiff', test: (b) => ['II*\0', 'MM\0*'].includes(b.subarray(0, 4).toString('latin1')) },
  // AVIF only: the HEIC codec is not in sharp's prebuilt libvips.
  { format: 'heif', test: (b) => b.subarray(4, 8).toString('latin1') === 'ftyp' && /^(avif|avis)$/.test(b.subarray(8, 12).toString('latin1')) },
];

export const IMAGE_FORMATS_HELP = 'PNG, JPEG, WebP, GIF (first frame), TIFF or AVIF';

/** The image format of a buffer from its signature, or undefined when it is not one latentdex decodes. */
export function sniffImage(buf: Buffer): string | undefined {
  return SIGNATURES.find((s) => s.test(buf))?.format;
}

export interface DecodedImage {
  /** the model's input: width × height × channels bytes, HWC */
  pixels: Uint8Array;
  /** a colour WebP of the whole image, PREVIEW_SIDE px on its long side (when asked for) */
  preview?: Buffer;
  /** size of the original image, after EXIF orientation */
  original: { width: number; height: number; format: string };
}

/** libvips' refusal of an image over limitInputPixels, as IMAGE_TOO_LARGE. */
function tooLarge(e: unknown, name: string, limit: number) {
  return /pixel limit/i.test(messageOf(e)) ? fail('IMAGE_TOO_LARGE', `${name}: over the ${(limit / 1e6).toFixed(0)} megapixel limit; scale it down`, e) : undefined;
}

/** libvips' reason on one line, without its filler ("(Unknown error)" after a codec's own message). */
function vipsReason(e: unknown): string {
  const lines = messageOf(e).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^\(?unknown error\)?$/i.test(l));
  return lines.join('; ') || 'libvips gave no reason';
}

function background(t: DecodeTarget): string {
  return t.background ?? '#000000';
}

/**
 * Decodes one image file's bytes as the model sees it (HWC bytes at the target size) and, optionally, a colour
 * preview. Refuses unknown formats before decoding (INVALID_IMAGE) and images over MAX_INPUT_PIXELS (IMAGE_TOO_LARGE).
 */
export async function decodeImage(buf: Buffer, target: DecodeTarget, name = 'image', o: { preview?: boolean; maxPixels?: number } = {}): Promise<DecodedImage> {
  const limit = o.maxPixels ?? MAX_INPUT_PIXELS;
  if (buf.length === 0) throw fail('INVALID_IMAGE', `${name}: the file is empty`);
  const format = sniffImage(buf);
  if (!format) {
    const head = buf.subarray(0, 256).toString('latin1').trimStart().toLowerCase();
    const what = head.startsWith('<') || head.includes('<svg') ? 'is SVG or other markup, which latentdex does not render' : 'is not an image format latentdex reads';
    throw fail('UNSUPPORTED_IMAGE', `${name} ${what}; use ${IMAGE_FORMATS_HELP}`);
  }
  const input = () => sharp(buf, { limitInputPixels: limit, failOn: 'error', autoOrient: true, pages: 1 });
  let meta: sharp.Metadata;
  try {
    meta = await input().metadata();
  } catch (e) {
    throw tooLarge(e, name, limit) ?? fail('INVALID_IMAGE', `${name}: not a decodable ${format.toUpperCase()} (${vipsReason(e)})`, e);
  }
  const w = meta.autoOrient?.width ?? meta.width ?? 0;
  const h = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!w || !h) throw fail('INVALID_IMAGE', `${name}: image has no dimensions`);
  if (w * h > limit) {
    throw fail('IMAGE_TOO_LARGE', `${name}: ${w}x${h} is over the ${(limit / 1e6).toFixed(0)} megapixel limit; scale it down`);
  }
  const bg = background(target);
  const fit = target.fit ?? 'fill';
  try {
    // The file is decoded once (JPEG/WebP shrink on load), oriented and scaled to an intermediate no larger than
    // needed; the model's pixels and the preview are both cut from that small raw image.
    const side = Math.max(PREVIEW_SIDE, 2 * Math.max(target.width, target.height));
    // srgb gives 3 bands, or 4 where the file has alpha: an opaque image is never given an alpha band, so that neither
    // the preview nor the legacy path flattens one in libvips (in floating point: about half the preview's cost).
    const mid = await input().resize(side, side, { fit: 'inside', withoutEnlargement: true }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const channels = mid.info.channels === 3 || mid.info.channels === 4 ? mid.info.channels : undefined;
    if (!channels) throw fail('INVALID_IMAGE', `${name}: decoded to ${mid.info.channels} colour bands, not RGB or RGBA`);
    const raster = { data: mid.data, width: mid.info.width, height: mid.info.height, channels } as const;
    const fromMid = () => sharp(mid.data, { raw: { width: mid.info.width, height: mid.info.height, channels } });
    const previewP = o.preview ? encodePreview(raster) : undefined;
    const pixelsP =
      target.resample === 'area'
        ? Promise.resolve().then(() => resampleArea(raster, { width: target.width, height: target.height, channels: target.channels, fit, background: bg }))
        : lanczosPixels(fromMid(), target, fit, bg);
    // both awaited together: a failure of either is this file's error, never an unhandled rejection
    const [pixels, preview] = await Promise.all([pixelsP, previewP]);
    return { pixels, ...(preview ? { preview } : {}), original: { width: w, height: h, format } };
  } catch (e) {
    if (isLatentdexError(e)) throw e;
    throw tooLarge(e, name, limit) ?? fail('INVALID_IMAGE', `${name}: image could not be decoded (${vipsReason(e)}); the file may be truncated`, e);
  }
}

/**
 * The preview: the image on white (composited here in bytes; libvips' flatten works in floating point), scaled to
 * PREVIEW_SIDE on its long side only when it is not that size already, as a WebP.
 */
function encodePreview(img: Rgba): Promise<Buffer> {
  const rgb = flattenRgb(img, '#ffffff');
  let p = sharp(rgb, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (Math.max(img.width, img.height) !== PREVIEW_SIDE) p = p.resize(PREVIEW_SIDE, PREVIEW_SIDE, { fit: 'inside' });
  return p.webp({ quality: 70, effort: 0 }).toBuffer();
}

/** The model's pixels by a second libvips pipeline (lanczos3): how models saved before `resample` existed decode. */
async function lanczosPixels(mid: sharp.Sharp, target: DecodeTarget, fit: Fit, bg: string): Promise<Uint8Array> {
  // Flatten first: alpha composited on the stated background, so transparent pixels never become noise.
  let px = mid.flatten({ background: bg }).resize(target.width, target.height, { fit, position: 'centre', background: bg });
  px = target.channels === 1 ? px.toColourspace('b-w') : px.toColourspace('srgb');
  const { data, info } = await px.raw().toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(target.width * target.height * target.channels);
  const c = info.channels;
  if (c === target.channels) pixels.set(data.subarray(0, pixels.length));
  else {
    for (let p = 0; p < target.width * target.height; p++) {
      for (let k = 0; k < target.channels; k++) pixels[p * target.channels + k] = data[p * c + Math.min(k, c - 1)]!;
    }
  }
  return pixels;
}

/**
 * Whether an image holds colour: decoded small, is any pixel's channel spread visible (> 12 of 255)?
 * Grey images saved as RGB count as grey. Undecodable files answer undefined.
 */
export async function isColourImage(buf: Buffer): Promise<boolean | undefined> {
  if (!sniffImage(buf)) return undefined;
  try {
    const { data, info } = await sharp(buf, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error', pages: 1 })
      .flatten({ background: '#ffffff' })
      .resize(16, 16, { fit: 'fill' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels < 3) return false;
    for (let p = 0; p < info.width * info.height; p++) {
      const o = p * info.channels;
      const r = data[o]!;
      const g = data[o + 1]!;
      const b = data[o + 2]!;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 12) return true;
    }
    return false;
  } catch {
    return undefined;
  }
}
