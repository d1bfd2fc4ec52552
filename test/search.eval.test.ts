import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { selectImages } from '../data/images.js';
import { buildCollection } from '../src/indexer/build.js';
import type { Collection } from '../src/indexer/collection.js';
import { imageItems } from '../src/indexer/items.js';
import { evaluate, formatEvalTable } from '../src/search/eval.js';
import { exactKnn } from '../src/indexer/exact.js';
import { backend, digits, smallModel, tmpDir } from './helpers.js';

const items = digits(600);
const queries = digits(60, 'test');
let c: Collection;

before(async () => {
  await backend();
  const model = await smallModel(items, { epochs: 15 });
  c = await buildCollection(model, imageItems(items), { dataDir: tmpDir(), name: 'e', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true });
  model.dispose();
});
after(() => c.close());

describe('evaluate', () => {
  it('reports the four methods, pixel precision as a direct brute-force count, and near-perfect HNSW recall', () => {
    const r = evaluate(c, { n: 60, keys: queries.keys, labels: queries.labels, groups: null, input: queries.pixels, raw: queries.pixels }, { k: 10, quiet: true });
    assert.deepEqual(r.rows.map((x) => x.method.split(' ')[0]), ['codes', 'codes', 'HNSW', 'pixels', 'PCA']);
    let hits = 0;
    const raw = c.rawMatrix();
    const labels = c.itemRows().map((m) => m.label);
    for (let i = 0; i < 60; i++) {
      for (const h of exactKnn(raw.data, 784, queries.pixels.subarray(i * 784, (i + 1) * 784), 10, 'l2')) if (labels[h.index] === queries.labels[i]) hits++;
    }
    const pixel = r.rows.find((x) => x.method.startsWith('pixels'))!;
    assert.ok(Math.abs(pixel.precision - hits / 600) < 1e-9);
    const hnsw = r.rows[0]!;
    assert.ok(hnsw.recall! >= 0.95, `recall ${hnsw.recall}`);
    assert.equal(r.rows[1]!.bytesPerItem, 32);
    assert.equal(pixel.bytesPerItem, 3136);
    // Labels of real digits: every method is far above chance (0.1), even a briefly trained 8-d code.
    assert.ok(r.rows.every((x) => x.precision > 0.3), JSON.stringify(r.rows));
    assert.match(formatEvalTable(r), /\| method \| P@10 \| mAP@10 \|/);
  });

  it('never counts a query as its own neighbour', () => {
    const idx = Array.from({ length: 50 }, (_, i) => i * 12);
    const own = selectImages(items, idx);
    const r = evaluate(c, { n: 50, keys: own.keys, labels: own.labels, groups: null, input: own.pixels, raw: own.pixels }, { k: 1, quiet: true });
    const pixel = r.rows.find((x) => x.method.startsWith('pixels'))!;
    // Counting itself, every query would score P@1 = 1; the nearest other item is what must be scored.
    const raw = c.rawMatrix();
    const keys = c.itemRows().map((m) => m.key);
    const labels = c.itemRows().map((m) => m.label);
    let hits = 0;
    idx.forEach((_, i) => {
      const [h] = exactKnn(raw.data, 784, own.pixels.subarray(i * 784, (i + 1) * 784), 1, 'l2', (j) => keys[j] === own.keys[i]);
      if (labels[h!.index] === own.labels[i]) hits++;
    });
    assert.ok(Math.abs(pixel.precision - hits / 50) < 1e-9);
    assert.ok(pixel.precision < 1);
  });
});
