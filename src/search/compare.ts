import { toFloats, type Pixels } from '../../data/images.js';
import { PackedCodes, packBits, toWords } from '../encoder/binary.js';
import type { TrainedModel } from '../encoder/model.js';
import { reconError } from '../encoder/fit.js';
import { fitPca, pcaProject, pcaReconstruct } from '../encoder/pca.js';
import { exactKnn, normaliseRows, type Metric } from './exact.js';
import { batchKnn } from './knn-batch.js';

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

function scoreLists(ranked: ArrayLike<number>[], d: CompareData, k: number): { p: number; ap: number } {
  let ps = 0;
  let aps = 0;
  let m = 0;
  ranked.forEach((r, qi) => {
    const ql = d.queries.labels[qi];
    if (ql === null || ql === undefined) return;
    const qk = d.queries.keys[qi];
    const qg = d.queries.groups?.[qi] ?? null;
    let rel = 0;
    let ap = 0;
    let taken = 0;
    for (let i = 0; i < r.length && taken < k; i++) {
      const j = r[i]!;
      if (d.items.keys[j] === qk || (qg !== null && d.items.groups?.[j] === qg)) continue;
      taken++;
      if (d.items.labels[j] === ql) {
        rel++;
        ap += rel / taken;
      }
    }
    ps += rel / k;
    aps += rel ? ap / rel : 0;
    m++;
  });
  return { p: ps / Math.max(m, 1), ap: aps / Math.max(m, 1) };
}

function timeQueries(n: number, fn: (i: number) => void): number {
  const m = Math.min(n, 200);
  const t0 = performance.now();
  for (let i = 0; i < m; i++) fn(i);
  return m / ((performance.now() - t0) / 1000);
}

/**
 * One row per model on the same database and queries (exact search in each code space; Hamming for binary
 * models), plus the raw-space baseline and PCA/LSA of the first model's code size as anchors.
 */
export function compareModels(models: { name: string; model: TrainedModel }[], d: CompareData, k = 10): CompareRow[] {
  const extra = d.items.groups ? 64 : 1;
  const rows: CompareRow[] = [];
  const isText = d.kind === 'text';
  for (const { name, model } of models) {
    const input = d.inputOf(model);
    const codes = model.encode(input.items, d.items.n);
    const q = model.encode(input.queries, d.queries.n);
    const cd = model.codeDim;
    const bits = model.manifest.regularisers.binaryBits;
    let ranked: ArrayLike<number>[];
    let qps: number;
    if (bits) {
      const packed = PackedCodes.fromBytes(Array.from({ length: d.items.n }, (_, i) => packBits(codes.subarray(i * cd, (i + 1) * cd))), bits);
      const qw = Array.from({ length: d.queries.n }, (_, i) => toWords(packBits(q.subarray(i * cd, (i + 1) * cd)), packed.words));
      ranked = qw.map((w) => packed.search(w, k + extra).map((h) => h.index));
      qps = timeQueries(d.queries.n, (i) => packed.search(qw[i]!, k + extra));
    } else {
      const metric: Metric = isText ? 'cosine' : 'l2';
      const items = isText ? normaliseRows(codes.slice(), cd) : codes;
      const qs = isText ? normaliseRows(q.slice(), cd) : q;
      ranked = batchKnn(items, cd, qs, k + extra, metric);
      qps = timeQueries(d.queries.n, (i) => exactKnn(items, cd, qs.subarray(i * cd, (i + 1) * cd), k + extra, metric));
    }
    const s = scoreLists(ranked, d, k);
    const rec = isText ? null : reconError(input.queries, model.reconstruct(input.queries, d.queries.n), d.queries.n);
    rows.push({ name, precision: s.p, map: s.ap, reconError: rec, bytesPerItem: bits ? bits / 8 : cd * 4, queriesPerSec: qps, trainSeconds: model.manifest.training.seconds });
  }
  const rd = d.items.raw.length / d.items.n;
  const metric: Metric = isText ? 'cosine' : 'l2';
  const items = isText ? normaliseRows(toFloats(d.items.raw).slice(), rd) : toFloats(d.items.raw);
  const qs = isText ? normaliseRows(toFloats(d.queries.raw).slice(), rd) : toFloats(d.queries.raw);
  const rawRanked = batchKnn(items, rd, qs, k + extra, metric);
  const rawS = scoreLists(rawRanked, d, k);
  rows.push({
    name: isText ? `TF-IDF ${rd}-d (exact cosine)` : `pixels ${rd}-d (exact)`,
    precision: rawS.p,
    map: rawS.ap,
    reconError: isText ? null : 0,
    bytesPerItem: rd * 4,
    queriesPerSec: timeQueries(d.queries.n, (i) => exactKnn(items, rd, qs.subarray(i * rd, (i + 1) * rd), k + extra, metric)),
    trainSeconds: null,
  });
  const dim = models[0]?.model.codeDim ?? 32;
  const t0 = performance.now();
  const pca = fitPca(items, d.items.n, rd, dim, { center: !isText });
  const fitSeconds = (performance.now() - t0) / 1000;
  const pi = pcaProject(pca, items, d.items.n);
  const pq = pcaProject(pca, qs, d.queries.n);
  if (isText) {
    normaliseRows(pi, pca.k);
    normaliseRows(pq, pca.k);
  }
  const pS = scoreLists(batchKnn(pi, pca.k, pq, k + extra, metric), d, k);
  rows.push({
    name: `${isText ? 'LSA' : 'PCA'} ${pca.k}-d (exact)`,
    precision: pS.p,
    map: pS.ap,
    reconError: isText ? null : reconError(qs, pcaReconstruct(pca, pq, d.queries.n), d.queries.n),
    bytesPerItem: pca.k * 4,
    queriesPerSec: timeQueries(d.queries.n, (i) => exactKnn(pi, pca.k, pq.subarray(i * pca.k, (i + 1) * pca.k), k + extra, metric)),
    trainSeconds: fitSeconds,
  });
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
