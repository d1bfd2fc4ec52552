import { imageDim, type ImageSet } from '../../data/images.js';
import { imagePng } from '../encoder/png.js';
import type { ItemInput } from './collection.js';

/** Image items for a collection: model input = raw = pixels, thumbnail = the image as PNG. */
export function imageItems(set: ImageSet): ItemInput[] {
  const d = imageDim(set);
  return set.keys.map((key, i) => {
    const px = set.pixels.subarray(i * d, (i + 1) * d);
    return { key, label: set.labels[i] ?? null, uri: set.uris[i] ?? null, input: px, raw: px, thumb: imagePng(px, set.width, set.height, set.channels) };
  });
}
