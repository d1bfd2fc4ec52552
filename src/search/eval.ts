import { toFloats, type Pixels } from '../../data/images.js';
import type { SparseVector } from '../encoder/sparse.js';
import { counted, progress } from '../progress.js';
import type { Collection, RawVectors } from '../indexer/collection.js';
import { exactScan, graphScan, hammingScan, projectionScan, sortedIndex, sparseProjectionScan, sparseScan, type Retriever } from '../indexer/retrieval.js';
import { collectionTwoStage, rerankOptions, twoStageName, type RerankRequest } from './rerank.js';
import { excludedAtMost, exclusion, queriesPerSec, scoreRankings, type Labelled } from './score.js';

/** Queries to evaluate: the model's input and the baseline's raw vector per query, with key, label, group. */
export interface QuerySet {
  n: number;
  keys: string[];
  labels: (string | null)[];
  groups: (string | null)[] | null;
  input: Pixels;
  /** pixels (n × dim) or one sparse TF-IDF vector per query (texts) */
  raw: RawVectors;
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
  /** the two-stage row's settings (default: the collection kind's, or for images a shortlist of 100) */
  rerank?: RerankRequest;
}

/**
 * Evaluates a collection with held-out queries: codes through HNSW, codes exact (and Hamming for binary codes), the
 * two-stage search (codes shortlist, the exact baseline re-ranks), the raw-space baseline exact (pixels L2 / TF-IDF
 * cosine over the full vocabulary) and PCA (LSA for text) of the code's dimension fit on the collection's items —
 * every method a Retriever, every ranking scored by the one scorer and exclusion rule.
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
  const bar = progress({ title: 'eval', total: 6, unit: 'steps', quiet: o.quiet });
  const isText = c.kind === 'text';
  const cd = c.manifest.codeDim;
  const qCodes = c.model.encode(q.input, q.n);
  const codes = c.codeMatrix();
  // Item metadata and the code matrix are both in id order (one snapshot): a graph answer's row is its id's place.
  const rowOfId = sortedIndex(codes.ids);
  const codeAt = (i: number) => qCodes.subarray(i * cd, (i + 1) * cd);
  bar.update(1);

  const out: EvalRow[] = [];
  const run = <Q, B>(r: Retriever<Q, B>, qs: B, one: (i: number) => Q, exact?: Int32Array[]): Int32Array[] => {
    const ranked = r.searchMany(qs, q.n, m);
    out.push({ method: r.name, ...scoreRankings(ranked, queries, items, k, exact), queriesPerSec: queriesPerSec((i) => r.search(one(i), m), q.n, timed), bytesPerItem: r.bytesPerItem });
    return ranked;
  };
  const exactCodes = exactScan(`codes ${cd}-d, exact`, codes.data, cd, c.manifest.space === 'cosine' ? 'cosine' : 'l2');
  const exactRanked = exactCodes.searchMany(qCodes, q.n, m);
  bar.update(2);
  const hamming = c.binaryBits ? hammingScan(`binary ${c.binaryBits}-bit (Hamming, exact)`, codes.data, cd, c.binaryBits) : undefined;
  if (hamming) run(hamming, qCodes, codeAt);
  const indexBytes = c.diskSizes().index ?? 0;
  const graph = graphScan(`codes ${cd}-d, HNSW (ef ${ef})`, (v, kk) => c.search(v, kk, ef), rowOfId, indexBytes / Math.max(1, c.count));
  run(graph, qCodes, codeAt, exactRanked);
  bar.update(3);
  run(exactCodes, qCodes, codeAt);
  // Images have no re-ranking by default; eval shows what a shortlist of 100 would give.
  const given = o.rerank ?? {};
  const ro = rerankOptions(c.kind, { ...given, rerank: given.rerank ?? (isText ? undefined : 100) });
  if (ro.shortlist > 0) {
    const raws = rawRows(q);
    // with feedback, the row without it too: what the feedback adds is seen in one table
    for (const r of ro.feedback > 0 ? [{ ...ro, feedback: 0 }, ro] : [ro]) {
      // The shortlist the engine uses: Hamming for binary codes, else HNSW.
      const two = collectionTwoStage(c, twoStageName(c.kind, hamming ? `Hamming ${c.binaryBits}-bit` : 'HNSW', r), hamming ?? graph, r);
      run(two, { codes: qCodes, raws, notFedBack: (i) => exclusion(queries, i, items) }, (i) => ({ code: codeAt(i), raw: raws[i]! }));
    }
  }
  bar.update(4);

  if (isText) {
    const sparse = c.sparseRows();
    const qs = q.raw as readonly SparseVector[];
    const at = (i: number) => qs[i]!;
    run(sparseScan(`TF-IDF, full vocabulary of ${sparse.dim} words, cosine exact`, sparse), qs, at);
    bar.update(5);
    run(sparseProjectionScan(sparse, cd, (m) => `${m}, full vocabulary, cosine exact`), qs, at);
  } else {
    const raw = c.rawMatrix();
    const rd = c.manifest.rawDim;
    const rawData = toFloats(raw.data);
    const qRaw = toFloats(q.raw as Pixels);
    const at = (i: number) => qRaw.subarray(i * rd, (i + 1) * rd);
    run(exactScan(`pixels ${rd}-d, exact`, rawData, rd, 'l2'), qRaw, at);
    bar.update(5);
    run(projectionScan(rawData, raw.ids.length, rd, cd, false, (m) => `${m}, exact`), qRaw, at);
  }
  bar.update(6);
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

/** The queries' raw vectors one per query (pixel rows as views). */
function rawRows(q: QuerySet): readonly (Pixels | SparseVector)[] {
  if (!(q.raw instanceof Uint8Array || q.raw instanceof Float32Array)) return q.raw;
  const raw = q.raw;
  const d = raw.length / Math.max(1, q.n);
  return Array.from({ length: q.n }, (_, i) => raw.subarray(i * d, (i + 1) * d));
}

function f(x: number | null, digits = 3): string {
  return x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

/** The report as one markdown table. */
export function formatEvalTable(r: EvalReport): string {
  const lines = [
    `Collection \`${r.collection}\` (${r.kind}, ${counted(r.items, 'item')}), ${counted(r.queries, 'query', 'queries')} (${r.labelledQueries} labelled), k = ${r.k}`,
    '',
    `| method | P@${r.k} | mAP@${r.k} | recall@${r.k} vs exact codes | queries/s | bytes/item |`,
    '|---|---:|---:|---:|---:|---:|',
    ...r.rows.map((x) => `| ${x.method} | ${f(x.precision)} | ${f(x.map)} | ${f(x.recall)} | ${x.queriesPerSec.toFixed(0)} | ${x.bytesPerItem.toFixed(0)} |`),
  ];
  return `${lines.join('\n')}\n`;
}
