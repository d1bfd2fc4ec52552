import { imageDim, type ImageSet, type SkippedFile } from '../../data/images.js';
import { imagePng } from '../encoder/png.js';
import { inSourceOrder, type CreateOptions, type ItemInput, type ItemStream } from './collection.js';
import { selectTexts, type TextSet } from '../../data/texts.js';
import type { TrainedModel } from '../encoder/model.js';
import { baselineVectorizerOf, textVectors, vectorizerOf, weightingOf } from '../encoder/text.js';
import type { Vectorizer } from '../encoder/vectorizer.js';
import { fail } from '../errors.js';
import { counted } from '../progress.js';

/** Items per batch when a source streams into a collection. */
export const ITEM_BATCH = 1024;

function imageItem(set: ImageSet, i: number): ItemInput {
  const d = imageDim(set);
  const px = set.pixels.subarray(i * d, (i + 1) * d);
  // The preview is the original in colour where the source kept one, else the pixels themselves.
  const thumb = set.previews ? set.previews.get(i) : imagePng(px, set.width, set.height, set.channels);
  return { key: set.keys[i]!, label: set.labels[i] ?? null, uri: set.uris[i] ?? null, input: px, raw: px, thumb };
}

/** Image items for a collection: model input = raw = the pixel bytes, thumbnail = the preview. */
export function imageItems(set: ImageSet): ItemInput[] {
  return set.keys.map((_, i) => imageItem(set, i));
}

/** The items of an image set in batches (previews read from their spool one batch at a time). */
export function imageItemStream(set: ImageSet, batch = ITEM_BATCH): ItemStream {
  const n = set.keys.length;
  return {
    total: n,
    keys: set.keys,
    *batches(from = 0) {
      for (let s = from; s < n; s += batch) yield Array.from({ length: Math.min(batch, n - s) }, (_, j) => imageItem(set, s + j));
    },
    skipped: set.skipped,
    roots: set.roots,
  };
}

/** The text items of documents that all hold a word of the model's vocabulary (see textItemStream). */
function textBatch(model: TrainedModel, set: TextSet): ItemInput[] {
  const { input, raw } = textVectors(model, set.texts);
  const d = model.inputDim;
  return set.keys.map((key, i) => ({ key, label: set.labels[i] ?? null, uri: set.uris[i] ?? null, grp: set.groups[i] ?? null, text: set.texts[i]!, input: input.subarray(i * d, (i + 1) * d), raw: raw[i]!, thumb: null }));
}

/** Why a text has no code: it has no words at all, or none of its words is one the model knows. */
function noVocabularyReason(vec: Vectorizer, text: string): string {
  const n = new Set(vec.spans(text).spans.map((s) => s.token)).size;
  if (n === 0) return 'no words (empty, or only stop words, numbers and one-letter words)';
  return `none of its ${counted(n, 'word')} is among the ${vec.dim} words of the model's vocabulary (the words found in most training texts): add longer texts, or build again with this one among the training texts or a larger --vocab-size`;
}

/**
 * The documents of a text set that hold a word of the model's vocabulary (indices), and those that hold none, listed
 * as skipped (strict: an error naming the first); found a batch at a time. EMPTY_TEXT when no document has one.
 */
export function splitByVocabulary(model: TrainedModel, set: TextSet, o: { batch?: number; strict?: boolean } = {}): { kept: number[]; unusable: SkippedFile[] } {
  const batch = o.batch ?? ITEM_BATCH;
  const kept: number[] = [];
  const empty: number[] = [];
  const vec = vectorizerOf(model);
  for (let s = 0; s < set.texts.length; s += batch) {
    const chunk = set.texts.slice(s, s + batch);
    const skip = new Set(vec.emptyOf(chunk));
    chunk.forEach((_, j) => (skip.has(j) ? empty : kept).push(s + j));
  }
  if (kept.length === 0) throw fail('EMPTY_TEXT', `no document of ${set.source} has a word of the model's vocabulary`);
  const unusable = empty.map((i) => ({ path: set.uris[i] || set.keys[i]!, reason: noVocabularyReason(vec, set.texts[i]!) }));
  if (o.strict && unusable[0]) throw fail('BAD_FILE', `${unusable[0].path}: ${unusable[0].reason} (without --strict it would be skipped)`);
  return { kept, unusable };
}

/**
 * Text items in batches: model input per the model's weighting, raw = sparse TF-IDF for the exact baseline, the text as
 * snippet. Documents without a word of the model's vocabulary are found first (a batch at a time) and left out, so
 * memory holds one batch of vectors, never a dense matrix of every document.
 */
export function textItemStream(model: TrainedModel, set: TextSet, o: { batch?: number; strict?: boolean } = {}): ItemStream {
  const batch = o.batch ?? ITEM_BATCH;
  const { kept, unusable } = splitByVocabulary(model, set, o);
  return {
    total: kept.length,
    keys: kept.map((i) => set.keys[i]!),
    *batches(from = 0) {
      for (let s = from; s < kept.length; s += batch) yield textBatch(model, selectTexts(set, kept.slice(s, s + batch)));
    },
    // recorded in the manifest, so that `info` lists them all, in the source's order (file, then line)
    skipped: inSourceOrder([...(set.skipped ?? []), ...unusable]),
  };
}

/** Every text item at once (for small sets; builds stream them with textItemStream). */
export function textItems(model: TrainedModel, set: TextSet): ItemInput[] {
  const stream = textItemStream(model, set, { batch: Math.max(1, set.texts.length) });
  return [...(stream.batches() as Iterable<ItemInput[]>)].flat();
}

/** Settings of an image collection: L2 over codes, the exact baseline over the stored pixel bytes. */
export function imageCollectionSettings(model: TrainedModel, set: Pick<ImageSet, 'width' | 'height' | 'channels' | 'fit' | 'source'>): Omit<CreateOptions, 'name' | 'hnsw'> {
  return { kind: 'image', space: 'l2', rawDim: model.inputDim, rawType: 'u8', params: { width: set.width, height: set.height, channels: set.channels, fit: set.fit ?? null, source: set.source } };
}

/** Settings of a text collection: cosine over codes, the exact baseline over sparse TF-IDF of the model's full vocabulary. */
export function textCollectionSettings(model: TrainedModel, set: TextSet): Omit<CreateOptions, 'name' | 'hnsw'> {
  return { kind: 'text', space: 'cosine', rawDim: baselineVectorizerOf(model).dim, rawType: 'sparse', params: { source: set.source, weighting: weightingOf(model), ...(set.groupField !== undefined ? { groupBy: set.groupField } : {}) } };
}
