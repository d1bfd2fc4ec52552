import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hamming, PackedCodes, packBits, toWords, unpackBits } from '../src/encoder/binary.js';
import { rng } from '../src/encoder/rng.js';

describe('packBits', () => {
  it('round-trips codes of 64 and of an odd number of bits', () => {
    const r = rng(1);
    for (const bits of [64, 37]) {
      const code = Float32Array.from({ length: bits }, () => r());
      const packed = packBits(code);
      assert.equal(packed.length, Math.ceil(bits / 8));
      assert.deepEqual(Array.from(unpackBits(packed, bits)), Array.from(code, (v) => (v > 0.5 ? 1 : 0)));
    }
  });
  it('stores a 64-bit code in 8 bytes', () => {
    assert.equal(packBits(new Float32Array(64)).byteLength, 8);
  });
});

describe('PackedCodes#search', () => {
  it('returns the same neighbours as a naive Hamming scan', () => {
    const r = rng(2);
    const bits = 64;
    const rows = Array.from({ length: 500 }, () => packBits(Float32Array.from({ length: bits }, () => r())));
    const pc = PackedCodes.fromBytes(rows, bits);
    for (let t = 0; t < 20; t++) {
      const q = packBits(Float32Array.from({ length: bits }, () => r()));
      const got = pc.search(toWords(q, pc.words), 10);
      const naive = rows.map((row, index) => ({ index, distance: hamming(row, q) })).sort((a, b) => a.distance - b.distance || a.index - b.index).slice(0, 10);
      assert.deepEqual(got, naive);
    }
  });
});
