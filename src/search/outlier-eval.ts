import { fitPca, pcaProject, pcaReconstruct } from '../encoder/pca.js';
import { fail } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import { distancesTo } from '../indexer/exact.js';
import { batchKnn } from '../indexer/knn-batch.js';
import { NEIGHBOR_RANK } from './neighbors.js';
import { itemScores, OUTLIER_SCORES } from './outliers.js';

/** Area under the ROC curve of `scores` (higher: more anomalous) against `anomaly` flags; ties count half. */
export function auroc(scores: ArrayLike<number>, anomaly: ArrayLike<boolean>): number {
  // items without a value of the score (NaN) are left out
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .filter((i) => !Number.isNaN(scores[i]!))
    .sort((a, b) => scores[a]! - scores[b]!);
  const n = order.length;
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const mid = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (anomaly[order[t]!]) {
        pos++;
        rankSum += mid;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Share of anomalies among the `top` highest scores. */
export function precisionAtTop(scores: ArrayLike<number>, anomaly: ArrayLike<boolean>, top: number): number {
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .filter((i) => !Number.isNaN(scores[i]!))
    .sort((a, b) => scores[b]! - scores[a]!);
  const m = Math.min(top, order.length);
  let hit = 0;
  for (let i = 0; i < m; i++) if (anomaly[order[i]!]) hit++;
  return m === 0 ? Number.NaN : hit / m;
}

/** PCA reconstruction error (mean squared error per value) of `queries` under a PCA of `items` with `k` components. */
export function pcaErrors(items: Float32Array, queries: Float32Array, dim: number, k: number): Float32Array {
  const pca = fitPca(items, items.length / dim, dim, k);
  const nq = queries.length / dim;
  const out = new Float32Array(nq);
  const chunk = 4096;
  for (let s = 0; s < nq; s += chunk) {
    const e = Math.min(nq, s + chunk);
    const part = queries.subarray(s * dim, e * dim);
    const rec = pcaReconstruct(pca, pcaProject(pca, part, e - s), e - s);
    for (let i = 0; i < e - s; i++) {
      let t = 0;
      for (let j = 0; j < dim; j++) t += (rec[i * dim + j]! - part[i * dim + j]!) ** 2;
      out[s + i] = t / dim;
    }
  }
  return out;
}

/**
 * Exact L2 distance of each query to its `rank`-th nearest item (pixel space). With `self`, query i is item i and
 * is not its own neighbour.
 */
export function knnDistances(items: Float32Array, queries: Float32Array, dim: number, rank: number, self = false): Float32Array {
  const nq = queries.length / dim;
  const rows = batchKnn(items, dim, queries, rank + (self ? 1 : 0), 'l2');
  const l2 = distancesTo(items, dim, 'l2');
  return Float32Array.from({ length: nq }, (_, i) => {
    const r = self ? rows[i]!.filter((x) => x !== i) : rows[i]!;
    const d = Array.from(l2(queries.subarray(i * dim, (i + 1) * dim), Int32Array.from(r))).sort((a, b) => a - b);
    return Math.sqrt(d[Math.min(rank, d.length) - 1] ?? Number.NaN);
  });
}

export interface OutlierEvalRow {
  method: string;
  auroc: number;
  /** share of anomalies among the top-N items of the score (N = the number of anomalies) */
  precision: number;
}

export interface OutlierEvalReport {
  collection: string;
  items: number;
  anomalies: number;
  anomalyLabels: string[];
  rows: OutlierEvalRow[];
}

/**
 * Scores a collection's own items against a labelled anomaly set (items whose label is one of `anomalyLabels`):
 * the latentdex scores (the three and their combination), PCA reconstruction error at the code size and the pixel k-NN distance, all on the
 * same items. Labels are read here, to score, and nowhere else.
 */
export function evaluateOutliers(c: Collection, anomalyLabels: string[]): OutlierEvalReport {
  if (c.kind !== 'image') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; outlier evaluation with pixel baselines takes an image collection`);
  return c.consistent(() => {
    const s = itemScores(c);
    const labels = new Map(c.itemRows().map((r) => [r.id, r.label]));
    const want = new Set(anomalyLabels);
    const anomaly = Array.from(s.ids, (id) => want.has(labels.get(id) ?? ''));
    const count = anomaly.filter(Boolean).length;
    if (count === 0 || count === anomaly.length) {
      throw fail('INVALID_ARGUMENT', `labels ${anomalyLabels.join(', ')} mark ${count} of ${anomaly.length} items; name labels that mark some items but not all (GET /labels lists them)`);
    }
    const { data, ids } = c.rawMatrix();
    const dim = c.manifest.rawDim;
    if (ids.length !== s.ids.length) throw fail('INTERNAL', 'raw vectors and scores disagree on the items');
    const pixels = data instanceof Float32Array ? data : Float32Array.from(data, (v) => v / 255);
    const row = (method: string, v: ArrayLike<number>): OutlierEvalRow => ({ method, auroc: auroc(v, anomaly), precision: precisionAtTop(v, anomaly, count) });
    return {
      collection: c.name,
      items: anomaly.length,
      anomalies: count,
      anomalyLabels,
      rows: [
        ...OUTLIER_SCORES.map((m) => row(`latentdex ${m}`, s.values[m])),
        row(`PCA-${c.manifest.codeDim} reconstruction error (anchor)`, pcaErrors(pixels, pixels, dim, c.manifest.codeDim)),
        row(`pixel ${NEIGHBOR_RANK}-NN distance (anchor)`, knnDistances(pixels, pixels, dim, NEIGHBOR_RANK, true)),
      ],
    };
  });
}

/** The report as a markdown table. */
export function formatOutlierEval(r: OutlierEvalReport): string {
  return [
    `${r.collection}: ${r.anomalies} of ${r.items} items labelled ${r.anomalyLabels.join(', ')} (anomalies)`,
    '',
    '| method | AUROC | precision of the top N |',
    '|---|---:|---:|',
    ...r.rows.map((x) => `| ${x.method} | ${x.auroc.toFixed(3)} | ${x.precision.toFixed(3)} |`),
    '',
  ].join('\n');
}
