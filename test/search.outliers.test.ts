import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import Database from 'better-sqlite3';
import { PNG } from 'pngjs';
import type express from 'express';
import { selectImages, type ImageSet } from '../data/images.js';
import { loadBrownPieces } from '../data/brown.js';
import type { TrainedModel } from '../src/encoder/model.js';
import { fitTextModel, textVectors, vectorizerOf } from '../src/encoder/text.js';
import { buildCollection } from '../src/indexer/build.js';
import { Collection, type ItemInput } from '../src/indexer/collection.js';
import { imageItems, textCollectionSettings, textItems } from '../src/indexer/items.js';
import { createApp } from '../src/search/app.js';
import { DUPLICATE_LIMIT, findDuplicates } from '../src/search/duplicates.js';
import { SearchEngine } from '../src/search/engine.js';
import { auroc } from '../src/search/outlier-eval.js';
import { cutExcerpts, EXCERPT_COUNT, MIN_EXCERPTS } from '../src/search/excerpts.js';
import { itemScores, novelty, OUTLIER_SCORES, outliers, percentileOf } from '../src/search/outliers.js';
import { backend, digits, pngOf, smallModel, tmpDir } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const N = 400;
const set = digits(N);
/** Digits drawn white on black turned black on white: nothing like the collection, but the same size. */
const inverted = (i: number) => Uint8Array.from(set.pixels.subarray(i * 784, (i + 1) * 784), (v) => 255 - v);
const ODD = ['odd-0', 'odd-1', 'odd-2'];
const oddItems = (): ItemInput[] => ODD.map((key, j) => ({ key, label: null, uri: null, input: inverted(j * 7), raw: inverted(j * 7), thumb: null }));
/** How many of a collection's excerpts of `words` words hold no word of its model's vocabulary (left out of the scale). */
const excerptsWithoutWords = (c: Collection, words: number) => textVectors(c.model, cutExcerpts(c, itemScores(c).ids, words).texts).empty.length;
const settings = { kind: 'image' as const, space: 'l2' as const, rawDim: 784, rawType: 'u8' as const, params: {}, quiet: true };

let dataDir: string;
let model: TrainedModel;
let engine: SearchEngine;
let app: express.Express;

before(async () => {
  await backend();
  dataDir = tmpDir();
  model = await smallModel(set, { epochs: 3 });
  const c = await buildCollection(model, imageItems(set), { dataDir, name: 'd', ...settings });
  await c.add(oddItems());
  c.close();
  engine = new SearchEngine({ dataDir, quiet: true, maxK: 100 });
  app = createApp({ engine, backend: 'test' });
});
after(async () => {
  await engine.close();
  model.dispose();
});

describe('outlier scores', () => {
  it('puts the planted odd items at the top by every score, worst first', async () => {
    const c = await engine.collection('d');
    for (const score of OUTLIER_SCORES) {
      const top = outliers(c, { score, top: 5 }).items;
      for (const k of ODD) assert.ok(top.slice(0, 5).some((it) => it.key === k), `${score}: ${k} not in ${top.map((t) => t.key).join(', ')}`);
      for (let i = 1; i < top.length; i++) assert.ok(top[i - 1]!.score >= top[i]!.score);
      assert.ok(top[0]!.percentile > 0.98);
    }
  });

  it('combines the three scores as the mean of their percentiles among the items', async () => {
    const s = itemScores(await engine.collection('d'));
    const parts = ['reconstruction', 'neighbors', 'raw'] as const;
    s.values.combined.forEach((v, i) => {
      const want = parts.reduce((t, m) => t + percentileOf(s.sorted[m], s.values[m][i]!), 0) / 3;
      assert.ok(Math.abs(v - want) < 1e-6, `item ${i}: ${v} vs ${want}`);
    });
  });

  it('stores each item’s reconstruction error at build and add, and keeps it through reopen, remove and replace', async () => {
    const dir = tmpDir();
    const small = selectImages(set, Array.from({ length: 60 }, (_, i) => i));
    let c = await buildCollection(model, imageItems(small), { dataDir: dir, name: 's', ...settings });
    const expected = model.reconstructionErrors(small.pixels, 60);
    const stored = c.reconErrors();
    assert.equal(stored.data.length, 60);
    stored.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `item ${i}: ${v} vs ${expected[i]}`));
    c.close();
    c = await Collection.open(dir, 's', { quiet: true });
    assert.deepEqual(Array.from(c.reconErrors().data), Array.from(stored.data));
    const key = small.keys[5]!;
    const before = itemScores(c).values.reconstruction[5]!;
    await c.add([{ key, label: null, uri: null, input: inverted(5), raw: inverted(5), thumb: null }], { replace: true });
    await c.remove([small.keys[0]!]);
    const after = c.reconErrors();
    assert.equal(after.data.length, 59);
    const replaced = after.data[after.ids.indexOf(c.item(key).id)]!;
    assert.ok(Math.abs(replaced - model.reconstructionErrors(inverted(5), 1)[0]!) < 1e-5);
    assert.ok(replaced > before, 'an inverted digit is harder to reconstruct than the digit');
    // a second process's view after the writes reads the same stored values
    const other = await Collection.open(dir, 's', { quiet: true });
    assert.deepEqual(Array.from(other.reconErrors().data), Array.from(after.data));
    assert.equal(outliers(other, { score: 'reconstruction', top: 1 }).items[0]!.key, key);
    other.close();
    c.close();
  });

  it('opens a catalogue written before items were scored: the column is added, old items are unscored, new ones scored', async () => {
    const dir = tmpDir();
    const small = selectImages(set, Array.from({ length: 40 }, (_, i) => i));
    const c = await buildCollection(model, imageItems(small), { dataDir: dir, name: 'old', ...settings });
    const file = c.paths.catalogue;
    c.close();
    const db = new Database(file);
    db.exec('ALTER TABLE items DROP COLUMN recon');
    db.close();
    const reopened = await Collection.open(dir, 'old', { quiet: true });
    assert.ok(Array.from(reopened.reconErrors().data).every(Number.isNaN));
    await reopened.add(oddItems());
    assert.equal(outliers(reopened, { score: 'reconstruction', top: 10 }).count, ODD.length);
    assert.equal(outliers(reopened, { score: 'combined', top: 100 }).count, 40 + ODD.length);
    // an unscored item's combined score is the mean of the two percentiles it has
    const s = itemScores(reopened);
    const half = (m: 'neighbors' | 'raw') => percentileOf(s.sorted[m], s.values[m][0]!) / 2;
    assert.ok(Math.abs(s.values.combined[0]! - (half('neighbors') + half('raw'))) < 1e-6);
    reopened.close();
  });

  it('never reads labels: the same items under other labels score and group the same', async () => {
    const dir = tmpDir();
    const shuffled: ImageSet = { ...set, labels: set.labels.map((_, i) => (i % 3 === 0 ? null : `x${(i * 7) % 5}`)) };
    const a = await buildCollection(model, imageItems(set), { dataDir: dir, name: 'a', ...settings });
    const b = await buildCollection(model, imageItems(shuffled), { dataDir: dir, name: 'b', ...settings });
    const strip = (l: ReturnType<typeof outliers>) => l.items.map(({ label: _l, ...rest }) => rest);
    assert.deepEqual(strip(outliers(a, { top: 50 })), strip(outliers(b, { top: 50 })));
    assert.deepEqual(findDuplicates(a).groups, findDuplicates(b).groups);
    a.close();
    b.close();
  });

  it('computes AUROC with ties counted half', () => {
    assert.equal(auroc([1, 2, 3, 4], [false, false, true, true]), 1);
    assert.equal(auroc([4, 3, 2, 1], [false, false, true, true]), 0);
    assert.equal(auroc([1, 1, 1, 1], [false, true, false, true]), 0.5);
    assert.equal(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75);
  });
});

describe('GET /outliers and novelty of a query', () => {
  it('lists the most unusual items with their scores, thumbnails and reconstructions', async () => {
    const r = await request(app).get('/api/collections/d/outliers?top=3&score=reconstruction').expect(200);
    assert.equal(r.body.items.length, 3);
    assert.equal(r.body.count, N + ODD.length);
    assert.deepEqual([...r.body.items.map((it: { key: string }) => it.key)].sort(), ODD);
    const it = r.body.items[0];
    await request(app).get(it.thumbnail).expect(200).expect('content-type', /image/);
    await request(app).get(it.reconstructionImage).expect(200).expect('content-type', 'image/png');
    const page2 = await request(app).get('/api/collections/d/outliers?top=3&offset=3&score=reconstruction').expect(200);
    assert.equal(page2.body.items[0].rank, 4);
  });

  it('refuses bad options with 400', async () => {
    for (const q of ['score=loudest', 'top=0', 'top=5000', 'offset=-1', 'top=', 'colour=red']) {
      const r = await request(app).get(`/api/collections/d/outliers?${q}`).expect(400);
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT', q);
    }
    await request(app).get('/api/collections/nope/outliers').expect(404);
  });

  it('reports how unusual an uploaded query is: an inverted digit beyond almost every item, a digit of the set far less', async () => {
    const odd = await request(app).post('/api/collections/d/search').attach('image', pngOf(inverted(100), 28, 28), 'odd.png').expect(200);
    const usual = await request(app).post('/api/collections/d/search').attach('image', pngOf(digits(50, 'test').pixels.subarray(0, 784), 28, 28), 'digit.png').expect(200);
    assert.equal(odd.body.novelty.score, 'combined');
    assert.ok(odd.body.novelty.percentile > 0.97, JSON.stringify(odd.body.novelty));
    assert.ok(usual.body.novelty.percentile < odd.body.novelty.percentile);
    assert.ok(odd.body.novelty.reconstruction.value > usual.body.novelty.reconstruction.value);
  });
});

describe('near-duplicates', () => {
  it('groups exact copies always, and near copies (faint noise) within the default thresholds', async () => {
    const dir = tmpDir();
    const base = selectImages(set, Array.from({ length: 120 }, (_, i) => i));
    const items = imageItems(base);
    const copy = (i: number, key: string, change: (px: Uint8Array) => Uint8Array): ItemInput => {
      const px = change(Uint8Array.from(base.pixels.subarray(i * 784, (i + 1) * 784)));
      return { key, label: null, uri: null, input: px, raw: px, thumb: null };
    };
    const noisy = (px: Uint8Array) => px.map((v, j) => Math.max(0, Math.min(255, v + ((j * 37) % 5) - 2)));
    const added = [
      copy(3, 'copy-of-3', (px) => px),
      copy(3, 'copy2-of-3', (px) => px),
      copy(40, 'copy-of-40', (px) => px),
      copy(70, 'noisy-70', noisy),
      copy(90, 'noisy-90', noisy),
    ];
    const c = await buildCollection(model, [...items, ...added], { dataDir: dir, name: 'dups', ...settings });
    const keysOf = (g: { ids: number[] }) => g.ids.map((id) => c.rowOf(id)!.key).sort();
    const d = findDuplicates(c);
    assert.deepEqual(d.thresholds, { code: 'default', raw: 'default' });
    const groups = d.groups.map(keysOf);
    assert.ok(groups.some((g) => g.join() === [base.keys[3]!, 'copy-of-3', 'copy2-of-3'].sort().join()), JSON.stringify(groups));
    assert.ok(groups.some((g) => g.join() === [base.keys[40]!, 'copy-of-40'].sort().join()));
    assert.ok(groups.some((g) => g.includes('noisy-70') && g.includes(base.keys[70]!)), JSON.stringify(groups));
    assert.ok(groups.some((g) => g.includes('noisy-90') && g.includes(base.keys[90]!)), JSON.stringify(groups));
    assert.ok(d.groups.filter((g) => g.exact).length >= 2);
    // thresholds of zero keep the exact copies only
    const strict = findDuplicates(c, { threshold: 0, rawThreshold: 0 });
    assert.deepEqual(strict.groups.map(keysOf), [[base.keys[3]!, 'copy-of-3', 'copy2-of-3'].sort(), [base.keys[40]!, 'copy-of-40'].sort()]);
    assert.ok(strict.groups.every((g) => g.exact));
    assert.deepEqual(strict.thresholds, { code: 'given', raw: 'given' });
    // each threshold says where it came from
    const mixed = findDuplicates(c, { threshold: 0 });
    assert.deepEqual(mixed.thresholds, { code: 'given', raw: 'default' });
    assert.equal(mixed.rawThreshold, d.rawThreshold);
    c.close();
  });

  it('says so when a collection is too small for default thresholds, and still groups its exact copies', async () => {
    const base = selectImages(set, [0, 1, 2]);
    const px = Uint8Array.from(base.pixels.subarray(784, 2 * 784));
    const c = await buildCollection(model, [...imageItems(base), { key: 'copy-of-1', label: null, uri: null, input: px, raw: px, thumb: null }], { dataDir: tmpDir(), name: 'tiny', ...settings });
    const d = findDuplicates(c);
    assert.deepEqual(d.thresholds, { code: 'exact copies only', raw: 'exact copies only' });
    assert.equal(d.threshold, 0);
    assert.deepEqual(d.groups.map((g) => g.ids.map((id) => c.rowOf(id)!.key).sort()), [[base.keys[1]!, 'copy-of-1'].sort()]);
    c.close();
  });

  it('GET /duplicates answers groups with thumbnails, and refuses bad thresholds', async () => {
    const r = await request(app).get('/api/collections/d/duplicates?limit=5').expect(200);
    assert.equal(typeof r.body.threshold, 'number');
    assert.ok(Array.isArray(r.body.groups));
    for (const g of r.body.groups) assert.ok(g.items.every((it: { thumbnail: string }) => it.thumbnail.startsWith('/api/')));
    for (const q of ['threshold=-1', 'threshold=abc', 'limit=0', `limit=${DUPLICATE_LIMIT.max + 1}`, 'raw_threshold=']) {
      assert.equal((await request(app).get(`/api/collections/d/duplicates?${q}`).expect(400)).body.error.code, 'INVALID_ARGUMENT', q);
    }
  });
});

describe('POST /denoise', () => {
  it('answers the model’s reconstruction of the image as a PNG of the collection’s size', async () => {
    const big = await (await import('sharp')).default(pngOf(set.pixels.subarray(0, 784), 28, 28)).resize(200, 200).png().toBuffer();
    const r = await request(app).post('/api/collections/d/denoise').attach('image', big, 'noisy.png').expect(200).expect('content-type', 'image/png');
    const png = PNG.sync.read(r.body as Buffer);
    assert.deepEqual([png.width, png.height], [28, 28]);
    assert.equal(r.headers['x-latentdex-denoising-model'], 'false');
  });

  it('refuses what is not an image, a missing file and a text collection with 4xx', async () => {
    const bad = await request(app).post('/api/collections/d/denoise').attach('image', Buffer.from('not an image at all'), 'x.png');
    assert.ok(bad.status >= 400 && bad.status < 500, String(bad.status));
    assert.match(bad.body.error.code, /INVALID_IMAGE|UNSUPPORTED_IMAGE/);
    assert.equal((await request(app).post('/api/collections/d/denoise').expect(400)).body.error.code, 'INVALID_ARGUMENT');
    const texts = loadBrownPieces(2);
    const small = { ...texts, keys: texts.keys.slice(0, 60), texts: texts.texts.slice(0, 60), labels: texts.labels.slice(0, 60), groups: texts.groups.slice(0, 60), uris: texts.uris.slice(0, 60) };
    const tm = await fitTextModel(small, { hidden: [32], codeDim: 8, epochs: 1, batchSize: 16, quiet: true, vocabulary: { size: 200 } });
    (await buildCollection(tm, textItems(tm, small), { dataDir, name: 'texts', ...textCollectionSettings(tm, small), quiet: true })).close();
    tm.dispose();
    const t = await request(app).post('/api/collections/texts/denoise').attach('image', pngOf(set.pixels.subarray(0, 784), 28, 28), 'a.png').expect(400);
    assert.equal(t.body.error.code, 'INVALID_ARGUMENT');
    // a text item has neither image: both answer 404 alike
    for (const p of ['thumbnail.png', 'reconstruction.png']) {
      assert.equal((await request(app).get(`/api/collections/texts/items/${small.keys[0]}/${p}`).expect(404)).body.error.code, 'NOT_FOUND');
    }
    // a text query's novelty is reported too
    const q = await request(app).post('/api/collections/texts/search').send({ text: small.texts[0] }).expect(200);
    assert.equal(typeof q.body.novelty.percentile, 'number');
  });

  it("places a text query shorter than the items among excerpts of the collection's texts as long as it, not among whole items", async () => {
    const pieces = loadBrownPieces(2).texts;
    const c = await Collection.open(dataDir, 'texts', { quiet: true }); // built above from the first 60 pieces
    try {
      const words = (t: string) => vectorizerOf(c.model).spans(t).spans.length;
      // a text as long as the collection's longest is placed among its items
      const longest = pieces.slice(0, 60).reduce((a, b) => (words(b) > words(a) ? b : a));
      const l = await request(app).post('/api/collections/texts/search').send({ text: longest }).expect(200);
      assert.deepEqual(l.body.novelty.reference, { of: 'items', count: c.count });
      // short excerpts of held-out pieces: on the items' scale a few words look unusual whatever they say
      const onItems: number[] = [];
      const onExcerpts: number[] = [];
      const short: string[] = [];
      for (const piece of pieces.slice(60, 90)) {
        const text = piece.split(/\s+/).slice(5, 11).join(' ');
        const v = textVectors(c.model, [text]);
        if (v.empty.length) continue;
        onItems.push(novelty(c, v.input, v.raw[0]!, c.model.encode(v.input, 1)).percentile!);
        const r = await request(app).post('/api/collections/texts/search').send({ text }).expect(200);
        const n = words(text);
        assert.deepEqual(r.body.novelty.reference, { of: 'excerpts', count: EXCERPT_COUNT - excerptsWithoutWords(c, n), words: n });
        assert.ok(r.body.novelty.reference.count >= MIN_EXCERPTS, JSON.stringify(r.body.novelty.reference));
        assert.equal(typeof r.body.novelty.percentile, 'number');
        onExcerpts.push(r.body.novelty.percentile);
        short.push(text);
      }
      assert.ok(onItems.length >= 10, `${onItems.length} of the excerpts hold words of the vocabulary`);
      // a batch of texts answers each with the novelty it gets alone (key and code queries have none)
      const texts = [longest, short[0]!];
      const b = await request(app).post('/api/collections/texts/search/batch').send({ queries: [...texts.map((text) => ({ text })), { key: c.randomKey() }] });
      assert.equal(b.status, 200, JSON.stringify(b.body));
      for (const [i, text] of texts.entries()) {
        const one = await request(app).post('/api/collections/texts/search').send({ text }).expect(200);
        assert.deepEqual(b.body.results[i].novelty, one.body.novelty);
      }
      assert.equal(b.body.results[2].novelty, undefined);
      const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
      assert.ok(median(onItems) > 0.8, `on the items' scale short texts look unusual: ${onItems}`);
      assert.ok(median(onExcerpts) < 0.8, `on the excerpts' scale they do not: ${onExcerpts}`);
    } finally {
      c.close();
    }
  });
});

describe('latentdex outliers / duplicates / denoise / eval-outliers', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, '--quiet', '--data-dir', dataDir, ...args], { encoding: 'utf8' });

  it('prints the outliers, draws them, lists duplicates, a query\'s novelty, denoises a file and evaluates against labels', async () => {
    const work = tmpDir();
    const o = run(['outliers', '--collection', 'd', '--top', '3', '--json', '--out', path.join(work, 'o.png')]);
    assert.equal(o.status, 0, o.stderr);
    assert.deepEqual((JSON.parse(o.stdout) as { items: { key: string }[] }).items.map((i) => i.key).sort(), ODD);
    assert.ok(PNG.sync.read(fs.readFileSync(path.join(work, 'o.png'))).width > 0);
    const d = run(['duplicates', '--collection', 'd', '--json']);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(typeof (JSON.parse(d.stdout) as { threshold: number }).threshold, 'number');
    assert.match(run(['duplicates', '--collection', 'd']).stdout, /\(default thresholds\)/);
    fs.writeFileSync(path.join(work, 'in.png'), pngOf(set.pixels.subarray(0, 784), 28, 28));
    const n = run(['denoise', '--collection', 'd', '--in', path.join(work, 'in.png'), '--out', path.join(work, 'out.png')]);
    assert.equal(n.status, 0, n.stderr);
    assert.equal(PNG.sync.read(fs.readFileSync(path.join(work, 'out.png'))).width, 28);
    // a query's novelty: the same from the CLI as from the API, and printed under the hits
    fs.writeFileSync(path.join(work, 'odd.png'), pngOf(inverted(100), 28, 28));
    const s = run(['search', '--collection', 'd', '--image', path.join(work, 'odd.png'), '--novelty', '--json']);
    assert.equal(s.status, 0, s.stderr);
    const api = await request(app).post('/api/collections/d/search').attach('image', pngOf(inverted(100), 28, 28), 'odd.png').expect(200);
    assert.deepEqual((JSON.parse(s.stdout) as { novelty: unknown }).novelty, api.body.novelty);
    assert.match(run(['search', '--collection', 'd', '--image', path.join(work, 'odd.png'), '--novelty']).stdout, /^novelty: more unusual than \d+\.\d% of the collection's [\d,]+ items by the combined score/m);
    // without --novelty a search does not score the collection
    assert.equal((JSON.parse(run(['search', '--collection', 'd', '--image', path.join(work, 'odd.png'), '--json']).stdout) as { novelty?: unknown }).novelty, undefined);
    const text = loadBrownPieces(2).texts[0]!; // the first text of the 'texts' collection built above
    const t = run(['search', '--collection', 'texts', '--text', text, '--novelty', '--json']);
    assert.equal(t.status, 0, t.stderr);
    const apiText = await request(app).post('/api/collections/texts/search').send({ text }).expect(200);
    assert.deepEqual((JSON.parse(t.stdout) as { novelty: unknown }).novelty, apiText.body.novelty);
    assert.match(run(['search', '--collection', 'd', '--key', set.keys[0]!, '--novelty']).stderr, /INVALID_ARGUMENT/);
    const e = run(['eval-outliers', '--collection', 'd', '--anomaly', '7', '--json']);
    assert.equal(e.status, 0, e.stderr);
    const rows = (JSON.parse(e.stdout) as { rows: { method: string; auroc: number }[] }).rows;
    assert.deepEqual(rows.map((r) => r.method.split(' ')[0]), ['latentdex', 'latentdex', 'latentdex', 'latentdex', 'PCA-8', 'pixel']);
    for (const r of rows) assert.ok(r.auroc >= 0 && r.auroc <= 1);
    for (const [args, re] of [
      [['denoise', '--collection', 'd', '--in', path.join(work, 'missing.png'), '--out', path.join(work, 'x.png')], /BAD_FILE/],
      [['denoise', '--collection', 'texts', '--in', path.join(work, 'in.png'), '--out', path.join(work, 'x.png')], /INVALID_ARGUMENT/],
      [['outliers', '--collection', 'd', '--score', 'loud'], /score/],
      [['eval-outliers', '--collection', 'd', '--anomaly', 'no-such-label'], /INVALID_ARGUMENT/],
    ] as [string[], RegExp][]) {
      const r = run(args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, re);
    }
  });
});
