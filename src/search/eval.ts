import { toFloats, type Pixels } from '../../data/images.js';
import { fitPca, pcaProject } from '../encoder/pca.js';
import { progress } from '../progress.js';
import type { Collection } from '../indexer/collection.js';
import { PackedCodes, packBits, toWords } from '../encoder/binary.js';
import { exactKnn, normaliseRows, type Metric } from './exact.js';
import { batchKnn } from './knn-batch.js';

/** Queries to evaluate: the model's input and the baseline's raw vector per query, with key, label, group. */
export interface QuerySet {
  n: number;
  keys: string[];
  labels: (string | null)[];
  groups: (string | null)[] | null;
  input: Pixels;
  raw: Pixels;
}

export interface EvalRow {
  method: string;
  precision: number;
  map: number;
  /** recall@k against exact search in the same code space (HNSW rows only) */
  recall: number | null;
  queriesPerSec: number;
  bytesPerItem: number;
}

export interface EvalReport {
  collection: string;
  kind: string;
  k: number;
  queries: number;
  labelledQueries: number;
  items: number;
  codeDim: number;
  ef: number;
  rows: EvalRow[];
}

export interface EvalOptions {
  k: number;
  ef?: number;
  quiet?: boolean;
  /** items whose group equals the query's are not counted (a text chunk's sibling chunks) */
  excludeSameGroup?: boolean;
  /** queries timed one by one for queries/s (the rest only for quality) */
  timedQueries?: number;
}

interface ItemMeta {
  keys: string[];
  labels: (string | null)[];
  groups: (string | null)[];
  ids: Int32Array;
}

/** Precision@k and AP@k of one ranked list of row indices, skipping excluded rows; null when the query has no label. */
function score(ranked: ArrayLike<number>, k: number, label: string | null, meta: ItemMeta, skip: (i: number) => boolean): { p: number; ap: number; top: number[] } | null {
  const top: number[] = [];
  for (let i = 0; i < ranked.length && top.length < k; i++) if (!skip(ranked[i]!)) top.push(ranked[i]!);
  if (label === null) return { p: NaN, ap: NaN, top };
  let rel = 0;
  let ap = 0;
  top.forEach((r, i) => {
    if (meta.labels[r] === label) {
      rel++;
      ap += rel / (i + 1);
    }
  });
  return { p: rel / k, ap: rel ? ap / rel : 0, top };
}

function mean(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/**
 * Evaluates a collection with held-out queries: codes through HNSW, codes exact, the raw-space baseline exact
 * (pixels L2 / TF-IDF cosine) and PCA (LSA for text) of the code's dimension fit on the collection's items.
 */
export function evaluate(c: Collection, q: QuerySet, o: EvalOptions): EvalReport {
  return c.consistent(() => evaluateNow(c, q, o));
}

function evaluateNow(c: Collection, q: QuerySet, o: EvalOptions): EvalReport {
  const k = o.k;
  const ef = o.ef ?? c.manifest.hnsw.ef;
  const rows = c.itemRows();
  const meta: ItemMeta = { keys: rows.map((r) => r.key), labels: rows.map((r) => r.label), groups: rows.map((r) => r.grp), ids: Int32Array.from(rows.map((r) => r.id)) };
  const rowOfId = new Map<number, number>();
  meta.ids.forEach((id, i) => rowOfId.set(id, i));
  const skipFor = (qi: number) => {
    const key = q.keys[qi];
    const grp = q.groups?.[qi] ?? null;
    return (i: number) => meta.keys[i] === key || (Boolean(o.excludeSameGroup) && grp !== null && meta.groups[i] === grp);
  };
  let extra = 1;
  if (o.excludeSameGroup) {
    const sizes = new Map<string, number>();
    for (const g of meta.groups) if (g !== null) sizes.set(g, (sizes.get(g) ?? 0) + 1);
    extra = Math.max(1, ...sizes.values()) + 1;
  }
  const m = k + extra;
  const timed = Math.min(q.n, o.timedQueries ?? 200);
  const bar = progress({ title: 'eval', total: 5, unit: 'steps', quiet: o.quiet });
  const isText = c.kind === 'text';
  const metric: Metric = c.manifest.space === 'cosine' ? 'cosine' : 'l2';
  const cd = c.manifest.codeDim;

  const qCodes = c.model.encode(q.input, q.n);
  const codeMat = c.codeMatrix();
  // codeMatrix and allMeta are both in rowid order.
  const codeData = metric === 'cosine' ? normaliseRows(codeMat.data.slice(), cd) : codeMat.data;
  const qCodeData = metric === 'cosine' ? normaliseRows(qCodes.slice(), cd) : qCodes;
  bar.update(1);

  const summarise = (method: string, ranked: (qi: number) => ArrayLike<number>, qps: number, bytes: number, recallOf?: (top: number[], qi: number) => number): EvalRow => {
    const ps: number[] = [];
    const aps: number[] = [];
    const recalls: number[] = [];
    for (let i = 0; i < q.n; i++) {
      const s = score(ranked(i), k, q.labels[i] ?? null, meta, skipFor(i));
      if (!s) continue;
      ps.push(s.p);
      aps.push(s.ap);
      if (recallOf) recalls.push(recallOf(s.top, i));
    }
    return { method, precision: mean(ps), map: mean(aps), recall: recallOf ? mean(recalls) : null, queriesPerSec: qps, bytesPerItem: bytes };
  };
  const timeIt = (fn: (qi: number) => void): number => {
    const t0 = performance.now();
    for (let i = 0; i < timed; i++) fn(i);
    return timed / ((performance.now() - t0) / 1000);
  };

  // (b) exact search in code space: quality from the batched product, speed from the single-query loop.
  const exactCode = batchKnn(codeData, cd, qCodeData, m, metric);
  const exactQps = timeIt((i) => exactKnn(codeData, cd, qCodeData.subarray(i * cd, (i + 1) * cd), m, metric));
  const exactTop = exactCode.map((r, i) => score(r, k, null, meta, skipFor(i))!.top);
  bar.update(2);

  const out: EvalRow[] = [];
  const indexBytes = c.diskSizes().index ?? 0;
  if (c.binaryBits) {
    const bits = c.binaryBits;
    const packed = PackedCodes.fromBytes(Array.from({ length: codeMat.ids.length }, (_, i) => packBits(codeMat.data.subarray(i * cd, (i + 1) * cd))), bits);
    const qWords = Array.from({ length: q.n }, (_, i) => toWords(packBits(qCodes.subarray(i * cd, (i + 1) * cd)), packed.words));
    const hamRanked = qWords.map((w) => Int32Array.from(packed.search(w, m).map((h) => h.index)));
    const hamQps = timeIt((i) => packed.search(qWords[i]!, m));
    out.push(summarise(`binary ${bits}-bit (Hamming, exact)`, (i) => hamRanked[i]!, hamQps, bits / 8));
  }
  // (a) HNSW over the codes.
  const hnswRanked: Int32Array[] = [];
  const t0 = performance.now();
  for (let i = 0; i < q.n; i++) {
    const res = c.search(qCodes.subarray(i * cd, (i + 1) * cd), m, ef);
    hnswRanked.push(Int32Array.from(res.map((r) => rowOfId.get(r.id)!)));
    if (i + 1 === timed) bar.update(3);
  }
  const hnswQps = q.n / ((performance.now() - t0) / 1000);
  out.push(
    summarise(`codes ${cd}-d, HNSW (ef ${ef})`, (i) => hnswRanked[i]!, hnswQps, indexBytes / Math.max(1, c.count), (top, i) => {
      const truth = new Set(exactTop[i]);
      return truth.size ? top.filter((t) => truth.has(t)).length / truth.size : 1;
    }),
  );
  out.push(summarise(`codes ${cd}-d, exact`, (i) => exactCode[i]!, exactQps, cd * 4));

  // (c) the raw-space baseline.
  const raw = c.rawMatrix();
  const rd = c.manifest.rawDim;
  const rawData = isText ? normaliseRows(toFloats(raw.data).slice(), rd) : toFloats(raw.data);
  const qRaw = isText ? normaliseRows(toFloats(q.raw).slice(), rd) : toFloats(q.raw);
  const rawMetric: Metric = isText ? 'cosine' : 'l2';
  const rawRanked = batchKnn(rawData, rd, qRaw, m, rawMetric);
  const rawQps = timeIt((i) => exactKnn(rawData, rd, qRaw.subarray(i * rd, (i + 1) * rd), m, rawMetric));
  out.push(summarise(isText ? `TF-IDF ${rd}-d, cosine exact` : `pixels ${rd}-d, exact`, (i) => rawRanked[i]!, rawQps, rd * 4));
  bar.update(4);

  // (d) PCA / LSA with as many dimensions as the code.
  const pca = fitPca(rawData, raw.ids.length, rd, cd, { center: !isText });
  const pItems = pcaProject(pca, rawData, raw.ids.length);
  const pQ = pcaProject(pca, qRaw, q.n);
  const pMetric: Metric = isText ? 'cosine' : 'l2';
  if (isText) {
    normaliseRows(pItems, pca.k);
    normaliseRows(pQ, pca.k);
  }
  const pRanked = batchKnn(pItems, pca.k, pQ, m, pMetric);
  const pQps = timeIt((i) => exactKnn(pItems, pca.k, pQ.subarray(i * pca.k, (i + 1) * pca.k), m, pMetric));
  out.push(summarise(isText ? `LSA ${pca.k}-d, cosine exact` : `PCA ${pca.k}-d, exact`, (i) => pRanked[i]!, pQps, pca.k * 4));
  bar.update(5);
  bar.stop();
  return {
    collection: c.name,
    kind: c.kind,
    k,
    queries: q.n,
    labelledQueries: q.labels.filter((l) => l !== null).length,
    items: c.count,
    codeDim: cd,
    ef,
    rows: out,
  };
}

function f(x: number | null, digits = 3): string {
  return x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

/** The report as one markdown table. */
export function formatEvalTable(r: EvalReport): string {
  const lines = [
    `Collection \`${r.collection}\` (${r.kind}, ${r.items} items), ${r.queries} queries (${r.labelledQueries} labelled), k = ${r.k}`,
    '',
    `| method | P@${r.k} | mAP@${r.k} | recall@${r.k} vs exact codes | queries/s | bytes/item |`,
    '|---|---:|---:|---:|---:|---:|',
    ...r.rows.map((x) => `| ${x.method} | ${f(x.precision)} | ${f(x.map)} | ${f(x.recall)} | ${x.queriesPerSec.toFixed(0)} | ${x.bytesPerItem.toFixed(0)} |`),
  ];
  return `${lines.join('\n')}\n`;
}
