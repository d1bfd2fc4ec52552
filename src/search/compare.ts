import { toFloats, type Pixels } from '../../data/images.js';
import type { TrainedModel } from '../encoder/model.js';
import { reconError } from '../encoder/fit.js';
import { baselineVectorizerOf } from '../encoder/text.js';
import { pcaProject, pcaReconstruct } from '../encoder/pca.js';
import type { SparseVector } from '../encoder/sparse.js';
import { exactScan, hammingScan, projectionScan, sparseProjectionScan, sparseScan, twoStage, type Retriever } from '../indexer/retrieval.js';
import { exactDistances, textFeedback, twoStageName, type RerankOptions } from './rerank.js';
import { distancesTo, normaliseRows } from '../indexer/exact.js';
import { SparseRows } from '../indexer/sparse-rows.js';
import type { RawVector, RawVectors } from '../indexer/collection.js';
import { excludedAtMost, exclusion, queriesPerSec, scoreRankings } from './score.js';

interface Side {
  n: number;
  /** pixels (n × dim) or sparse TF-IDF rows (texts) */
  raw: RawVectors;
  labels: (string | null)[];
  groups: (string | null)[] | null;
  keys: string[];
}

/** A database and queries as the baseline's raw vectors with labels; `inputOf` gives each model's inputs. */
export interface CompareData {
  kind: 'image' | 'text';
  items: Side;
  queries: Side;
  inputOf: (model: TrainedModel) => { items: Pixels; queries: Pixels };
}

export interface CompareRow {
  name: string;
  precision: number;
  map: number;
  /** squared error per item summed over features (images); null where it does not apply */
  reconError: number | null;
  bytesPerItem: number;
  queriesPerSec: number;
  trainSeconds: number | null;
}

/** The raw side of the data: sparse TF-IDF rows (texts) or pixels, with the re-ranking distance over them. */
function rawSide(d: CompareData, baselineDim: number): { exact: (q: RawVector, rows: Int32Array) => Float32Array; query: (i: number) => RawVector; sparse?: SparseRows } {
  if (d.kind === 'text') {
    const sparse = new SparseRows(baselineDim);
    (d.items.raw as readonly SparseVector[]).forEach((v, i) => sparse.append(i, v));
    const qs = d.queries.raw as readonly SparseVector[];
    return { sparse, exact: exactDistances(sparse), query: (i) => qs[i]! };
  }
  const items = d.items.raw as Pixels;
  const qs = d.queries.raw as Pixels;
  const dim = items.length / d.items.n;
  return { exact: exactDistances({ data: items, dim }), query: (i) => qs.subarray(i * dim, (i + 1) * dim) };
}

/**
 * One row per model on the same database and queries (exact search in each code space; Hamming for binary
 * models) and, with `rerank`, its two-stage row (the codes shortlist, the exact baseline re-ranks); then the
 * raw-space baseline and PCA/LSA of the first model's code size as anchors — each a Retriever, scored by the same
 * scorer and exclusion rule as `eval`. Texts are compared over sparse TF-IDF of the first model's full vocabulary.
 */
export function compareModels(models: { name: string; model: TrainedModel }[], d: CompareData, k = 10, rerank?: RerankOptions): CompareRow[] {
  const m = k + excludedAtMost(d.items);
  const isText = d.kind === 'text';
  const rows: CompareRow[] = [];
  const row = <Q, B>(r: Retriever<Q, B>, qs: B, one: (i: number) => Q, extra: { reconError: number | null; trainSeconds: number | null }): CompareRow => {
    const s = scoreRankings(r.searchMany(qs, d.queries.n, m), d.queries, d.items, k);
    return { name: r.name, precision: s.precision, map: s.map, bytesPerItem: r.bytesPerItem, queriesPerSec: queriesPerSec((i) => r.search(one(i), m), d.queries.n), ...extra };
  };
  const dense = (qs: Float32Array, dim: number) => (i: number) => qs.subarray(i * dim, (i + 1) * dim);
  const raw = rawSide(d, isText && models[0] ? baselineVectorizerOf(models[0].model).dim : 0);
  const raws = Array.from({ length: d.queries.n }, (_, i) => raw.query(i));
  for (const { name, model } of models) {
    const input = d.inputOf(model);
    const codes = model.encode(input.items, d.items.n);
    const q = model.encode(input.queries, d.queries.n);
    const cd = model.codeDim;
    const bits = model.manifest.regularisers.binaryBits;
    const r = bits ? hammingScan(name, codes, cd, bits) : exactScan(name, codes, cd, isText ? 'cosine' : 'l2');
    const rec = isText ? null : reconError(input.queries, model.reconstruct(input.queries, d.queries.n), d.queries.n);
    const trainSeconds = model.manifest.training.seconds;
    rows.push(row(r, q, dense(q, cd), { reconError: rec, trainSeconds }));
    if (rerank && rerank.shortlist > 0) {
      const unit = normaliseRows(codes.slice(), cd);
      const expand = raw.sparse ? textFeedback(raw.sparse, unit, cd) : undefined;
      // with feedback, the row without it too
      for (const o of rerank.feedback > 0 ? [{ ...rerank, feedback: 0 }, rerank] : [rerank]) {
        const two = twoStage(twoStageName(d.kind, name, o), r, raw.exact, distancesTo(unit, cd, 'cosine', true), o, expand);
        rows.push(row(two, { codes: q, raws, notFedBack: (i) => exclusion(d.queries, i, d.items) }, (i) => ({ code: q.subarray(i * cd, (i + 1) * cd), raw: raws[i]! }), { reconError: null, trainSeconds }));
      }
    }
  }
  const codeDim = models[0]?.model.codeDim ?? 32;
  const t0 = performance.now();
  if (raw.sparse) {
    const qs = d.queries.raw as readonly SparseVector[];
    const at = (i: number) => qs[i]!;
    rows.push(row(sparseScan(`TF-IDF, full vocabulary of ${raw.sparse.dim} words (exact cosine)`, raw.sparse), qs, at, { reconError: null, trainSeconds: null }));
    const lsa = sparseProjectionScan(raw.sparse, codeDim, (name) => `${name}, full vocabulary (exact)`);
    rows.push(row(lsa, qs, at, { reconError: null, trainSeconds: (performance.now() - t0) / 1000 }));
    return rows;
  }
  const rawItems = d.items.raw as Pixels;
  const rd = rawItems.length / d.items.n;
  const items = toFloats(rawItems);
  const qs = toFloats(d.queries.raw as Pixels);
  rows.push(row(exactScan(`pixels ${rd}-d (exact)`, items, rd, 'l2'), qs, dense(qs, rd), { reconError: 0, trainSeconds: null }));
  const p = projectionScan(items, d.items.n, rd, codeDim, false, (name) => `${name} (exact)`);
  const fitSeconds = (performance.now() - t0) / 1000;
  const rec = reconError(qs, pcaReconstruct(p.pca, pcaProject(p.pca, qs, d.queries.n), d.queries.n), d.queries.n);
  rows.push(row(p, qs, dense(qs, rd), { reconError: rec, trainSeconds: fitSeconds }));
  return rows;
}

export function formatCompareTable(rows: CompareRow[], k: number): string {
  const f = (x: number | null, dg = 3) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(dg));
  return [
    `| model | P@${k} | mAP@${k} | recon. error | bytes/item | queries/s | training s |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${f(r.precision)} | ${f(r.map)} | ${f(r.reconError, 2)} | ${r.bytesPerItem.toFixed(0)} | ${r.queriesPerSec.toFixed(0)} | ${f(r.trainSeconds, 0)} |`),
  ].join('\n');
}
