import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitPca, fitSparseLsa, pcaProject, sparseProject } from '../src/encoder/pca.js';
import { rng } from '../src/encoder/rng.js';
import { addMean, type SparseVector } from '../src/encoder/sparse.js';
import { exactKnn } from '../src/indexer/exact.js';
import { exactScan, twoStage } from '../src/indexer/retrieval.js';
import { decodeSparse, encodeSparse, SparseRows } from '../src/indexer/sparse-rows.js';
import { rerankOptions } from '../src/search/rerank.js';
import { backend } from './helpers.js';

/** A random sparse unit vector over `dim` words with about `nnz` non-zeros. */
function randomSparse(rand: () => number, dim: number, nnz: number): SparseVector {
  const m = new Map<number, number>();
  while (m.size < nnz) m.set(Math.floor(rand() * dim), rand() + 0.1);
  const e = [...m].sort((a, b) => a[0] - b[0]);
  const norm = Math.hypot(...e.map(([, v]) => v));
  return { index: Uint32Array.from(e, ([i]) => i), value: Float32Array.from(e, ([, v]) => v / norm) };
}

function densify(v: SparseVector, dim: number): Float32Array {
  const out = new Float32Array(dim);
  v.index.forEach((i, p) => (out[i] = v.value[p]!));
  return out;
}

describe('SparseRows', () => {
  const rand = rng(3);
  const dim = 300;
  const docs = Array.from({ length: 120 }, () => randomSparse(rand, dim, 2 + Math.floor(rand() * 20)));

  it('stores a sparse vector and reads it back bit for bit', () => {
    const back = decodeSparse(encodeSparse(docs[5]!), dim)!;
    assert.deepEqual(Array.from(back.index), Array.from(docs[5]!.index));
    assert.deepEqual(Array.from(back.value), Array.from(docs[5]!.value));
    assert.equal(decodeSparse(Buffer.alloc(12), dim), undefined);
    // An index past the vocabulary, or indices out of order, is damage, not a vector.
    assert.equal(decodeSparse(encodeSparse({ index: Uint32Array.of(3, dim), value: Float32Array.of(1, 1) }), dim), undefined);
    assert.equal(decodeSparse(encodeSparse({ index: Uint32Array.of(5, 3), value: Float32Array.of(1, 1) }), dim), undefined);
  });

  it('finds the same nearest rows as a dense cosine scan, before and after removals', () => {
    const rows = new SparseRows(dim);
    docs.forEach((d, i) => rows.append(i * 2, d));
    const dense = new Float32Array(docs.length * dim);
    docs.forEach((d, i) => dense.set(densify(d, dim), i * dim));
    for (const q of docs.slice(0, 10)) {
      const want = exactKnn(dense, dim, densify(q, dim), 8, 'cosine').map((h) => h.index);
      assert.deepEqual(rows.nearest(q, 8).map((h) => h.index), want);
    }
    const gone = new Set([0, 2, 50, 238]);
    rows.remove(gone);
    assert.equal(rows.size, docs.length - 4);
    const kept = docs.filter((_, i) => !gone.has(i * 2));
    assert.deepEqual(Array.from(rows.idsView()), docs.map((_, i) => i * 2).filter((id) => !gone.has(id)));
    kept.forEach((d, r) => {
      assert.deepEqual(Array.from(rows.row(r).index), Array.from(d.index));
      assert.deepEqual(Array.from(rows.row(r).value), Array.from(d.value));
    });
    const dk = new Float32Array(kept.length * dim);
    kept.forEach((d, i) => dk.set(densify(d, dim), i * dim));
    assert.deepEqual(rows.nearest(docs[7]!, 6).map((h) => h.index), exactKnn(dk, dim, densify(docs[7]!, dim), 6, 'cosine').map((h) => h.index));
    rows.append(1000, docs[0]!);
    assert.equal(rows.nearest(docs[0]!, 1)[0]!.index, rows.size - 1);
  });

  it('adds the mean of rows to a query as a dense sum would, at unit length (feedback)', () => {
    const sum = densify(docs[0]!, dim);
    for (const r of [docs[1]!, docs[2]!]) densify(r, dim).forEach((v, i) => (sum[i] += 0.5 * v));
    const norm = Math.hypot(...sum);
    const got = densify(addMean(docs[0]!, [docs[1]!, docs[2]!], 1), dim);
    got.forEach((v, i) => assert.ok(Math.abs(v - sum[i]! / norm) < 1e-6, `word ${i}`));
  });

  it('fits LSA without densifying: the same subspace as dense uncentred PCA', async () => {
    await backend();
    const n = docs.length;
    const dense = new Float32Array(n * dim);
    docs.forEach((d, i) => dense.set(densify(d, dim), i * dim));
    const a = fitSparseLsa((i) => docs[i]!, n, dim, 5);
    const b = fitPca(dense, n, dim, 5, { center: false });
    a.variances.forEach((v, i) => assert.ok(Math.abs(v - b.variances[i]!) < 1e-4 * b.variances[0]!, `variance ${i}: ${v} vs ${b.variances[i]}`));
    // Projections agree up to the sign of each component.
    const pa = sparseProject(a, docs.slice(0, 20));
    const pb = pcaProject(b, dense, 20);
    for (let c = 0; c < 3; c++) {
      const sign = Math.sign(pa[c]!) === Math.sign(pb[c]!) ? 1 : -1;
      for (let i = 0; i < 20; i++) assert.ok(Math.abs(pa[i * 5 + c]! - sign * pb[i * 5 + c]!) < 1e-3);
    }
  });
});

describe('twoStage', () => {
  // Five items on a line by code; their exact distances to the query say another order.
  const codes = Float32Array.from([0, 1, 2, 3, 4]);
  const exact = Float32Array.from([0.9, 0.1, 0.5, 0.3, 0.02]);
  const byCode = exactScan('codes', codes, 1, 'l2');
  const exactOf = (_q: null, rows: Int32Array) => Float32Array.from(rows, (r) => exact[r]!);
  const codeOf = (q: Float32Array, rows: Int32Array) => Float32Array.from(rows, (r) => Math.abs(codes[r]! - q[0]!) / 4);
  const query = { code: Float32Array.of(0), raw: null };

  it('re-ranks the shortlist by the exact distance and never looks past it', () => {
    const r = twoStage('t', byCode, exactOf, codeOf, { shortlist: 4, blend: 0 });
    // Item 4 is nearest exactly but not among the 4 nearest codes.
    assert.deepEqual(r.search(query, 3).map((h) => h.index), [1, 3, 2]);
    assert.deepEqual(r.searchMany({ codes: Float32Array.of(0), raws: [null] }, 1, 3).map((x) => Array.from(x)), [[1, 3, 2]]);
    assert.deepEqual(twoStage('t', byCode, exactOf, codeOf, { shortlist: 5, blend: 0 }).search(query, 2).map((h) => h.index), [4, 1]);
  });

  it('blends the code distance in: weight 1 is the code order, a shortlist below k still returns k', () => {
    assert.deepEqual(twoStage('t', byCode, exactOf, codeOf, { shortlist: 5, blend: 1 }).search(query, 5).map((h) => h.index), [0, 1, 2, 3, 4]);
    const half = twoStage('t', byCode, exactOf, codeOf, { shortlist: 5, blend: 0.5 }).search(query, 5);
    // 0.5 × exact + 0.5 × code: 0.45, 0.175, 0.5, 0.525, 0.51
    assert.deepEqual(half.map((h) => h.index), [1, 0, 2, 4, 3]);
    assert.ok(Math.abs(half[0]!.distance - (0.5 * 0.1 + 0.5 * 0.25)) < 1e-6);
    assert.equal(twoStage('t', byCode, exactOf, codeOf, { shortlist: 2, blend: 0 }).search(query, 4).length, 4);
  });

  it('feeds the best re-ranked rows back into the query and re-ranks once more, never the query’s own item; its copies keep their place', () => {
    // Raw vectors on the unit circle at these angles (degrees); the query lies at 0°. D is a copy of the query.
    const angles = { A: 20, B: 38, C: -35, D: 0 };
    const names = Object.keys(angles) as (keyof typeof angles)[];
    const raw = names.map((n) => [Math.cos((angles[n] * Math.PI) / 180), Math.sin((angles[n] * Math.PI) / 180)] as const);
    const cos = (q: readonly number[], r: readonly number[]) => (q[0]! * r[0]! + q[1]! * r[1]!) / Math.hypot(q[0]!, q[1]!);
    const exactRaw = (q: readonly number[], rows: Int32Array) => Float32Array.from(rows, (r) => 1 - cos(q, raw[r]!));
    const expand = (q: { code: Float32Array; raw: readonly number[] }, rows: Int32Array) => ({ code: q.code, raw: [q.raw[0]! + 0.5 * raw[rows[0]!]![0], q.raw[1]! + 0.5 * raw[rows[0]!]![1]] });
    const all = exactScan('codes', Float32Array.from([0, 1, 2, 3]), 1, 'l2');
    const order = (feedback: number, self?: number) => twoStage('t', all, exactRaw, codeOf, { shortlist: 4, blend: 0, feedback }, expand).search({ code: Float32Array.of(0), raw: [1, 0], ...(self === undefined ? {} : { self }) }, 4).map((h) => names[h.index]);
    // alone: D, A (20°), C (35°), B (38°); when D is the query's own item (a search by key) A is fed back instead, and
    // the query turns to 6.6°: B (31°) before C (42°)
    assert.deepEqual(order(0), ['D', 'A', 'C', 'B']);
    assert.deepEqual(order(1, 3), ['D', 'A', 'B', 'C']);
    // a copy of the query that is another item is fed back like any row: the query keeps its direction and its order
    assert.deepEqual(order(1), ['D', 'A', 'C', 'B']);
    // evaluation keeps rows its scoring skips out of the feedback (the query's own item, and here A): C is fed back and
    // the query turns to −11.5°
    const two = twoStage('t', all, exactRaw, codeOf, { shortlist: 4, blend: 0, feedback: 1 }, expand);
    const many = two.searchMany({ codes: Float32Array.of(0), raws: [[1, 0]], notFedBack: () => (row) => row === 0 || row === 3 }, 1, 4);
    assert.deepEqual(Array.from(many[0]!, (r) => names[r]), ['D', 'C', 'A', 'B']);
    assert.throws(() => twoStage('t', all, exactRaw, codeOf, { shortlist: 4, blend: 0, feedback: 1 }), { code: 'INTERNAL' });
  });

  it('takes its settings validated: kind defaults, bounds, no blend for images', () => {
    assert.ok(rerankOptions('text').shortlist > 0);
    assert.equal(rerankOptions('image').shortlist, 0);
    assert.equal(rerankOptions('text', { rerank: 0 }).shortlist, 0);
    assert.throws(() => rerankOptions('text', { rerank: 5000 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => rerankOptions('text', { rerank: 2.5 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => rerankOptions('text', { blend: 1.5 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => rerankOptions('text', { rerank: 0, blend: 0.5 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => rerankOptions('image', { rerank: 50, blend: 0.5 }), { code: 'INVALID_ARGUMENT' });
    // feedback: texts only, inside the shortlist; the default fits a small shortlist and is none without one
    assert.ok(rerankOptions('text').feedback > 0);
    assert.equal(rerankOptions('text', { rerank: 2 }).feedback, 1);
    assert.equal(rerankOptions('text', { rerank: 0 }).feedback, 0);
    assert.equal(rerankOptions('image', { rerank: 50 }).feedback, 0);
    for (const bad of [{ feedback: -1 }, { feedback: 1.5 }, { feedback: 51 }, { rerank: 5, feedback: 5 }, { rerank: 0, feedback: 2 }]) assert.throws(() => rerankOptions('text', bad), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
    assert.throws(() => rerankOptions('image', { rerank: 50, feedback: 3 }), { code: 'INVALID_ARGUMENT' });
    // a search bounded by distance keeps its distances to the query: no feedback by default, and none asked for
    assert.equal(rerankOptions('text', {}, true).feedback, 0);
    assert.throws(() => rerankOptions('text', { feedback: 2 }, true), { code: 'INVALID_ARGUMENT' });
  });
});
