import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hamming, packBits } from '../src/encoder/binary.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { TrainedModel } from '../src/encoder/model.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { compareModels } from '../src/search/compare.js';
import { SearchEngine } from '../src/search/engine.js';
import { evaluate } from '../src/search/eval.js';
import { backend, digits, smallModel, tmpDir } from './helpers.js';

const items = digits(400);
const queries = digits(40, 'test');
let model: TrainedModel;
let dataDir: string;

before(async () => {
  await backend();
  model = await fitImageModel(items, { hidden: [64], epochs: 3, batchSize: 64, quiet: true, seed: 4, regularisers: { binaryBits: 64, binaryNoise: 4 } });
  dataDir = tmpDir();
  (await buildCollection(model, imageItems(items), { dataDir, name: 'bits', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
});
after(() => model.dispose());

describe('binary collections', () => {
  it('store 64-bit codes and answer by Hamming distance, equal to a naive scan over the stored bits', async () => {
    assert.equal(model.codeDim, 64);
    const engine = new SearchEngine({ dataDir, quiet: true });
    const c = await engine.collection('bits');
    const meta = c.itemRows();
    const stored = c.rows<Uint8Array>('bits');
    const bits = new Map([...stored.ids].map((id, i) => [id, stored.data.slice(i * 8, (i + 1) * 8)]));
    assert.ok([...bits.values()].every((b) => b.length === 8));
    const key = items.keys[77]!;
    const r = await engine.byKey('bits', key, { k: 10 });
    assert.equal(r.codes.method, 'hamming-64');
    const q = bits.get(c.item(key).id)!;
    const naive = meta.filter((m) => m.key !== key).map((m) => hamming(bits.get(m.id)!, q)).sort((a, b) => a - b).slice(0, 10);
    assert.deepEqual(r.codes.hits.map((h) => h.distance), naive);
    assert.ok(r.codes.hits.every((h) => h.key !== key));
    const own = packBits(c.codeOf(c.item(key).id));
    assert.deepEqual(Array.from(own), Array.from(q));
    await engine.close();
  });

  it('are reported by eval as their own row at 8 bytes per item', async () => {
    const engine = new SearchEngine({ dataDir, quiet: true });
    const c = await engine.collection('bits');
    const r = evaluate(c, { n: 40, keys: queries.keys, labels: queries.labels, groups: null, input: queries.pixels, raw: queries.pixels }, { k: 10, quiet: true });
    const row = r.rows.find((x) => x.method.startsWith('binary 64-bit'))!;
    assert.equal(row.bytesPerItem, 8);
    assert.ok(row.precision > 0.2);
    await engine.close();
  });
});

describe('median-binarized codes', () => {
  it('cut every unit at its training median: each bit splits the items in half, and the cut points persist', async () => {
    const m = await fitImageModel(items, { hidden: [64], epochs: 2, batchSize: 64, quiet: true, seed: 4, regularisers: { binaryBits: 16, binarize: 'median' } });
    const r = m.manifest.regularisers;
    assert.equal(r.binarize, 'median');
    assert.equal(r.binaryNoise, undefined);
    assert.equal(r.binaryThresholds!.length, 16);
    const codes = m.encode(items.pixels, 400);
    for (let j = 0; j < 16; j++) {
      let ones = 0;
      for (let i = 0; i < 400; i++) ones += codes[i * 16 + j]! > 0.5 ? 1 : 0;
      assert.ok(Math.abs(ones - 200) <= 1, `unit ${j}: ${ones} of 400 bits set`);
    }
    // the plain code's median is the cut point: unit j's plain outputs sit on both sides of it
    const pre = m.preCodes(items.pixels, 400);
    assert.ok(pre.some((v, i) => v > r.binaryThresholds![i % 16]!) && pre.some((v, i) => v < r.binaryThresholds![i % 16]!));
    const dir = `${tmpDir()}/median`;
    await m.save(dir);
    const again = await TrainedModel.load(dir);
    assert.deepEqual(again.manifest.regularisers.binaryThresholds, r.binaryThresholds);
    assert.deepEqual(Array.from(again.encode(items.pixels.subarray(0, 784 * 5), 5)), Array.from(codes.subarray(0, 16 * 5)));
    // decoding the stored (shifted sigmoid) code gives the model's own reconstruction of the item
    const rec = m.reconstruct(items.pixels.subarray(0, 784), 1);
    const dec = m.decode(codes.subarray(0, 16), 1);
    assert.ok(rec.every((v, i) => Math.abs(v - dec[i]!) < 1e-3));
    again.dispose();
    m.dispose();
  });
});

describe('compareModels', () => {
  it('puts several models, the pixel baseline and PCA in one table on the same queries', async () => {
    const dense = await smallModel(items, { epochs: 3 });
    const d = {
      kind: 'image' as const,
      items: { n: 400, raw: items.pixels, labels: items.labels, groups: null, keys: items.keys },
      queries: { n: 40, raw: queries.pixels, labels: queries.labels, groups: null, keys: queries.keys },
      inputOf: () => ({ items: items.pixels, queries: queries.pixels }),
    };
    const rows = compareModels([{ name: 'dense-8', model: dense }, { name: 'binary-64', model }], d, 10);
    assert.deepEqual(rows.map((r) => r.name), ['dense-8', 'binary-64', 'pixels 784-d (exact)', 'PCA 8-d (exact)']);
    assert.equal(rows[1]!.bytesPerItem, 8);
    assert.equal(rows[2]!.reconError, 0);
    assert.ok(rows.every((r) => r.precision > 0.1 && r.precision <= 1));
    assert.ok(rows[3]!.reconError! > 0);
    dense.dispose();
  });
});
