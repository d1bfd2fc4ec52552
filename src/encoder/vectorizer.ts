import { stemmer } from 'stemmer';
import { eng } from 'stopword';
import { z } from 'zod';
import { fail } from '../errors.js';
import { unitFromEntries, type SparseVector } from './sparse.js';

const STOP = new Set<string>([...eng, "n't", 's', 't', 'll', 've', 're', 'd', 'm']);

export const WEIGHTINGS = ['proportion', 'log-tf', 'tfidf', 'log-tfidf'] as const;
export type Weighting = (typeof WEIGHTINGS)[number];

/** How texts are cut into words: `unicode` (letters of every script), or `ascii` (a-z only, vocabularies saved before). */
export const TOKENIZERS = ['ascii', 'unicode'] as const;
export type Tokenizer = (typeof TOKENIZERS)[number];

export const vocabularySchema = z.object({
  words: z.array(z.string()),
  /** inverse document frequency per word, ln((1 + N) / (1 + df)) + 1 */
  idf: z.array(z.number()),
  stem: z.boolean(),
  docs: z.number().int(),
  /** absent in vocabularies saved before the unicode tokenizer: they keep the ascii one */
  tokens: z.enum(TOKENIZERS).optional(),
});
export type Vocabulary = z.infer<typeof vocabularySchema>;

export interface VectorizerOptions {
  /** vocabulary size: the N words with the highest document frequency */
  size: number;
  stem: boolean;
  /** words in fewer documents are never kept */
  minDf: number;
}

/**
 * 5,000 words: on Brown's short pieces (20–60 words) the codes gained +0.009 P@10 over 2,000 words (two-stage +0.011),
 * words that carry a short text's topic are rarer; on 200-word chunks the two measured the same (bench:text).
 */
export const VECTORIZER_DEFAULTS: VectorizerOptions = { size: 5000, stem: false, minDf: 2 };

/**
 * The exact baseline's vocabulary: every word of the training documents (as scikit-learn's TfidfVectorizer keeps
 * by default; its vectors are sparse, so the size costs nothing per item), up to 200,000 words by document
 * frequency, so that a huge corpus's typos (words of one document) do not grow the model and LSA without bound.
 */
export const BASELINE_VOCABULARY: Partial<VectorizerOptions> = { size: 200_000, minDf: 1 };

/** Scripts written without spaces between words: cut into overlapping pairs of characters, as search engines do. */
const UNSPACED_SCRIPTS = ['Han', 'Hiragana', 'Katakana', 'Thai', 'Lao', 'Khmer', 'Myanmar'].map((x) => `\\p{Script_Extensions=${x}}`).join('');
const UNSPACED = new RegExp(`[${UNSPACED_SCRIPTS}]`, 'u');
const UNSPACED_RUNS = new RegExp(`([${UNSPACED_SCRIPTS}]+)`, 'u');
const WORDS = {
  ascii: /[a-z]+(?:'[a-z]+)*/g,
  // letter runs of any script with their combining marks (a run of marks alone is no word); inner apostrophes
  // (' or ’) join, as in "don't"
  unicode: /\p{L}[\p{L}\p{M}]*(?:['’]\p{L}[\p{L}\p{M}]*)*/gu,
};

/** A token and where it stands in the text it was cut from (normalised and lower-cased, see tokenSpans). */
export interface TokenSpan {
  token: string;
  start: number;
  end: number;
}

/** Receives each word of a text with its span (see eachToken). */
type Emit = (token: string, start: number, end: number) => void;

/** Overlapping character pairs of a run of an unspaced script starting at `at` (the run itself when it is one character). */
function bigrams(run: string, at: number, emit: Emit): void {
  const cs = [...run];
  if (cs.length < 2) {
    emit(run, at, at + run.length);
    return;
  }
  let off = at;
  for (let i = 0; i + 1 < cs.length; i++) {
    emit(cs[i]! + cs[i + 1]!, off, off + cs[i]!.length + cs[i + 1]!.length);
    off += cs[i]!.length;
  }
}

/**
 * Lower-cases and cuts a text into words: letter runs (of a-z only with the ascii tokenizer; of every script, NFKC
 * normalised, with unicode), inner apostrophes dropped; stop words and one-letter words removed; runs of scripts
 * written without spaces (Chinese, Japanese, Thai…) become character pairs; optionally Porter-stemmed.
 */
export function tokenize(text: string, stem = false, tokens: Tokenizer = 'unicode'): string[] {
  const out: string[] = [];
  eachToken(text, stem, tokens, (t) => out.push(t));
  return out;
}

/** The words of `tokenize`, each with its span in `text`: the input normalised (unicode) and lower-cased. */
export function tokenSpans(input: string, stem = false, tokens: Tokenizer = 'unicode'): { text: string; spans: TokenSpan[] } {
  const spans: TokenSpan[] = [];
  const text = eachToken(input, stem, tokens, (token, start, end) => spans.push({ token, start, end }));
  return { text, spans };
}

/** The one tokenizer: emits each word of `tokenize` with its span; returns the text the spans index (normalised, lower-cased). */
function eachToken(input: string, stem: boolean, tokens: Tokenizer, emit: Emit): string {
  const text = (tokens === 'unicode' ? input.normalize('NFKC') : input).toLowerCase();
  for (const m of text.matchAll(WORDS[tokens])) {
    const word = m[0].replace(/’/g, "'");
    if (tokens === 'unicode' && UNSPACED.test(word)) {
      // a run may mix scripts ("東京tower"): the unspaced letters pair up, the rest stay words
      let at = 0;
      for (const part of word.split(UNSPACED_RUNS)) {
        if (!part) continue;
        const start = m.index + word.indexOf(part, at);
        at = start - m.index + part.length;
        if (UNSPACED.test(part)) bigrams(part, start, emit);
        else emitWord(part, stem, start, emit);
      }
      continue;
    }
    emitWord(word, stem, m.index, emit);
  }
  return text;
}

function emitWord(word: string, stem: boolean, start: number, emit: Emit): void {
  // the Arabic tatweel (kashida) only stretches a word on the line: "كتـــاب" is "كتاب", and a run of it no word
  const w = word.replace(/['\u0640]/g, '');
  if ([...w].length < 2 || STOP.has(word) || STOP.has(w)) return;
  emit(stem ? stemmer(w) : w, start, start + word.length);
}

/** Builds the vocabulary from training documents only: top `size` words by document frequency (ties alphabetical). */
export function buildVocabulary(texts: string[], o: Partial<VectorizerOptions> = {}): Vocabulary {
  const opts = { ...VECTORIZER_DEFAULTS, ...o };
  const df = new Map<string, number>();
  for (const t of texts) for (const w of new Set(tokenize(t, opts.stem, 'unicode'))) df.set(w, (df.get(w) ?? 0) + 1);
  const words = [...df.entries()]
    .filter(([, n]) => n >= opts.minDf)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, opts.size)
    .map(([w]) => w);
  if (words.length === 0) throw fail('BAD_SOURCE', `no word occurs in ${opts.minDf}+ documents; a text source needs more (or longer) documents`);
  const n = texts.length;
  return { words, idf: words.map((w) => Math.log((1 + n) / (1 + df.get(w)!)) + 1), stem: opts.stem, docs: n, tokens: 'unicode' };
}

/** Turns texts into bag-of-words vectors over a fixed vocabulary. */
export class Vectorizer {
  private readonly index: Map<string, number>;
  constructor(readonly vocab: Vocabulary) {
    this.index = new Map(vocab.words.map((w, i) => [w, i]));
  }

  get dim(): number {
    return this.vocab.words.length;
  }

  /** The words of a text as this vectorizer cuts them (all of them, in the vocabulary or not), with their spans. */
  spans(text: string): ReturnType<typeof tokenSpans> {
    return tokenSpans(text, this.vocab.stem, this.vocab.tokens ?? 'ascii');
  }

  /** Word counts of one text over the vocabulary. */
  counts(text: string): Float32Array {
    const v = new Float32Array(this.dim);
    for (const w of tokenize(text, this.vocab.stem, this.vocab.tokens ?? 'ascii')) {
      const i = this.index.get(w);
      if (i !== undefined) v[i]! += 1;
    }
    return v;
  }

  /** Weighted vector of one text; throws EMPTY_TEXT when no vocabulary word occurs in it. */
  vector(text: string, weighting: Weighting): Float32Array {
    return this.vectors(text, [weighting])[0]!;
  }

  /** The text under several weightings from one tokenization (e.g. a model's input and the TF-IDF baseline). */
  vectors(text: string, weightings: Weighting[]): Float32Array[] {
    const c = this.counts(text);
    let total = 0;
    for (const x of c) total += x;
    if (total === 0) throw fail('EMPTY_TEXT', 'the text has no words from the vocabulary (empty, only stop words, or unknown words); give more text');
    return weightings.map((w) => weigh(c, total, w, this.vocab.idf));
  }

  /**
   * Sparse TF-IDF of one text (raw counts × idf, L2-normalised, as scikit-learn's default); null when no word of
   * the vocabulary occurs in it.
   */
  sparse(text: string): SparseVector | null {
    const c = new Map<number, number>();
    for (const w of tokenize(text, this.vocab.stem, this.vocab.tokens ?? 'ascii')) {
      const i = this.index.get(w);
      if (i !== undefined) c.set(i, (c.get(i) ?? 0) + 1);
    }
    if (c.size === 0) return null;
    for (const [i, n] of c) c.set(i, n * this.vocab.idf[i]!);
    return unitFromEntries(c);
  }

  /** Indices of the texts that hold no word of the vocabulary (their vectors would be zero). */
  emptyOf(texts: string[]): number[] {
    const out: number[] = [];
    texts.forEach((t, i) => {
      if (!tokenize(t, this.vocab.stem, this.vocab.tokens ?? 'ascii').some((w) => this.index.has(w))) out.push(i);
    });
    return out;
  }

  /** Matrix (n × dim) of many texts; texts without vocabulary words give zero rows (they are reported, not fatal). */
  matrix(texts: string[], weighting: Weighting): { data: Float32Array; empty: number[] } {
    const { data, empty } = this.matrices(texts, [weighting]);
    return { data: data[0]!, empty };
  }

  /** One matrix (n × dim) per weighting, each text tokenized once. */
  matrices(texts: string[], weightings: Weighting[]): { data: Float32Array[]; empty: number[] } {
    const data = weightings.map(() => new Float32Array(texts.length * this.dim));
    const empty: number[] = [];
    texts.forEach((t, i) => {
      const c = this.counts(t);
      let total = 0;
      for (const x of c) total += x;
      if (total === 0) empty.push(i);
      else weightings.forEach((w, k) => data[k]!.set(weigh(c, total, w, this.vocab.idf), i * this.dim));
    });
    return { data, empty };
  }
}

/**
 * proportion: counts / total (the input of Hinton & Salakhutdinov's document autoencoder, for a softmax output);
 * log-tf: log(1 + count) scaled to [0, 1] per document (for a sigmoid output); tfidf: count × idf, L2-normalised;
 * log-tfidf: (1 + ln count) × idf, L2-normalised (sublinear TF-IDF).
 */
function weigh(c: Float32Array, total: number, w: Weighting, idf: number[]): Float32Array {
  const out = new Float32Array(c.length);
  if (w === 'proportion') {
    for (let i = 0; i < c.length; i++) out[i] = c[i]! / total;
  } else if (w === 'log-tf') {
    let max = 0;
    for (let i = 0; i < c.length; i++) max = Math.max(max, (out[i] = Math.log1p(c[i]!)));
    for (let i = 0; i < c.length; i++) out[i]! /= max;
  } else {
    let s = 0;
    for (let i = 0; i < c.length; i++) {
      const tf = w === 'log-tfidf' && c[i]! > 0 ? 1 + Math.log(c[i]!) : c[i]!;
      out[i] = tf * idf[i]!;
      s += out[i]! * out[i]!;
    }
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < c.length; i++) out[i]! *= inv;
  }
  return out;
}
