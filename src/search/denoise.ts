import { imagePng } from '../encoder/png.js';
import { fail } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import { decodeQueryImage } from './engine.js';

/**
 * An image as the collection's model reconstructs it, as a PNG at the collection's size (a model trained with
 * --denoise removes noise); INVALID_ARGUMENT for text collections.
 */
export async function denoiseImage(c: Collection, bytes: Buffer): Promise<{ png: Buffer; denoising: boolean; width: number; height: number }> {
  if (c.kind !== 'image') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; denoise takes an image collection`);
  const img = await decodeQueryImage(c, bytes);
  const i = c.model.manifest.input;
  if (i.type !== 'pixels') throw fail('INTERNAL', 'an image collection without a pixel model');
  const png = imagePng(c.model.reconstruct(img.pixels, 1), i.width, i.height, i.channels);
  return { png, denoising: Boolean(c.model.manifest.regularisers.denoise), width: i.width, height: i.height };
}
