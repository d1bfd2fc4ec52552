import type { ImageSet, Pixels } from '../../data/images.js';
import type { DecodeTarget } from '../../data/decode.js';
import type { ShapeRequest } from '../../data/dir.js';
import { checkImageShape, isTextSpec, loadImageSource, loadTextSource } from '../../data/sources.js';
import type { TextSet } from '../../data/texts.js';
import { fitImageModel } from '../encoder/fit.js';
import type { TrainedModel } from '../encoder/model.js';
import { fitTextModel, textVectors } from '../encoder/text.js';
import { fail } from '../errors.js';
import { arrayStream, type CreateOptions, type ItemStream, type RawVectors } from '../indexer/collection.js';
import { imageCollectionSettings, imageItems, imageItemStream, ITEM_BATCH, textCollectionSettings, textItems } from '../indexer/items.js';
import { openIdxImages } from '../../data/idx.js';
import { spread } from '../../data/dir.js';
import { selectImages } from '../../data/images.js';
import { selectTexts } from '../../data/texts.js';
import type { QuerySet } from '../search/eval.js';
import { modelOptions, type ModelFlags } from './options.js';

export type Loaded = { kind: 'image'; set: ImageSet } | { kind: 'text'; set: TextSet };

/** The exact decoding a model's images went through: size, channels, fit and background. */
export function imageTargetOf(model: TrainedModel | undefined): DecodeTarget | undefined {
  const i = model?.manifest.input;
  return i?.type === 'pixels' ? { width: i.width, height: i.height, channels: i.channels, fit: i.fit, background: i.background } : undefined;
}

export interface LoadFlags {
  limit?: number;
  /** keep colour previews (for build and add) */
  previews?: boolean;
  model?: TrainedModel;
  /** image shape for a new model (--image-size, --channels, --fit) */
  shape?: ShapeRequest;
  strict?: boolean;
  quiet?: boolean;
  /** jsonl: the field naming each record's source document */
  groupBy?: string;
}

/** Refuses flags that do not fit a source (or its model); returns whether it holds texts. */
function checkFlags(spec: string, o: LoadFlags): boolean {
  const text = isTextSpec(spec);
  if (o.model && (o.model.manifest.kind === 'text') !== text) {
    throw fail('INVALID_ARGUMENT', `source '${spec}' holds ${text ? 'texts' : 'images'} but the model is a${o.model.manifest.kind === 'text' ? ' text' : 'n image'} model`);
  }
  if (text) return true;
  if (o.groupBy !== undefined) throw fail('INVALID_ARGUMENT', '--group-by applies to text sources (jsonl:FILE)');
  if (o.model && o.shape && Object.values(o.shape).some((v) => v !== undefined)) {
    throw fail('INVALID_ARGUMENT', '--image-size, --channels and --fit shape a new model; with a model, images are decoded as it was trained');
  }
  return false;
}

/** Reads an image or text source; with a model, checks that the source is of the model's kind and decodes as it did. */
export async function loadSource(spec: string, o: LoadFlags = {}): Promise<Loaded> {
  const text = checkFlags(spec, o);
  if (text) return { kind: 'text', set: await loadTextSource(spec, { limit: o.limit, groupBy: o.groupBy }) };
  return { kind: 'image', set: await loadImageSource(spec, { limit: o.limit, target: imageTargetOf(o.model), shape: o.shape, strict: o.strict, quiet: o.quiet, previews: o.previews }) };
}

export function count(l: Loaded): number {
  return l.set.keys.length;
}

/** Trains the model the flags describe on a loaded source (labels are never used). */
export async function fitModel(l: Loaded, f: ModelFlags, quiet: boolean): Promise<TrainedModel> {
  const o = modelOptions(f, quiet);
  if (l.kind === 'image') return fitImageModel(l.set, o);
  if (f.arch === 'conv') throw fail('INVALID_ARGUMENT', '--arch conv is for images; text models are dense');
  return fitTextModel(l.set, { ...o, weighting: f.weighting, output: f.textOutput, vocabulary: { ...(f.vocabSize ? { size: f.vocabSize } : {}), ...(f.stem ? { stem: true } : {}) } });
}

/** The items of a loaded source, in batches (images) or at once (texts, already in memory as vectors). */
export function itemsOf(model: TrainedModel, l: Loaded): ItemStream {
  if (l.kind === 'image') return imageItemStream(l.set);
  const items = textItems(model, l.set);
  return arrayStream(items);
}

/** The collection settings for a model and source: images in L2 over pixels, texts in cosine over TF-IDF. */
export function collectionSettings(model: TrainedModel, l: Loaded): Omit<CreateOptions, 'name' | 'hnsw'> {
  return l.kind === 'image' ? imageCollectionSettings(model, l.set) : textCollectionSettings(model, l.set);
}

/** The model's input and baseline vectors of every item in a source. */
export function vectorsOf(model: TrainedModel, l: Loaded): { input: Pixels; raw: RawVectors } {
  if (l.kind === 'image') return { input: l.set.pixels, raw: l.set.pixels };
  const v = textVectors(model, l.set.texts);
  return { input: v.input, raw: v.raw };
}

export function queriesOf(model: TrainedModel, l: Loaded): QuerySet {
  const v = vectorsOf(model, l);
  return { n: count(l), keys: l.set.keys, labels: l.set.labels, groups: l.kind === 'text' ? l.set.groups : null, input: v.input, raw: v.raw };
}

/** Items a build trains on at most by default (evenly spread): a bounded sample, so that a million items train as 100,000 do. */
export const DEFAULT_TRAIN_LIMIT = 100_000;

/** The part of a loaded source a model trains on: evenly spread, never read twice. */
export function subset(l: Loaded, limit: number): Loaded {
  if (limit >= count(l)) return l;
  const idx = spread(count(l), limit);
  return l.kind === 'image' ? { kind: 'image', set: selectImages(l.set, idx) } : { kind: 'text', set: selectTexts(l.set, idx) };
}

/**
 * What a build reads: a sample to train on, and every item as a stream. An uncompressed IDX file streams from disk
 * (memory holds its keys and one batch of pixels, never the file); other sources are read whole, as before.
 */
export interface BuildSource {
  /** the items a model trains on (at most `trainLimit`, evenly spread) */
  train: Loaded;
  items(model: TrainedModel): ItemStream;
  settings(model: TrainedModel): Omit<CreateOptions, 'name' | 'hnsw'>;
  /** the whole source when it was read whole (for the skipped-files report and the shape note) */
  loaded: Loaded;
  close(): void;
}

export async function openBuildSource(spec: string, o: LoadFlags & { trainLimit?: number }): Promise<BuildSource> {
  const trainLimit = o.trainLimit ?? DEFAULT_TRAIN_LIMIT;
  const idx = spec.startsWith('idx:') ? await openIdxImages(spec.slice(4)) : undefined;
  if (!idx) {
    const l = await loadSource(spec, o);
    return { train: subset(l, trainLimit), items: (m) => itemsOf(m, l), settings: (m) => collectionSettings(m, l), loaded: l, close: () => undefined };
  }
  try {
    const meta = idx.meta;
    checkFlags(spec, o);
    checkImageShape(spec, meta, { shape: o.shape, target: imageTargetOf(o.model) });
    const rows = spread(meta.keys.length, o.limit);
    const pick = (at: readonly number[]): ImageSet => ({ ...meta, keys: at.map((i) => meta.keys[i]!), labels: at.map((i) => meta.labels[i]!), uris: at.map((i) => meta.uris[i]!), pixels: idx.read(at) });
    const sampleRows = spread(rows.length, trainLimit).map((i) => rows[i]!);
    const train: Loaded = { kind: 'image', set: pick(sampleRows) };
    const stream: ItemStream = {
      total: rows.length,
      keys: rows.map((i) => meta.keys[i]!),
      *batches(from = 0) {
        for (let s = from; s < rows.length; s += ITEM_BATCH) yield imageItems(pick(rows.slice(s, s + ITEM_BATCH)));
      },
    };
    return { train, items: () => stream, settings: (m) => imageCollectionSettings(m, train.set as ImageSet), loaded: train, close: () => idx.close() };
  } catch (e) {
    idx.close();
    throw e;
  }
}