import { toBytes, toFloats, type Pixels } from '../../data/images.js';
import { isSparse } from '../encoder/sparse.js';
import { fail } from '../errors.js';
import type { Collection, RawVector } from '../indexer/collection.js';
import { distancesTo, normaliseRows } from '../indexer/exact.js';
import { SparseRows } from '../indexer/sparse-rows.js';
import { twoStage, type CodeAndRaw, type CodesAndRaws, type Retriever } from '../indexer/retrieval.js';

/** Two-stage search settings: how many rows the codes shortlist (0: codes alone) and the code distance's weight. */
export interface RerankOptions {
  shortlist: number;
  blend: number;
}

/** Largest shortlist a query may ask for. */
export const MAX_SHORTLIST = 1000;

/**
 * Texts: the shortlist and blend that measured best on both Brown sets (`npm run bench:text`, docs/benchmarks.md;
 * shortlists 30/100/300 × blends 0/0.3/0.5/0.7 tried). Images keep their code ranking: pixels are the weaker
 * baseline on every image set measured (digits, emoji), so re-ranking by them is opt-in (`rerank=N`).
 */
export const RERANK_DEFAULTS: Record<'image' | 'text', RerankOptions> = {
  text: { shortlist: 100, blend: 0.3 },
  image: { shortlist: 0, blend: 0 },
};

/** The two-stage settings of a query as given (API `rerank=`, `blend=`; CLI `--rerank`, `--blend`). */
export interface RerankRequest {
  rerank?: number;
  blend?: number;
}

/** The two-stage settings of a query: the collection kind's defaults, overridden by what was given (validated). */
export function rerankOptions(kind: 'image' | 'text', given: RerankRequest = {}): RerankOptions {
  const o = { shortlist: given.rerank ?? RERANK_DEFAULTS[kind].shortlist, blend: given.blend ?? RERANK_DEFAULTS[kind].blend };
  if (!Number.isInteger(o.shortlist) || o.shortlist < 0 || o.shortlist > MAX_SHORTLIST) throw fail('INVALID_ARGUMENT', `rerank must be an integer from 0 (codes alone) to ${MAX_SHORTLIST}, got ${given.rerank}`);
  if (!Number.isFinite(o.blend) || o.blend < 0 || o.blend > 1) throw fail('INVALID_ARGUMENT', `blend must be a number from 0 (exact distance alone) to 1, got ${given.blend}`);
  if (kind === 'image' && o.blend > 0) throw fail('INVALID_ARGUMENT', 'blend applies to text collections (pixel and code distances have no common scale); leave it out for images');
  if (given.blend !== undefined && o.shortlist === 0) throw fail('INVALID_ARGUMENT', 'blend weighs the re-ranking, and rerank=0 turns it off; give one or the other');
  return o;
}

/** The method's name in tables and hit lists. */
export function twoStageName(kind: 'image' | 'text', shortlist: string, o: RerankOptions): string {
  const exact = kind === 'text' ? 'TF-IDF' : 'pixels';
  return `${shortlist} top ${o.shortlist} → ${exact}${o.blend > 0 ? ` + ${o.blend} × code` : ''} re-rank`;
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

/** 1 − cosine of a query code to given rows of a code matrix (normalised once, here). */
export function codeDistances(codes: Float32Array, dim: number): (q: Float32Array, rows: Int32Array) => Float32Array {
  return distancesTo(normaliseRows(codes.slice(), dim), dim, 'cosine', true);
}

/**
 * Two-stage search over a collection: `codes` (a retriever over the collection's rows in id order: HNSW mapped to
 * rows, an exact or Hamming scan) shortlists, the exact baseline distance re-ranks — TF-IDF cosine distance for
 * texts (blended with the code's cosine distance), squared pixel L2 for images. Call inside `c.consistent()`, so
 * that every matrix is of one generation.
 */
export function collectionTwoStage(c: Collection, name: string, codes: Retriever, o: RerankOptions): Retriever<CodeAndRaw<RawVector>, CodesAndRaws<RawVector>> {
  const cd = c.manifest.codeDim;
  if (c.kind === 'text') {
    // The unit-length code rows are kept up to date by each write's rows, not rebuilt after it.
    const coarse = distancesTo(c.unitCodeMatrix().data, cd, 'cosine', true);
    return twoStage(name, codes, exactDistances(c.sparseRows()), coarse, o);
  }
  const px = c.rawMatrix();
  return twoStage(name, codes, exactDistances({ data: px.data, dim: c.manifest.rawDim }), () => new Float32Array(0), o);
}
