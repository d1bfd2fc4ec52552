import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { selectImages } from '../data/images.js';
import type { TrainedModel } from '../src/encoder/model.js';
import { buildCollection, listCollections } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { hnswFileDim, HnswIndex, HNSW_DEFAULTS } from '../src/indexer/hnsw.js';
import { imageItems } from '../src/indexer/items.js';
import { backend, digits, smallModel, tmpDir } from './helpers.js';

const set = digits(400);
let model: TrainedModel;

before(async () => {
  await backend();
  model = await smallModel(set, { epochs: 1 });
});
after(() => model.dispose());

async function build(dataDir: string, name = 'c', n = 300): Promise<Collection> {
  return buildCollection(model, imageItems(selectImages(set, Array.from({ length: n }, (_, i) => i))), {
    dataDir,
    name,
    kind: 'image',
    space: 'l2',
    rawDim: 784,
    rawType: 'u8',
    params: {},
    quiet: true,
  });
}

describe('buildCollection', () => {
  it('builds a collection that reopens with the same items and answers a search with the item itself first', async () => {
    const dir = tmpDir();
    const c = await build(dir);
    assert.equal(c.count, 300);
    const key = set.keys[17]!;
    const row = c.item(key);
    const hits = c.search(c.codeOf(row.id), 3);
    assert.equal(c.rowOf(hits[0]!.id)!.key, key);
    c.close();
    const again = await Collection.open(dir, 'c');
    assert.equal(again.count, 300);
    assert.equal(again.manifest.codeDim, 8);
    assert.equal(again.item(key).label, set.labels[17]);
    assert.deepEqual(listCollections(dir), ['c']);
    again.close();
  });

  it('refuses to overwrite an existing collection without replace', async () => {
    const dir = tmpDir();
    (await build(dir, 'c', 20)).close();
    await assert.rejects(build(dir, 'c', 20), { code: 'COLLECTION_EXISTS' });
  });

  it('reports an unknown collection with COLLECTION_NOT_FOUND', async () => {
    await assert.rejects(Collection.open(tmpDir(), 'nope'), { code: 'COLLECTION_NOT_FOUND' });
  });
});

describe('Collection#add and #remove', () => {
  it('grows past the initial capacity, rejects duplicate keys unless replacing, and removes', async () => {
    const dir = tmpDir();
    const c = await build(dir, 'c', 100);
    const more = selectImages(set, Array.from({ length: 300 }, (_, i) => 100 + i));
    assert.deepEqual(await c.add(imageItems(more), { quiet: true }), { added: 300, replaced: 0 });
    assert.equal(c.count, 400);
    await assert.rejects(c.add(imageItems(selectImages(set, [5])), { quiet: true }), { code: 'DUPLICATE_KEY' });
    assert.deepEqual(await c.add(imageItems(selectImages(set, [5])), { replace: true, quiet: true }), { added: 0, replaced: 1 });
    assert.equal(c.count, 400);
    assert.equal(await c.remove([set.keys[0]!, set.keys[1]!]), 2);
    await assert.rejects(c.remove(['missing-key']), { code: 'ITEM_NOT_FOUND' });
    assert.equal(c.count, 398);
    const removed = set.keys[0]!;
    const code = model.encode(set.pixels.subarray(0, 784), 1);
    assert.ok(c.search(code, 10).every((h) => c.rowOf(h.id)!.key !== removed));
    c.close();
    const again = await Collection.open(dir, 'c');
    assert.equal(again.count, 398);
    // The replaced item and the two removed ones leave deleted slots until a compaction.
    assert.equal(again.graphSize, 401);
    again.close();
  });

  it('compacts a graph that churns, freeing deleted slots, and every item stays reachable', async () => {
    const c = await build(tmpDir(), 'c', 100);
    let most = 0;
    for (let round = 0; round < 15; round++) {
      const keys = c.itemRows().slice(0, 20).map((r) => r.key);
      await c.remove(keys);
      await c.add(imageItems(selectImages(set, keys.map((k) => set.keys.indexOf(k)))), { quiet: true });
      most = Math.max(most, c.graphSize);
    }
    assert.equal(c.count, 100);
    // 300 deletions in all: the graph was rebuilt once they passed the threshold (256), so it never held them all.
    assert.ok(most < 100 + 300, `graph grew to ${most}`);
    const rows = c.itemRows();
    const found = new Set(c.search(c.codeOf(rows[0]!.id), 100, 200).map((h) => h.id));
    assert.deepEqual([...found].sort((a, b) => a - b), rows.map((r) => r.id).sort((a, b) => a - b));
    c.close();
  });

  it('rejects an item of the wrong dimension with INVALID_DIM and changes nothing', async () => {
    const c = await build(tmpDir(), 'c', 10);
    const bad = { ...imageItems(selectImages(set, [200]))[0]!, raw: new Float32Array(100) };
    await assert.rejects(c.add([bad], { quiet: true }), { code: 'INVALID_DIM' });
    assert.equal(c.count, 10);
    c.close();
  });
});

describe('Collection.open consistency checks', () => {
  it('rebuilds a missing or unreadable graph file from the catalogue', async () => {
    const dir = tmpDir();
    const c = await build(dir, 'c', 30);
    const graphs = () => fs.readdirSync(c.paths.dir).filter((f) => f.startsWith('graph-'));
    const [file] = graphs();
    c.close();
    fs.writeFileSync(path.join(c.paths.dir, file!), 'not a graph');
    const again = await Collection.open(dir, 'c', { quiet: true });
    assert.equal(again.search(again.codeOf(again.item(set.keys[3]!).id), 30).length, 30);
    again.close();
    for (const f of graphs()) fs.rmSync(path.join(c.paths.dir, f));
    const third = await Collection.open(dir, 'c');
    assert.equal(third.rowOf(third.search(third.codeOf(third.item(set.keys[3]!).id), 1)[0]!.id)!.key, set.keys[3]);
    third.close();
  });

  it('keeps a collection whose CURRENT pointer was lost: listed, refused with how to restore it, never swept by a build', async () => {
    const dir = tmpDir();
    const c = await build(dir, 'c', 20);
    const { home, version } = c.paths;
    c.close();
    fs.rmSync(path.join(home, 'CURRENT'));
    assert.deepEqual(listCollections(dir), ['c']);
    await assert.rejects(Collection.open(dir, 'c'), (e: Error & { code?: string }) => e.code === 'CORRUPT_COLLECTION' && e.message.includes(version));
    await assert.rejects(build(dir, 'c', 10), { code: 'COLLECTION_EXISTS' });
    assert.ok(fs.existsSync(path.join(home, version, 'catalogue.db')));
    fs.writeFileSync(path.join(home, 'CURRENT'), `${version}\n`);
    const again = await Collection.open(dir, 'c', { quiet: true });
    assert.equal(again.count, 20);
    again.close();
  });

  it('refuses a model of another code size with MANIFEST_MISMATCH', async () => {
    const dir = tmpDir();
    const c = await build(dir, 'c', 20);
    const modelDir = c.paths.model;
    c.close();
    const other = await smallModel(digits(40), { codeDim: 4, epochs: 1 });
    await other.save(modelDir);
    other.dispose();
    await assert.rejects(Collection.open(dir, 'c'), { code: 'MANIFEST_MISMATCH' });
  });

  it('refuses an index file of another dimension with MANIFEST_MISMATCH', async () => {
    const dir = tmpDir();
    const c = await build(dir, 'c', 20);
    const p = path.join(c.paths.dir, fs.readdirSync(c.paths.dir).find((f) => f.startsWith('graph-'))!);
    c.close();
    const wrong = HnswIndex.create(5, 'l2', 16, HNSW_DEFAULTS);
    wrong.add([1, 2, 3, 4, 5], 1);
    wrong.save(p);
    assert.equal(hnswFileDim(p), 5);
    await assert.rejects(Collection.open(dir, 'c'), { code: 'MANIFEST_MISMATCH' });
  });

  it('never shows a build killed with SIGKILL as a collection, and the next build succeeds', async () => {
    const dir = tmpDir();
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
    const child = spawn(process.execPath, [cli, '-q', '--data-dir', dir, 'build', '--collection', 'k', '--source', 'mnist', '--train-epochs', '1', '--hidden', '32', '--code-dim', '4'], { stdio: 'ignore' });
    // Kill it once its version folder exists, i.e. mid-build.
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        const building = fs.existsSync(path.join(dir, 'k')) && fs.readdirSync(path.join(dir, 'k')).some((f) => f.startsWith('v-'));
        if (building || Date.now() - t0 > 60000) {
          clearInterval(poll);
          child.kill('SIGKILL');
          building ? resolve() : reject(new Error('build never started'));
        }
      }, 5);
    });
    await new Promise((r) => child.on('exit', r));
    assert.deepEqual(listCollections(dir), []);
    await assert.rejects(Collection.open(dir, 'k'), { code: 'COLLECTION_NOT_FOUND' });
    const c = await build(dir, 'k', 20);
    assert.equal(c.count, 20);
    // The killed build's folder is swept: only the live version and its pointer remain.
    assert.deepEqual(fs.readdirSync(path.join(dir, 'k')).sort(), ['CURRENT', c.paths.version]);
    c.close();
  });
});
