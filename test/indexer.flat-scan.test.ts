import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rng } from '../src/encoder/rng.js';
import { exactKnn, normaliseRows, type ExactHit } from '../src/indexer/exact.js';
import { FlatScan, MAX_BYTE_DIM, scanKernel } from '../src/indexer/flat-scan.js';
import { exactScan } from '../src/indexer/retrieval.js';
import { digits } from './helpers.js';

const set = digits(1500);
const dim = 784;
const pixels = set.pixels;

function floats(n: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * d }, () => r() * 2 - 1);
}

/** The same rows in the same order, except where the reference's distances tie within f32 rounding. */
function sameRanking(got: ExactHit[], want: ExactHit[], tol: number): void {
  assert.equal(got.length, want.length);
  got.forEach((h, i) => {
    assert.ok(Math.abs(h.distance - want[i]!.distance) <= tol * Math.max(1, Math.abs(want[i]!.distance)), `distance ${i}: ${h.distance} vs ${want[i]!.distance}`);
    if (h.index !== want[i]!.index) {
      const other = want.find((w) => w.index === h.index);
      assert.ok(other && Math.abs(other.distance - want[i]!.distance) <= tol * Math.max(1, Math.abs(want[i]!.distance)), `row ${i}: ${h.index} vs ${want[i]!.index}`);
    }
  });
}

describe('FlatScan#knn', () => {
  it('runs the wasm SIMD kernels that the build compiled', () => {
    assert.equal(scanKernel(), 'wasm-simd');
    assert.equal(new FlatScan(pixels, dim, 'l2').simd, true);
  });

  it('ranks real digits by pixel distance exactly as the plain scan, distances included', () => {
    const scan = new FlatScan(pixels, dim, 'l2');
    for (let t = 0; t < 20; t++) {
      const q = pixels.subarray(t * 71 * dim, (t * 71 + 1) * dim);
      assert.deepEqual(scan.knn(q, 25), exactKnn(pixels, dim, q, 25, 'l2'));
    }
  });

  it('handles byte rows whose length is not a multiple of 16, and float queries rounded to bytes', () => {
    const d = 37;
    const n = Math.floor(pixels.length / d);
    const data = pixels.subarray(0, n * d);
    const scan = new FlatScan(data, d, 'l2');
    const r = rng(5);
    for (let t = 0; t < 10; t++) {
      const q = Float32Array.from({ length: d }, () => r() * 255);
      assert.deepEqual(scan.knn(q, 10), exactKnn(data, d, Uint8Array.from(q, (v) => Math.round(v)), 10, 'l2'));
    }
  });

  for (const d of [32, 13, 8, 3]) {
    it(`ranks ${d}-d float codes as the plain scan, in L2 and cosine`, () => {
      const data = floats(4000, d, d);
      const unit = normaliseRows(data.slice(), d);
      const l2 = new FlatScan(data, d, 'l2');
      const cos = new FlatScan(unit, d, 'cosine');
      const queries = floats(10, d, 100 + d);
      for (let t = 0; t < 10; t++) {
        const q = queries.subarray(t * d, (t + 1) * d);
        sameRanking(l2.knn(q, 15), exactKnn(data, d, q, 15, 'l2'), 1e-5);
        sameRanking(cos.knn(q, 15), exactKnn(unit, d, q, 15, 'cosine'), 1e-5);
      }
    });
  }

  it('keeps the earliest rows of a tie that runs past the rows the bound is taken from, in L2 and cosine', () => {
    const d = 8;
    const row = floats(1, d, 5);
    const data = new Float32Array(3000 * d);
    for (let i = 0; i < 3000; i++) data.set(row, i * d);
    const unit = normaliseRows(data.slice(), d);
    const q = floats(1, d, 6);
    assert.deepEqual(new FlatScan(data, d, 'l2').knn(q, 10).map((h) => h.index), Array.from({ length: 10 }, (_, i) => i));
    assert.deepEqual(new FlatScan(unit, d, 'cosine').knn(q, 10).map((h) => h.index), Array.from({ length: 10 }, (_, i) => i));
    // one nearer row past them still comes first
    data.set(q, 2500 * d);
    assert.deepEqual(new FlatScan(data, d, 'l2').knn(q, 3).map((h) => h.index), [2500, 0, 1]);
  });

  it('answers exactly what its own plain loop answers when the rows past the first ones are selected in wasm', () => {
    // k = 200 reads all 4,000 rows in the plain loop (no selection), k = 15 selects past its first 480
    const d = 16;
    const data = floats(4000, d, 77);
    const unit = normaliseRows(data.slice(), d);
    const rows = Int32Array.from({ length: 3000 }, (_, i) => i + 500);
    for (const [scan] of [[new FlatScan(data, d, 'l2')], [new FlatScan(unit, d, 'cosine')]] as const) {
      for (let t = 0; t < 5; t++) {
        const q = floats(1, d, 300 + t);
        assert.deepEqual(scan.knn(q, 15), scan.knn(q, 200).slice(0, 15));
        assert.deepEqual(scan.knn(q, 15, rows), scan.knn(q, 200, rows).slice(0, 15));
      }
    }
  });

  it('scans only the rows of a filter, nearest first, ties by row', () => {
    const scan = new FlatScan(pixels, dim, 'l2');
    const rows = Int32Array.from({ length: 200 }, (_, i) => i * 7 + 3);
    const q = pixels.subarray(500 * dim, 501 * dim);
    const got = scan.knn(q, 12, rows);
    assert.deepEqual(got, exactKnn(pixels, dim, q, 12, 'l2', undefined, rows));
    assert.ok(got.every((h) => (h.index - 3) % 7 === 0));
  });

  it('scans the rows of a large filter with the float kernels, in L2 and cosine', () => {
    const d = 12;
    const data = floats(3000, d, 31);
    const unit = normaliseRows(data.slice(), d);
    const rows = Int32Array.from({ length: 1000 }, (_, i) => i * 3 + 2);
    const q = floats(1, d, 32);
    sameRanking(new FlatScan(data, d, 'l2').knn(q, 10, rows), exactKnn(data, d, q, 10, 'l2', undefined, rows), 1e-5);
    sameRanking(new FlatScan(unit, d, 'cosine').knn(q, 10, rows), exactKnn(unit, d, q, 10, 'cosine', undefined, rows), 1e-5);
    assert.ok(new FlatScan(data, d, 'l2').knn(q, 10, rows).every((h) => h.index % 3 === 2));
  });

  it('keeps byte distances exact up to the longest rows the kernel sums, and past them on the plain loop', () => {
    for (const d of [MAX_BYTE_DIM, MAX_BYTE_DIM + 1]) {
      const data = new Uint8Array(3 * d);
      data.fill(255, 0, d);
      data.fill(7, 2 * d, 3 * d);
      const scan = new FlatScan(data, d, 'l2');
      const hits = scan.knn(new Float32Array(d), 3);
      assert.deepEqual(hits, [
        { index: 1, distance: 0 },
        { index: 2, distance: 49 * d },
        { index: 0, distance: 255 ** 2 * d },
      ]);
      assert.equal(scan.simd, d <= MAX_BYTE_DIM);
    }
  });

  it('ignores filter rows outside the matrix as the plain scan does', () => {
    const data = floats(2000, 4, 41);
    const rows = Int32Array.from({ length: 1000 }, (_, i) => (i === 10 ? 5000 : i));
    const q = floats(1, 4, 42);
    sameRanking(new FlatScan(data, 4, 'l2').knn(q, 5, rows), exactKnn(data, 4, q, 5, 'l2', undefined, rows), 1e-5);
  });

  it('answers as many rows as there are when k is larger', () => {
    const data = floats(5, 8, 9);
    assert.equal(new FlatScan(data, 8, 'l2').knn(data.subarray(0, 8), 50).length, 5);
  });
});

describe('exactScan#searchMany', () => {
  it('gives each query the rows its single search gives', () => {
    const r = exactScan('pixels', pixels, dim, 'l2');
    const qs = Float32Array.from(pixels.subarray(0, 6 * dim));
    const many = r.searchMany(qs, 6, 10);
    for (let i = 0; i < 6; i++) assert.deepEqual(Array.from(many[i]!), r.search(qs.subarray(i * dim, (i + 1) * dim), 10).map((h) => h.index));
  });
});
