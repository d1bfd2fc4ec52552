import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PackedCodes } from '../src/encoder/binary.js';
import { rng } from '../src/encoder/rng.js';
import { hammingIndex, MultiIndexHash, substringCount } from '../src/indexer/mih.js';

/** n random codes of `bits` bits as PackedCodes; `clusters` > 0 draws them around that many centres (many ties). */
function randomCodes(n: number, bits: number, seed: number, clusters = 0): PackedCodes {
  const r = rng(seed);
  const words = Math.ceil(bits / 32);
  const word = (w: number) => {
    const used = Math.min(32, bits - 32 * w);
    const v = Math.floor(r() * 2 ** 32) >>> 0;
    return used === 32 ? v : (v & (((1 << used) - 1) << (32 - used))) >>> 0;
  };
  const centres = Array.from({ length: clusters * words }, (_, i) => word(i % words));
  const data = new Uint32Array(n * words);
  for (let i = 0; i < n; i++) {
    for (let w = 0; w < words; w++) {
      if (clusters === 0) data[i * words + w] = word(w);
      else {
        // a centre with a few bits flipped (often none: exact duplicates)
        let v = centres[Math.floor(r() * clusters) * words + w]!;
        const used = Math.min(32, bits - 32 * w);
        for (let f = 0; f < 2; f++) if (r() < 0.4) v ^= 1 << (31 - Math.floor(r() * used));
        data[i * words + w] = v >>> 0;
      }
    }
  }
  return new PackedCodes(bits, data, n);
}

function query(codes: PackedCodes, seed: number, fromRow?: number): Uint32Array {
  if (fromRow !== undefined) {
    const q = codes.data.slice(fromRow * codes.words, (fromRow + 1) * codes.words);
    q[0] = (q[0]! ^ (1 << 31)) >>> 0;
    return q;
  }
  return randomCodes(1, codes.bits, seed).data;
}

describe('MultiIndexHash#search', () => {
  for (const [bits, m] of [
    [64, 3],
    [64, 5],
    [37, 2],
    [24, 1],
    [96, 6],
  ] as const) {
    it(`finds the same k nearest, in the same order, as the linear scan (${bits} bits, ${m} substrings)`, () => {
      const codes = randomCodes(3000, bits, bits + m);
      const mih = new MultiIndexHash(codes, m);
      for (let t = 0; t < 15; t++) {
        const q = query(codes, 100 + t, t % 2 === 0 ? t * 37 : undefined);
        for (const k of [1, 10, 137]) assert.deepEqual(mih.search(q, k), codes.search(q, k), `query ${t}, k ${k}`);
      }
    });
  }

  it('breaks ties by row like the linear scan on codes with many exact duplicates', () => {
    const codes = randomCodes(4000, 64, 7, 25);
    const mih = new MultiIndexHash(codes, 4);
    for (let t = 0; t < 20; t++) {
      const q = query(codes, 200 + t, t * 13);
      for (const k of [5, 50, 400]) assert.deepEqual(mih.search(q, k), codes.search(q, k));
    }
  });

  it('finds a row that differs from the query on every bit (probes each table up to its full width)', () => {
    for (const [bits, m] of [
      [64, 3],
      [37, 4],
    ] as const) {
      const codes = randomCodes(40, bits, 21);
      const q = codes.data.slice(5 * codes.words, 6 * codes.words);
      const words = codes.words;
      for (let w = 0; w < words; w++) {
        const used = Math.min(32, bits - 32 * w);
        codes.data[5 * words + w] = (~q[w]! & (used === 32 ? 0xffffffff : ((1 << used) - 1) << (32 - used))) >>> 0;
      }
      const mih = new MultiIndexHash(codes, m);
      assert.deepEqual(mih.search(q, 40), codes.search(q, 40));
      assert.equal(mih.search(q, 40).at(-1)!.distance, bits);
      assert.deepEqual(mih.within(q, bits), codes.within(q, bits));
    }
  });

  it('refuses substrings wider than its direct tables', () => {
    assert.throws(() => new MultiIndexHash(randomCodes(10, 48, 1), 1), RangeError);
  });

  it('answers every row when k exceeds the collection, and nothing for k = 0', () => {
    const codes = randomCodes(50, 32, 9);
    const mih = new MultiIndexHash(codes, 2);
    const q = query(codes, 9);
    assert.deepEqual(mih.search(q, 80), codes.search(q, 80));
    assert.equal(mih.search(q, 80).length, 50);
    assert.deepEqual(mih.search(q, 0), []);
  });

  it('searches only the given rows like the linear scan', () => {
    const codes = randomCodes(2000, 64, 11);
    const mih = new MultiIndexHash(codes, 3);
    const rows = Int32Array.from({ length: 300 }, (_, i) => i * 6 + 1);
    const q = query(codes, 12);
    assert.deepEqual(mih.search(q, 10, rows), codes.search(q, 10, rows));
  });
});

describe('MultiIndexHash#within', () => {
  it('returns every row within the radius, as the linear scan does', () => {
    const codes = randomCodes(3000, 64, 13, 40);
    const mih = new MultiIndexHash(codes, 4);
    for (let t = 0; t < 10; t++) {
      const q = query(codes, 300 + t, t * 101);
      for (const max of [0, 2, 9, 20]) assert.deepEqual(mih.within(q, max), codes.within(q, max));
    }
  });
});

describe('hammingIndex', () => {
  it('uses multi-index hashing from the threshold on, with about log2(n) bits per substring', () => {
    const codes = randomCodes(1000, 64, 15);
    assert.ok(hammingIndex(codes, { minItems: 1000 }) instanceof MultiIndexHash);
    assert.equal(hammingIndex(codes, { minItems: 1001 }), codes);
    assert.equal(substringCount(10_000_000, 64), 3);
    assert.equal(substringCount(1000, 64), 7);
  });
});
