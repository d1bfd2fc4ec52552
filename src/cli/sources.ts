import type { ImageRows, ImageSet, Pixels, SkippedFile } from '../../data/images.js';
import type { DecodeTarget } from '../../data/decode.js';
import type { ShapeRequest } from '../../data/dir.js';
import { checkImageShape, isTextSpec, loadImageSource, loadTextSource } from '../../data/sources.js';
import type { TextSet } from '../../data/texts.js';
import { fitImageModel } from '../encoder/fit.js';
import type { TrainedModel } from '../encoder/model.js';
import { fitTextModel, textVectors } from '../encoder/text.js';
import { fail } from '../errors.js';
import { inSourceOrder, type CreateOptions, type ItemStream, type RawVectors } from '../indexer/collection.js';
import { imageCollectionSettings, imageItems, imageItemStream, ITEM_BATCH, splitByVocabulary, textCollectionSettings, textItemStream } from '../indexer/items.js';
import { openIdxImages } from '../../data/idx.js';
import { openDirImages, spread } from '../../data/dir.js';
import { selectImages } from '../../data/images.js';
import { selectTexts } from '../../data/texts.js';
import type { QuerySet } from '../search/eval.js';
import { modelOptions, type ModelFlags } from './options.js';

export type Loaded = { kind: 'image'; set: ImageSet } | { kind: 'text'; set: TextSet };

/** The exact decoding a model's images went through: size, channels, fit and background. */
export function imageTargetOf(model: TrainedModel | undefined): DecodeTarget | undefined {
  const i = model?.manifest.input;
  return i?.type === 'pixels' ? { width: i.width, height: i.height, channels: i.channels, fit: i.fit, background: i.background, resample: i.resample } : undefined;
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
  /** groupBy is the one the collection was built with (an add): records without it are no error */
  groupOptional?: boolean;
  /** where a folder's pixels and previews are spooled while it is read (default the system's temporary folder) */
  spoolDir?: string;
  /** put before every key (a second folder whose file names repeat the first's) */
  keyPrefix?: string;
  /** called with the (prefixed) keys of a folder's files before any is decoded: an add refuses stored keys at once */
  checkKeys?: (keys: readonly string[]) => void;
}

/** The keys with the prefix asked for (checked by checkFlags), if any. */
function prefixed(keys: string[], prefix: string | undefined): string[] {
  return prefix === undefined ? keys : keys.map((k) => prefix + k);
}

/** Refuses flags that do not fit a source (or its model), before it is read; returns whether it holds texts. */
function checkFlags(spec: string, o: LoadFlags): boolean {
  const p = o.keyPrefix;
  if (p !== undefined && (p === '' || p.length > 200 || /[\u0000-\u001f\u007f]/.test(p))) {
    throw fail('INVALID_ARGUMENT', '--key-prefix must be 1 to 200 characters without control characters, e.g. trip2/');
  }
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
  if (text) {
    const set = await loadTextSource(spec, { limit: o.limit, groupBy: o.groupBy, groupOptional: o.groupOptional, strict: o.strict, quiet: o.quiet });
    return { kind: 'text', set: { ...set, keys: prefixed(set.keys, o.keyPrefix) } };
  }
  const set = await loadImageSource(spec, { limit: o.limit, target: imageTargetOf(o.model), shape: o.shape, strict: o.strict, quiet: o.quiet, previews: o.previews, spoolDir: o.spoolDir, ...(o.checkKeys ? { checkKeys: (keys: string[]) => o.checkKeys!(prefixed(keys, o.keyPrefix)) } : {}) });
  return { kind: 'image', set: { ...set, keys: prefixed(set.keys, o.keyPrefix) } };
}

export function count(l: Loaded): number {
  return l.set.keys.length;
}

/** Trains the model the flags describe on a loaded source (labels are never used). */
export async function fitModel(l: Loaded, f: ModelFlags, quiet: boolean): Promise<TrainedModel> {
  const o = modelOptions(f, quiet);
  if (l.kind === 'image') return fitImageModel(l.set, o);
  if (f.arch === 'conv') throw fail('INVALID_ARGUMENT', '--arch conv is for images; text models are dense');
  if (f.inputScale !== undefined || f.loss !== undefined) throw fail('INVALID_ARGUMENT', '--input-scale and --loss are for images; a text model\'s loss follows --text-output');
  return fitTextModel(l.set, { ...o, weighting: f.weighting, output: f.textOutput, vocabulary: { ...(f.vocabSize ? { size: f.vocabSize } : {}), ...(f.stem ? { stem: true } : {}) } });
}

/** The items of a loaded source in batches (texts vectorized a batch at a time). */
export function itemsOf(model: TrainedModel, l: Loaded, o: { strict?: boolean } = {}): ItemStream {
  return l.kind === 'image' ? imageItemStream(l.set) : textItemStream(model, l.set, o);
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

/**
 * What `encode` and `eval` can encode: a text source without the documents that hold no word of the model's
 * vocabulary (listed as a build lists them); images as they are.
 */
export function encodable(model: TrainedModel, l: Loaded): { loaded: Loaded; skipped: SkippedFile[] } {
  if (l.kind === 'image') return { loaded: l, skipped: l.set.skipped ?? [] };
  const { kept, unusable } = splitByVocabulary(model, l.set);
  return { loaded: unusable.length ? { kind: 'text', set: selectTexts(l.set, kept) } : l, skipped: inSourceOrder([...(l.set.skipped ?? []), ...unusable]) };
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
 * and a folder is decoded once into a spool on disk (memory holds keys and one batch of pixels, never the source);
 * other sources are read whole.
 */
export interface BuildSource {
  /** reads the items a model trains on (at most `trainLimit`, evenly spread); only a build that trains asks */
  train(): Loaded;
  items(model: TrainedModel): ItemStream;
  settings(model: TrainedModel): Omit<CreateOptions, 'name' | 'hnsw'>;
  /** files of the source that could not be used */
  skipped: SkippedFile[];
  /** the images' shape (null for texts) */
  shape: Pick<ImageSet, 'width' | 'height' | 'channels'> | null;
  close(): void;
}

/** The rows of an image source that can be read a batch at a time, or undefined for one that is read whole. */
async function openRows(spec: string, o: LoadFlags): Promise<{ rows: ImageRows; limited: boolean } | undefined> {
  if (spec.startsWith('dir:')) {
    checkFlags(spec, o);
    const rows = await openDirImages(spec.slice(4), { limit: o.limit, target: imageTargetOf(o.model), shape: o.shape, strict: o.strict, quiet: o.quiet, previews: o.previews ?? false, spoolDir: o.spoolDir });
    return { rows, limited: true };
  }
  const rows = spec.startsWith('idx:') ? await openIdxImages(spec.slice(4)) : undefined;
  if (!rows) return undefined;
  try {
    checkFlags(spec, o);
    checkImageShape(spec, rows.meta, { shape: o.shape, target: imageTargetOf(o.model) });
  } catch (e) {
    rows.close();
    throw e;
  }
  return { rows, limited: false };
}

export async function openBuildSource(spec: string, o: LoadFlags & { trainLimit?: number }): Promise<BuildSource> {
  const trainLimit = o.trainLimit ?? DEFAULT_TRAIN_LIMIT;
  const opened = await openRows(spec, o);
  if (!opened) {
    const l = await loadSource(spec, o);
    const image = l.kind === 'image' ? l.set : null;
    return { train: () => subset(l, trainLimit), items: (m) => itemsOf(m, l, { strict: o.strict }), settings: (m) => collectionSettings(m, l), skipped: l.set.skipped ?? [], shape: image, close: () => undefined };
  }
  const { rows: source, limited } = opened;
  try {
    const meta = { ...source.meta, keys: prefixed(source.meta.keys, o.keyPrefix) };
    const all = meta.previews;
    // a folder's --limit was applied as it was decoded
    const rows = limited ? spread(meta.keys.length, undefined) : spread(meta.keys.length, o.limit);
    const pick = (at: readonly number[]): ImageSet => ({
      ...meta,
      keys: at.map((i) => meta.keys[i]!),
      labels: at.map((i) => meta.labels[i]!),
      uris: at.map((i) => meta.uris[i]!),
      pixels: source.read(at),
      ...(all ? { previews: { get: (j: number) => all.get(at[j]!), close: () => undefined } } : {}),
    });
    const stream: ItemStream = {
      total: rows.length,
      keys: rows.map((i) => meta.keys[i]!),
      async *batches(from = 0) {
        for (let s = from; s < rows.length; s += ITEM_BATCH) yield imageItems(pick(rows.slice(s, s + ITEM_BATCH)));
      },
      skipped: meta.skipped,
      roots: meta.roots,
    };
    return {
      train: () => ({ kind: 'image', set: pick(spread(rows.length, trainLimit).map((i) => rows[i]!)) }),
      items: () => stream,
      settings: (m) => imageCollectionSettings(m, meta),
      skipped: meta.skipped,
      shape: meta,
      close: () => source.close(),
    };
  } catch (e) {
    source.close();
    throw e;
  }
}
