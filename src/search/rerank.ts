import { isSparse } from '../encoder/sparse.js';
import { fail } from '../errors.js';
import type { Collection, RawVector } from '../indexer/collection.js';
import { distancesTo, normaliseRows } from '../indexer/exact.js';
import { twoStage, type CodeAndRaw, type CodesAndRaws, type Retriever } from '../indexer/retrieval.js';

/** Two-stage search settings: how many rows the codes shortlist (0: codes alone) and the code distance's weight. */
export interface RerankOptions {
  shortlist: number;
  blend: number;
}

/** Largest shortlist a query may ask for. */
export const MAX_SHORTLIST = 1000;

/**
 * Defaults measured by `npm run bench:text` and `npm run bench:colour` (docs/benchmarks.md): texts are shortlisted
 * by code and re-ranked by TF-IDF; images keep their code ranking (re-ranking by pixels measured worse).
 */
export const RERANK_DEFAULTS: Record<'image' | 'text', RerankOptions> = {
  text: { shortlist: 100, blend: 0.5 },
  image: { shortlist: 0, blend: 0 },
};

/** The two-stage settings of a query: the collection kind's defaults, overridden by what was given (validated). */
export function rerankOptions(kind: 'image' | 'text', given: Partial<RerankOptions> = {}): RerankOptions {
  const o = { ...RERANK_DEFAULTS[kind], ...given };
  if (!Number.isInteger(o.shortlist) || o.shortlist < 0 || o.shortlist > MAX_SHORTLIST) throw fail('INVALID_ARGUMENT', `rerank must be an integer from 0 (codes alone) to ${MAX_SHORTLIST}, got ${given.shortlist}`);
  if (!Number.isFinite(o.blend) || o.blend < 0 || o.blend > 1) throw fail('INVALID_ARGUMENT', `blend must be a number from 0 (exact distance alone) to 1, got ${given.blend}`);
  if (kind === 'image' && o.blend > 0) throw fail('INVALID_ARGUMENT', 'blend applies to text collections (pixel and code distances have no common scale); leave it out for images');
  return o;
}

/** The method's name in tables and hit lists. */
export function twoStageName(kind: 'image' | 'text', shortlist: string, o: RerankOptions): string {
  const exact = kind === 'text' ? 'TF-IDF' : 'pixels';
  return `${shortlist} top ${o.shortlist} → ${exact}${o.blend > 0 ? ` + ${o.blend} × code` : ''} re-rank`;
}

/**
 * Two-stage search over a collection: `codes` (a retriever over the collection's rows in id order: HNSW mapped to
 * rows, an exact or Hamming scan) shortlists, the exact baseline distance re-ranks — TF-IDF cosine distance for
 * texts (blended with the code's cosine distance), squared pixel L2 for images. Call inside `c.consistent()` or
 * a request's sync, so that every matrix is at one generation.
 */
export function collectionTwoStage(c: Collection, name: string, codes: Retriever, o: RerankOptions): Retriever<CodeAndRaw<RawVector>, CodesAndRaws<RawVector>> {
  if (c.kind === 'text') {
    const sparse = c.sparseRows();
    const cd = c.manifest.codeDim;
    const coarse = distancesTo(c.rows<Float32Array>('code', { name: 'unit', row: (r) => normaliseRows(r.slice(), cd) }).data, cd, 'cosine', true);
    const exact = (q: RawVector, rows: Int32Array) => {
      if (!isSparse(q)) throw fail('INTERNAL', 'a text query without its TF-IDF vector');
      return sparse.dots(q, rows).map((d) => 1 - d);
    };
    return twoStage(name, codes, exact, coarse, o);
  }
  const l2 = distancesTo(c.rawMatrix().data, c.manifest.rawDim, 'l2');
  const exact = (q: RawVector, rows: Int32Array) => {
    if (isSparse(q)) throw fail('INTERNAL', 'an image query without its pixels');
    return l2(q, rows);
  };
  return twoStage(name, codes, exact, () => new Float32Array(0), o);
}
