import { rng } from '../encoder/rng.js';
import { textVectors, vectorizerOf } from '../encoder/text.js';
import type { Collection } from '../indexer/collection.js';
import type { OutlierScore } from './outliers.js';

/**
 * A typed query is often far shorter than the documents of a collection, and a few words look unusual next to whole
 * documents whatever they say: on 1,500 Brown chunks of 200 words, held-out excerpts of 6 words scored above 98% of
 * the items (median), excerpts of 100 words above 83%. A query with fewer words than the collection's median item is
 * therefore compared with EXCERPT_COUNT excerpts of as many words cut from the collection's own texts. Words are
 * counted as the model cuts them (character pairs in scripts written without spaces).
 */
export const EXCERPT_COUNT = 200;
/** Fewer usable excerpts than this (texts with no word of the vocabulary are left out): the items are the scale. */
export const MIN_EXCERPTS = 20;
/** Items whose word counts give the collection's median (evenly spaced over the ids). */
const LENGTH_SAMPLE = 1001;

/** The i-th of m evenly spaced positions over n (each position repeated when m > n). */
const spaced = (i: number, m: number, n: number) => Math.floor((i * n) / m);

/** The median number of words (as the model counts them) of a text collection's items. */
export function medianWords(c: Collection, ids: Int32Array): number {
  return c.derived('novelty:median-words', () => {
    const v = vectorizerOf(c.model);
    const m = Math.min(ids.length, LENGTH_SAMPLE);
    const counts: number[] = [];
    for (let t = 0; t < m; t++) {
      const text = c.rowOf(ids[spaced(t, m, ids.length)]!)?.text;
      if (text != null) counts.push(v.spans(text).spans.length);
    }
    counts.sort((a, b) => a - b);
    return counts.length ? counts[counts.length >> 1]! : 0;
  });
}

/** The excerpt length a text query is compared at, or undefined when it is as long as the items (compared with them). */
export function excerptWords(c: Collection, ids: Int32Array, text: string): number | undefined {
  const n = vectorizerOf(c.model).spans(text).spans.length;
  return n > 0 && n < medianWords(c, ids) ? n : undefined;
}

/** Excerpts of `words` words, each with the id of the item it was cut from (to be left out of its neighbours). */
export interface Excerpts {
  texts: string[];
  from: Int32Array;
}

/**
 * EXCERPT_COUNT excerpts of `words` consecutive words, from items evenly spaced over the ids (a small collection's
 * items give several each), at seeded offsets. Items with fewer words give them all.
 */
export function cutExcerpts(c: Collection, ids: Int32Array, words: number): Excerpts {
  const v = vectorizerOf(c.model);
  const rand = rng(words);
  const texts: string[] = [];
  const from: number[] = [];
  for (let t = 0; t < EXCERPT_COUNT && ids.length > 0; t++) {
    const id = ids[spaced(t, EXCERPT_COUNT, ids.length)]!;
    const text = c.rowOf(id)?.text;
    if (text == null) continue;
    const { text: norm, spans } = v.spans(text);
    if (spans.length === 0) continue;
    const start = Math.floor(rand() * Math.max(1, spans.length - words + 1));
    const last = spans[Math.min(spans.length, start + words) - 1]!;
    texts.push(norm.slice(spans[start]!.start, last.end));
    from.push(id);
  }
  return { texts, from: Int32Array.from(from) };
}

/**
 * The excerpts' baseline vectors, codes and reconstruction errors (one pass of the model), without those that hold
 * no word of the model's vocabulary.
 */
export function excerptVectors(c: Collection, e: Excerpts): { raws: ReturnType<typeof textVectors>['raw']; codes: Float32Array; errors: Float32Array; from: Int32Array } {
  const v = textVectors(c.model, e.texts);
  const empty = new Set(v.empty);
  const keep = e.texts.map((_, i) => i).filter((i) => !empty.has(i));
  const dim = c.model.inputDim;
  const input = new Float32Array(keep.length * dim);
  keep.forEach((i, r) => input.set(v.input.subarray(i * dim, (i + 1) * dim), r * dim));
  return { raws: keep.map((i) => v.raw[i]!), ...c.model.encodeScored(input, keep.length), from: Int32Array.from(keep, (i) => e.from[i]!) };
}

/** What a query's novelty percentiles are among: the collection's items, or excerpts of its texts as long as the query. */
export type NoveltyReference = { of: 'items'; count: number } | { of: 'excerpts'; count: number; words: number };

/** Sorted values of each score over a reference set (see outliers.ts), the percentile scale of a query. */
export type SortedScores = Record<OutlierScore, Float32Array>;
