import sharp from 'sharp';
import { fail, messageOf } from '../src/errors.js';

export interface DecodeTarget {
  width: number;
  height: number;
  channels: number;
}

/** Largest width or height accepted in an uploaded or folder image, to refuse decompression bombs. */
export const MAX_IMAGE_SIDE = 4096;

/** Decodes a PNG/JPEG (any format sharp reads), resizes to the target and returns floats in [0,1], HWC order. */
export async function decodeImage(buf: Buffer, target: DecodeTarget, name = 'image'): Promise<Float32Array> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(buf).metadata();
  } catch (e) {
    throw fail('INVALID_IMAGE', `${name}: not a decodable image (${messageOf(e)}); send a PNG or JPEG`, e);
  }
  if (!meta.width || !meta.height) throw fail('INVALID_IMAGE', `${name}: image has no dimensions; send a PNG or JPEG`);
  if (meta.width > MAX_IMAGE_SIDE || meta.height > MAX_IMAGE_SIDE) {
    throw fail('IMAGE_TOO_LARGE', `${name}: ${meta.width}x${meta.height} is over the ${MAX_IMAGE_SIDE}px limit per side; scale it down`);
  }
  try {
    let img = sharp(buf).flatten({ background: '#000000' }).resize(target.width, target.height, { fit: 'fill' });
    img = target.channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    const out = new Float32Array(target.width * target.height * target.channels);
    const c = info.channels;
    for (let p = 0; p < target.width * target.height; p++) {
      for (let k = 0; k < target.channels; k++) out[p * target.channels + k] = data[p * c + Math.min(k, c - 1)]! / 255;
    }
    return out;
  } catch (e) {
    throw fail('INVALID_IMAGE', `${name}: image could not be decoded (${messageOf(e)}); the file may be truncated`, e);
  }
}
