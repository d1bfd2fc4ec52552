import { toFloats, type Pixels } from '../../data/images.js';
import { progress } from '../progress.js';
import type { Collection } from '../indexer/collection.js';
import { exactScan, graphScan, hammingScan, projectionScan, type Retriever } from '../indexer/retrieval.js';
import { excludedAtMost, queriesPerSec, scoreRankings, type Labelled } from './score.js';

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
  /** queries timed one by one for queries/s (the rest only for quality) */
  timedQueries?: number;
}

/**
 * Evaluates a collection with held-out queries: codes through HNSW, codes exact (and Hamming for binary codes), the
 * raw-space baseline exact (pixels L2 / TF-IDF cosine) and PCA (LSA for text) of the code's dimension fit on the
 * collection's items — every method a Retriever, every ranking scored by the one scorer and exclusion rule.
 */
export function evaluate(c: Collection, q: QuerySet, o: EvalOptions): EvalReport {
  return c.consistent(() => evaluateNow(c, q, o));
}

function evaluateNow(c: Collection, q: QuerySet, o: EvalOptions): EvalReport {
  const k = o.k;
  const ef = o.ef ?? c.manifest.hnsw.ef;
  const rows = c.itemRows();
  const items: Labelled = { keys: rows.map((r) => r.key), labels: rows.map((r) => r.label), groups: rows.some((r) => r.grp !== null) ? rows.map((r) => r.grp) : null };
  const queries: Labelled = { keys: q.keys, labels: q.labels, groups: q.groups };
  const m = k + excludedAtMost(items);
  const timed = o.timedQueries ?? 200;
  const bar = progress({ title: 'eval', total: 5, unit: 'steps', quiet: o.quiet });
  const isText = c.kind === 'text';
  const cd = c.manifest.codeDim;
  const qCodes = c.model.encode(q.input, q.n);
  const codes = c.codeMatrix();
  const rowOfId = new Map<number, number>();
  rows.forEach((r, i) => rowOfId.set(r.id, i));
  bar.update(1);

  const out: EvalRow[] = [];
  const run = (r: Retriever, queryVectors: Float32Array, exact?: Int32Array[]): Int32Array[] => {
    const ranked = r.searchMany(queryVectors, q.n, m);
    out.push({ method: r.name, ...scoreRankings(ranked, queries, items, k, exact), queriesPerSec: queriesPerSec(r, queryVectors, q.n, m, timed), bytesPerItem: r.bytesPerItem });
    return ranked;
  };
  const exactCodes = exactScan(`codes ${cd}-d, exact`, codes.data, cd, c.manifest.space === 'cosine' ? 'cosine' : 'l2');
  const exactRanked = exactCodes.searchMany(qCodes, q.n, m);
  bar.update(2);
  if (c.binaryBits) run(hammingScan(`binary ${c.binaryBits}-bit (Hamming, exact)`, codes.data, cd, c.binaryBits), qCodes);
  const indexBytes = c.diskSizes().index ?? 0;
  run(graphScan(`codes ${cd}-d, HNSW (ef ${ef})`, (v, kk) => c.search(v, kk, ef), rowOfId, indexBytes / Math.max(1, c.count)), qCodes, exactRanked);
  bar.update(3);
  run(exactCodes, qCodes);

  const raw = c.rawMatrix();
  const rd = c.manifest.rawDim;
  const rawData = toFloats(raw.data);
  const qRaw = toFloats(q.raw);
  run(exactScan(isText ? `TF-IDF ${rd}-d, cosine exact` : `pixels ${rd}-d, exact`, rawData, rd, isText ? 'cosine' : 'l2'), qRaw);
  bar.update(4);
  run(projectionScan(rawData, raw.ids.length, rd, cd, isText, (m) => `${m}, ${isText ? 'cosine ' : ''}exact`), qRaw);
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
