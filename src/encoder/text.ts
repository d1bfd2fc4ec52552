import type { TextSet } from '../../data/texts.js';
import { fail } from '../errors.js';
import { counted, log } from '../progress.js';
import { backendName } from './backend.js';
import type { DenseConfig } from './dense.js';
import type { ModelManifest, Regularisers } from './manifest.js';
import { binaryDefaults } from './binary.js';
import { buildParts, TrainedModel } from './model.js';
import { TRAIN_DEFAULTS, trainAutoencoder, trainingRecord, type TrainOptions } from './train.js';
import type { SparseVector } from './sparse.js';
import { BASELINE_VOCABULARY, buildVocabulary, Vectorizer, vocabularySchema, VECTORIZER_DEFAULTS, type VectorizerOptions, type Weighting } from './vectorizer.js';

/** Document autoencoder V-500-250-125-code (Hinton & Salakhutdinov 2006) over bag-of-words vectors of V words (default 5,000). */
export const TEXT_DEFAULTS = {
  hidden: [500, 250, 125],
  codeDim: 32,
  /** the encoder sees sublinear TF-IDF; the softmax decoder predicts the word proportions (see the README's text results) */
  weighting: 'log-tfidf' as Weighting,
  output: 'softmax' as const,
  activation: 'relu' as DenseConfig['activation'],
  /** word dropout: 70% of the input words are hidden in each step, the decoder predicts the whole document */
  denoise: { kind: 'dropout' as const, level: 0.7 },
  /** binary text codes: a float code cut at each unit's median (better than noise for documents, see the README) */
  binarize: 'median' as const,
};

/** Training settings for document models: small corpora need many small steps (see the README's text results). */
export const TEXT_TRAINING = { batchSize: 32, epochs: 60, patience: 4 };

export interface TextModelOptions extends Partial<Omit<TrainOptions, 'regularisers' | 'loss' | 'arch'>> {
  codeDim?: number;
  hidden?: number[];
  activation?: DenseConfig['activation'];
  /** what the encoder sees: word proportions (the paper), log-tf, tfidf or log-tfidf */
  weighting?: Weighting;
  /**
   * softmax (default): the decoder predicts the word proportions (cross-entropy, the paper's multinomial output)
   * whatever the input weighting; sigmoid: it reproduces the input itself with BCE.
   */
  output?: 'softmax' | 'sigmoid';
  vocabulary?: Partial<VectorizerOptions>;
  regularisers?: Regularisers;
}

const vectorizers = new WeakMap<TrainedModel, { input: Vectorizer; baseline: Vectorizer }>();

function vectorizersOf(model: TrainedModel): { input: Vectorizer; baseline: Vectorizer } {
  let v = vectorizers.get(model);
  if (!v) {
    const parsed = vocabularySchema.safeParse(model.extras.vocabulary);
    if (model.manifest.kind !== 'text' || !parsed.success) throw fail('MANIFEST_MISMATCH', 'this model has no vocabulary; it is not a text model');
    // Models saved before the full-vocabulary baseline compare over their own vocabulary.
    const baseline = model.extras.baseline === undefined ? parsed : vocabularySchema.safeParse(model.extras.baseline);
    if (!baseline.success) throw fail('MANIFEST_MISMATCH', "this model's baseline vocabulary is damaged; train the model again");
    v = { input: new Vectorizer(parsed.data), baseline: new Vectorizer(baseline.data) };
    vectorizers.set(model, v);
  }
  return v;
}

/** The vectorizer of a text model's input (its vocabulary of the most frequent words). */
export function vectorizerOf(model: TrainedModel): Vectorizer {
  return vectorizersOf(model).input;
}

/** The vectorizer of the exact TF-IDF baseline saved with a text model (every word of its training documents). */
export function baselineVectorizerOf(model: TrainedModel): Vectorizer {
  return vectorizersOf(model).baseline;
}

export function weightingOf(model: TrainedModel): Weighting {
  const i = model.manifest.input;
  if (i.type !== 'bow') throw fail('INVALID_ARGUMENT', 'this is an image model; give it an image source');
  return i.weighting;
}

/** Model input and sparse TF-IDF (baseline) vectors of one text; EMPTY_TEXT when it has no word of the model's vocabulary. */
export function textVector(model: TrainedModel, text: string): { input: Float32Array; raw: SparseVector } {
  const input = vectorizerOf(model).vector(text, weightingOf(model));
  // The baseline's vocabulary holds the model's, so a text the model can encode has baseline words too.
  return { input, raw: baselineVectorizerOf(model).sparse(text)! };
}

/** Model input and sparse TF-IDF (baseline) vectors of texts; `empty` lists the texts with no word of the model's vocabulary (their rows are zero). */
export function textVectors(model: TrainedModel, texts: string[]): { input: Float32Array; raw: SparseVector[]; empty: number[] } {
  const { data, empty } = vectorizerOf(model).matrix(texts, weightingOf(model));
  const b = baselineVectorizerOf(model);
  const none: SparseVector = { index: new Uint32Array(0), value: new Float32Array(0) };
  return { input: data, raw: texts.map((t) => b.sparse(t) ?? none), empty };
}

/** Builds the vocabulary from the training texts and trains a document autoencoder (labels unused). */
export async function fitTextModel(set: TextSet, o: TextModelOptions = {}): Promise<TrainedModel> {
  const opts = { ...TRAIN_DEFAULTS, ...TEXT_TRAINING, ...o };
  const weighting = o.weighting ?? TEXT_DEFAULTS.weighting;
  const vocab = buildVocabulary(set.texts, { ...VECTORIZER_DEFAULTS, ...o.vocabulary });
  const baseline = buildVocabulary(set.texts, { ...BASELINE_VOCABULARY, stem: vocab.stem });
  const vec = new Vectorizer(vocab);
  const output = o.output ?? TEXT_DEFAULTS.output;
  // The softmax decoder predicts word proportions whatever the encoder sees: both from one tokenization.
  const needTarget = output === 'softmax' && weighting !== 'proportion';
  const { data: mats, empty } = vec.matrices(set.texts, needTarget ? [weighting, 'proportion'] : [weighting]);
  const data = mats[0]!;
  const skip = new Set(empty);
  const keep = set.texts.map((_, i) => i).filter((i) => !skip.has(i));
  const d = vec.dim;
  // n × V floats each (the input and the target): copied only when empty documents must be left out
  const rows = (m: Float32Array) => {
    if (keep.length === set.texts.length) return m;
    const out = new Float32Array(keep.length * d);
    keep.forEach((i, j) => out.set(m.subarray(i * d, (i + 1) * d), j * d));
    return out;
  };
  const x = rows(data);
  const arch: DenseConfig = { arch: 'dense', inputDim: d, hidden: o.hidden ?? TEXT_DEFAULTS.hidden, codeDim: o.regularisers?.binaryBits ?? o.codeDim ?? TEXT_DEFAULTS.codeDim, activation: o.activation ?? TEXT_DEFAULTS.activation };
  const loss = output === 'softmax' ? 'softmax-ce' : 'bce';
  const target = needTarget ? { data: rows(mats[1]!), dim: d } : undefined;
  const given = o.regularisers ?? {};
  // Word dropout unless another corruption was asked for ({ denoise: { kind: 'dropout', level: 0 } } turns it off).
  const regularisers = binaryDefaults(given.denoise ? given : { ...given, denoise: TEXT_DEFAULTS.denoise }, TEXT_DEFAULTS.binarize);
  const parts = buildParts(arch, opts.seed);
  log(`training text autoencoder ${d}-${arch.hidden.join('-')}-${arch.codeDim} (${weighting} in, ${output} out, ${loss}) on ${keep.length} documents of ${set.source}, backend ${backendName()}`, opts.quiet);
  const report = await trainAutoencoder(parts, x, keep.length, d, { ...opts, loss, regularisers, arch, ...(target ? { target } : {}) });
  log(`trained ${counted(report.epochs, 'epoch')} in ${report.seconds.toFixed(1)}s (${report.samplesPerSec.toFixed(0)} samples/s); best held-out loss ${report.heldOutLoss.toFixed(4)} at epoch ${report.bestEpoch}`, opts.quiet);
  const manifest: ModelManifest = {
    format: 'latentdex-model',
    version: 1,
    kind: 'text',
    architecture: arch,
    input: { type: 'bow', vocabSize: d, weighting },
    inputDim: d,
    codeDim: arch.codeDim,
    output,
    loss,
    regularisers,
    source: set.source,
    training: trainingRecord(report, opts, backendName()),
    createdAt: new Date().toISOString(),
  };
  return new TrainedModel(manifest, parts, { vocabulary: vocab, baseline }).withBinaryThresholds(x, keep.length);
}
