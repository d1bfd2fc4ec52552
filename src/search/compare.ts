import { toFloats, type Pixels } from '../../data/images.js';
import type { TrainedModel } from '../encoder/model.js';
import { reconError } from '../encoder/fit.js';
import { pcaProject, pcaReconstruct } from '../encoder/pca.js';
import { exactScan, hammingScan, projectionScan, type Retriever } from '../indexer/retrieval.js';
import { excludedAtMost, queriesPerSec, scoreRankings } from './score.js';

interface Side {
  n: number;
  raw: Pixels;
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

/**
 * One row per model on the same database and queries (exact search in each code space; Hamming for binary
 * models), plus the raw-space baseline and PCA/LSA of the first model's code size as anchors — each a Retriever,
 * scored by the same scorer and exclusion rule as `eval`.
 */
export function compareModels(models: { name: string; model: TrainedModel }[], d: CompareData, k = 10): CompareRow[] {
  const m = k + excludedAtMost(d.items);
  const isText = d.kind === 'text';
  const rows: CompareRow[] = [];
  const row = (r: Retriever, qs: Float32Array, extra: { reconError: number | null; trainSeconds: number | null }): CompareRow => {
    const s = scoreRankings(r.searchMany(qs, d.queries.n, m), d.queries, d.items, k);
    return { name: r.name, precision: s.precision, map: s.map, bytesPerItem: r.bytesPerItem, queriesPerSec: queriesPerSec(r, qs, d.queries.n, m), ...extra };
  };
  for (const { name, model } of models) {
    const input = d.inputOf(model);
    const codes = model.encode(input.items, d.items.n);
    const q = model.encode(input.queries, d.queries.n);
    const bits = model.manifest.regularisers.binaryBits;
    const r = bits ? hammingScan(name, codes, model.codeDim, bits) : exactScan(name, codes, model.codeDim, isText ? 'cosine' : 'l2');
    const rec = isText ? null : reconError(input.queries, model.reconstruct(input.queries, d.queries.n), d.queries.n);
    rows.push(row(r, q, { reconError: rec, trainSeconds: model.manifest.training.seconds }));
  }
  const rd = d.items.raw.length / d.items.n;
  const items = toFloats(d.items.raw);
  const qs = toFloats(d.queries.raw);
  rows.push(row(exactScan(isText ? `TF-IDF ${rd}-d (exact cosine)` : `pixels ${rd}-d (exact)`, items, rd, isText ? 'cosine' : 'l2'), qs, { reconError: isText ? null : 0, trainSeconds: null }));
  const t0 = performance.now();
  const p = projectionScan(items, d.items.n, rd, models[0]?.model.codeDim ?? 32, isText, (name) => `${name} (exact)`);
  const fitSeconds = (performance.now() - t0) / 1000;
  const rec = isText ? null : reconError(qs, pcaReconstruct(p.pca, pcaProject(p.pca, qs, d.queries.n), d.queries.n), d.queries.n);
  rows.push(row(p, qs, { reconError: rec, trainSeconds: fitSeconds }));
  return rows;
}

export function formatCompareTable(rows: CompareRow[], k: number): string {
  const f = (x: number | null, dg = 3) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(dg));
  return [
    `| model | P@${k} | mAP@${k} | recon. error | bytes/item | queries/s | training s |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${f(r.precision)} | ${f(r.map)} | ${f(r.reconError, 2)} | ${r.bytesPerItem} | ${r.queriesPerSec.toFixed(0)} | ${f(r.trainSeconds, 0)} |`),
  ].join('\n');
}
