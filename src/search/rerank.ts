import { toBytes, toFloats, type Pixels } from '../../data/images.js';
import { addMean, isSparse } from '../encoder/sparse.js';
import { fail } from '../errors.js';
import type { Collection, RawVector } from '../indexer/collection.js';
import { distancesTo, normaliseRows } from '../indexer/exact.js';
import { SparseRows } from '../indexer/sparse-rows.js';
import { twoStage, type CodeAndRaw, type CodesAndRaws, type Expand, type Retriever } from '../indexer/retrieval.js';

/**
 * Two-stage search settings: how many rows the codes shortlist (0: codes alone), the code distance's weight, and
 * how many of the best re-ranked rows are fed back into the query for a second re-ranking (0: none).
 */
export interface RerankOptions {
  shortlist: number;
  blend: number;
  feedback: number;
}

/** Largest shortlist a query may ask for. */
export const MAX_SHORTLIST = 1000;

/** Most rows a query may feed back. */
export const MAX_FEEDBACK = 50;

/** Weight of the fed-back rows' mean against the query (Rocchio's β with α = 1). */
const FEEDBACK_WEIGHT = 1;

/**
 * Texts: the shortlist and blend that measured best on both Brown sets (`npm run bench:text`, docs/benchmarks.md;
 * shortlists 30/100/300 × blends 0/0.3/0.5/0.7 tried), and feedback from the 3 best rows (3, 5 and 10 tried, at
 * weights 0.5 and 1; each gained on both sets). Images keep their code ranking: pixels are the weaker baseline on
 * every image set measured (digits, emoji), so re-ranking by them is opt-in (`rerank=N`).
 */
export const RERANK_DEFAULTS: Record<'image' | 'text', RerankOptions> = {
  text: { shortlist: 100, blend: 0.3, feedback: 3 },
  image: { shortlist: 0, blend: 0, feedback: 0 },
};

/** The two-stage settings of a query as given (API `rerank=`, `blend=`, `feedback=`; CLI `--rerank`, `--blend`, `--feedback`). */
export interface RerankRequest {
  rerank?: number;
  blend?: number;
  feedback?: number;
}

/**
 * The two-stage settings of a query: the collection kind's defaults, overridden by what was given (validated).
 * `bounded`: the hits are bounded by their distance (max_distance), which must then be to the query as given.
 */
export function rerankOptions(kind: 'image' | 'text', given: RerankRequest = {}, bounded = false): RerankOptions {
  const d = RERANK_DEFAULTS[kind];
  const shortlist = given.rerank ?? d.shortlist;
  // the default feedback fits in any shortlist asked for (and is none without one, or with a distance bound)
  const o = { shortlist, blend: given.blend ?? d.blend, feedback: given.feedback ?? (bounded ? 0 : Math.min(d.feedback, Math.max(0, shortlist - 1))) };
  if (bounded && o.feedback > 0) throw fail('INVALID_ARGUMENT', "feedback moves the query, so hits' distances would no longer be to it; max_distance needs them to be: leave out feedback");
  if (!Number.isInteger(o.shortlist) || o.shortlist < 0 || o.shortlist > MAX_SHORTLIST) throw fail('INVALID_ARGUMENT', `rerank must be an integer from 0 (codes alone) to ${MAX_SHORTLIST}, got ${given.rerank}`);
  if (!Number.isFinite(o.blend) || o.blend < 0 || o.blend > 1) throw fail('INVALID_ARGUMENT', `blend must be a number from 0 (exact distance alone) to 1, got ${given.blend}`);
  if (kind === 'image' && o.blend > 0) throw fail('INVALID_ARGUMENT', 'blend applies to text collections (pixel and code distances have no common scale); leave it out for images');
  if (!Number.isInteger(o.feedback) || o.feedback < 0 || o.feedback > MAX_FEEDBACK) throw fail('INVALID_ARGUMENT', `feedback must be an integer from 0 (none) to ${MAX_FEEDBACK}, got ${given.feedback}`);
  if (kind === 'image' && o.feedback > 0) throw fail('INVALID_ARGUMENT', 'feedback applies to text collections (it folds the best documents into the query); leave it out for images');
  if (given.blend !== undefined && o.shortlist === 0) throw fail('INVALID_ARGUMENT', 'blend weighs the re-ranking, and rerank=0 turns it off; give one or the other');
  if (o.feedback > 0 && o.shortlist === 0) throw fail('INVALID_ARGUMENT', 'feedback re-ranks the shortlist once more, and rerank=0 turns it off; give one or the other');
  if (o.feedback >= o.shortlist && o.shortlist > 0) throw fail('INVALID_ARGUMENT', `feedback (${o.feedback}) must be smaller than the shortlist it re-ranks (rerank=${o.shortlist})`);
  return o;
}

/** The method's name in tables and hit lists. */
export function twoStageName(kind: 'image' | 'text', shortlist: string, o: RerankOptions): string {
  const exact = kind === 'text' ? 'TF-IDF' : 'pixels';
  return `${shortlist} top ${o.shortlist} → ${exact}${o.blend > 0 ? ` + ${o.blend} × code` : ''} re-rank${o.feedback > 0 ? `, ${o.feedback}-row feedback` : ''}`;
}

/**
 * The exact re-ranking distance of a query to given rows: 1 − TF-IDF cosine over sparse unit rows (texts), squared
 * L2 over pixel rows (images, bytes against bytes).
 */
export function exactDistances(raw: SparseRows | { data: Pixels; dim: number }): (q: RawVector, rows: Int32Array) => Float32Array {
  if (raw instanceof SparseRows) {
    return (q, rows) => {
      if (!isSparse(q)) throw fail('INTERNAL', 'a text query without its TF-IDF vector');
      return raw.cosineDistances(q, rows);
    };
  }
  const l2 = distancesTo(raw.data, raw.dim, 'l2');
  const bytes = raw.data instanceof Uint8Array;
  return (q, rows) => {
    if (isSparse(q)) throw fail('INTERNAL', 'an image query without its pixels');
    return l2(bytes ? toBytes(q) : toFloats(q), rows);
  };
}

/**
 * Rocchio feedback for texts: the query's TF-IDF vector and code each plus the mean of the given rows' (TF-IDF rows
 * and unit-length code rows, in the same row order).
 */
export function textFeedback(sparse: SparseRows, unitCodes: Float32Array, dim: number): Expand<RawVector> {
  return (q, rows) => {
    if (!isSparse(q.raw)) throw fail('INTERNAL', 'a text query without its TF-IDF vector');
    const code = normaliseRows(q.code.slice(), dim);
    const w = FEEDBACK_WEIGHT / rows.length;
    for (const r of rows) for (let j = 0; j < dim; j++) code[j] += w * unitCodes[r * dim + j]!;
    return { code, raw: addMean(q.raw, Array.from(rows, (r) => sparse.row(r)), FEEDBACK_WEIGHT) };
  };
}

/**
 * Two-stage search over a collection: `codes` (a retriever over the collection's rows in id order: HNSW mapped to
 * rows, an exact or Hamming scan) shortlists, the exact baseline distance re-ranks — TF-IDF cosine distance for
 * texts (blended with the code's cosine distance, then once more after feedback), squared pixel L2 for images. Call inside `c.consistent()`, so
 * that every matrix is of one generation.
 */
export function collectionTwoStage(c: Collection, name: string, codes: Retriever, o: RerankOptions): Retriever<CodeAndRaw<RawVector>, CodesAndRaws<RawVector>> {
  const cd = c.manifest.codeDim;
  if (c.kind === 'text') {
    // The unit-length code rows are kept up to date by each write's rows, not rebuilt after it.
    const unit = c.unitCodeMatrix().data;
    const sparse = c.sparseRows();
    return twoStage(name, codes, exactDistances(sparse), distancesTo(unit, cd, 'cosine', true), o, textFeedback(sparse, unit, cd));
  }
  const px = c.rawMatrix();
  return twoStage(name, codes, exactDistances({ data: px.data, dim: c.manifest.rawDim }), () => new Float32Array(0), o);
}
