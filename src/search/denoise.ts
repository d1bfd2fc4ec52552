import { imagePng } from '../encoder/png.js';
import { fail } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import { decodeQueryImage, type ImageOrigin } from './engine.js';

/**
 * An image as the collection's model reconstructs it, as a PNG at the collection's size (a model trained with
 * --denoise removes noise); INVALID_ARGUMENT for text collections. `from` names the image and bounds its size
 * (default: an HTTP upload's).
 */
export async function denoiseImage(c: Collection, bytes: Buffer, from?: ImageOrigin): Promise<{ png: Buffer; denoising: boolean; width: number; height: number }> {
  if (c.kind !== 'image') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; denoise takes an image collection`);
  const img = await decodeQueryImage(c, bytes, from);
  const i = c.model.manifest.input;
  if (i.type !== 'pixels') throw fail('INTERNAL', 'an image collection without a pixel model');
  const png = imagePng(c.model.reconstruct(img.pixels, 1), i.width, i.height, i.channels);
  return { png, denoising: Boolean(c.model.manifest.regularisers.denoise), width: i.width, height: i.height };
}
