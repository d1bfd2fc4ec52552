import { imageDim, type ImageSet } from '../../data/images.js';
import { imagePng } from '../encoder/png.js';
import type { ItemInput } from './collection.js';
import type { TextSet } from '../../data/texts.js';
import type { TrainedModel } from '../encoder/model.js';
import { textVectors } from '../encoder/text.js';
import { fail } from '../errors.js';

/** Image items for a collection: model input = raw = pixels, thumbnail = the image as PNG. */
export function imageItems(set: ImageSet): ItemInput[] {
  const d = imageDim(set);
  return set.keys.map((key, i) => {
    const px = set.pixels.subarray(i * d, (i + 1) * d);
    return { key, label: set.labels[i] ?? null, uri: set.uris[i] ?? null, input: px, raw: px, thumb: imagePng(px, set.width, set.height, set.channels) };
  });
}

/** Text items: model input per the model's weighting, raw = TF-IDF for the exact baseline, the text as snippet. */
export function textItems(model: TrainedModel, set: TextSet): ItemInput[] {
  const { input, raw, empty } = textVectors(model, set.texts);
  if (empty.length === set.texts.length) throw fail('EMPTY_TEXT', `no document of ${set.source} has a word of the model's vocabulary`);
  const skip = new Set(empty);
  const d = model.inputDim;
  const out: ItemInput[] = [];
  set.keys.forEach((key, i) => {
    if (skip.has(i)) return;
    out.push({ key, label: set.labels[i] ?? null, uri: set.uris[i] ?? null, grp: set.groups[i] ?? null, text: set.texts[i]!, input: input.subarray(i * d, (i + 1) * d), raw: raw.subarray(i * d, (i + 1) * d), thumb: null });
  });
  return out;
}
