import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import SwaggerParser from '@apidevtools/swagger-parser';
import type express from 'express';
import type { ImageSet } from '../data/images.js';
import type { TextSet } from '../data/texts.js';
import { fitTextModel } from '../src/encoder/text.js';
import { buildCollection } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { exactKnn } from '../src/indexer/exact.js';
import { imageItems, textCollectionSettings, textItems } from '../src/indexer/items.js';
import { createApp } from '../src/search/app.js';
import { SearchEngine, type SearchOptions, type SearchResponse } from '../src/search/engine.js';
import { backend, digits, smallModel, tmpDir } from './helpers.js';

// 2,000 digits whose keys name a folder (class-L/part-P/key), so that filters of about 50%, 10% and 1% exist.
const N = 2000;
const base = digits(N);
const set: ImageSet = { ...base, keys: base.keys.map((k, i) => `class-${base.labels[i]}/part-${i % 10}/${k}`) };
const KEY = 'secret';
let dataDir: string;
let engine: SearchEngine;
let app: express.Express;

before(async () => {
  await backend();
  dataDir = tmpDir();
  const model = await smallModel(set, { epochs: 2 });
  (await buildCollection(model, imageItems(set), { dataDir, name: 'd', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
  model.dispose();
  engine = new SearchEngine({ dataDir, quiet: true, maxK: 100 });
  app = createApp({ engine, apiKey: KEY, backend: 'test' });
});
after(() => engine.close());

const keysOf = (r: SearchResponse, col: 'codes' | 'baseline' = 'codes') => (r[col]?.hits ?? []).map((h) => h.key);
const labelOf = (key: string) => key.split('/')[0]!.slice('class-'.length);

/** Exact nearest items among those a test accepts: by code (squared L2) or by pixels, the query item left out. */
async function exactAmong(key: string, accept: (key: string) => boolean, k: number, column: 'code' | 'raw'): Promise<string[]> {
  const c = await engine.collection('d');
  const rows = c.itemRows();
  const m = column === 'code' ? c.codeMatrix() : c.rawMatrix();
  const dim = column === 'code' ? c.manifest.codeDim : 784;
  const self = c.item(key);
  const q = column === 'code' ? c.codeOf(self.id) : Float32Array.from(c.rawOf(self.id) as Uint8Array);
  const allowed = Int32Array.from(rows.flatMap((r, i) => (accept(r.key) && r.id !== self.id ? [i] : [])));
  return exactKnn(m.data, dim, column === 'raw' ? Uint8Array.from(q) : q, k, 'l2', undefined, allowed).map((h) => rows[h.index]!.key);
}

describe('filtered search', () => {
  const query = set.keys[123]!;
  const cases: [string, SearchOptions['filter'], (key: string) => boolean][] = [
    ['labels 0–4 (about 50%)', { labels: ['0', '1', '2', '3', '4'] }, (k) => ['0', '1', '2', '3', '4'].includes(labelOf(k))],
    ['one folder (about 10%)', { prefix: 'class-7/' }, (k) => k.startsWith('class-7/')],
    ['a sub-folder (about 1%)', { prefix: 'class-7/part-3/' }, (k) => k.startsWith('class-7/part-3/')],
    ['label and prefix together', { labels: ['7'], prefix: 'class-7/part-3/' }, (k) => k.startsWith('class-7/part-3/')],
  ];
  for (const [name, filter, accept] of cases) {
    it(`${name}: the filtered graph finds k matching hits, as the exact filtered scan does`, async () => {
      const want = await exactAmong(query, accept, 10, 'code');
      for (const filterPlan of ['graph', 'scan', 'auto'] as const) {
        const r = await engine.byKey('d', query, { k: 10, filter, filterPlan, ef: 200 });
        assert.equal(r.codes.hits.length, 10, `${filterPlan}: k hits`);
        assert.ok(keysOf(r).every(accept), `${filterPlan}: every hit passes the filter`);
        const recall = keysOf(r).filter((k) => want.includes(k)).length / 10;
        assert.ok(filterPlan === 'graph' ? recall >= 0.8 : recall === 1, `${filterPlan}: recall ${recall}`);
        assert.ok(r.filter!.matched > 10);
      }
    });
  }

  it('filters the exact baseline column the same way, exactly', async () => {
    const r = await engine.byKey('d', query, { k: 10, compare: true, filter: { prefix: 'class-2/' } });
    assert.deepEqual(keysOf(r, 'baseline'), await exactAmong(query, (k) => k.startsWith('class-2/'), 10, 'raw'));
  });

  it('a filter nothing matches gives no hits, not an error', async () => {
    const r = await engine.byKey('d', query, { k: 10, compare: true, filter: { labels: ['no-such-label'] } });
    assert.equal(r.filter!.matched, 0);
    assert.deepEqual([r.codes.hits.length, r.baseline!.hits.length, r.next], [0, 0, null]);
  });
});

describe('pages', () => {
  const query = set.keys[700]!;
  it('pages of k are slices of one ranking in both columns, and the cursor walks them', async () => {
    const whole = await engine.byKey('d', query, { k: 50, compare: true });
    const codes: string[] = [];
    const pixels: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await engine.byKey('d', query, { k: 10, compare: true, ...(cursor ? { cursor } : {}) });
      assert.equal(r.offset, page * 10);
      assert.deepEqual(r.codes.hits.map((h) => h.rank), Array.from({ length: 10 }, (_, i) => page * 10 + i + 1));
      codes.push(...keysOf(r));
      pixels.push(...keysOf(r, 'baseline'));
      cursor = r.next ?? undefined;
      assert.ok(cursor);
    }
    assert.deepEqual(codes, keysOf(whole));
    assert.deepEqual(pixels, keysOf(whole, 'baseline'));
    const offset = await engine.byKey('d', query, { k: 10, offset: 30, compare: true });
    assert.deepEqual(keysOf(offset), keysOf(whole).slice(30, 40));
  });

  it('pages stay slices of one ranking past the HNSW breadth, with a re-ranking, and with a threshold', async () => {
    for (const o of [{ ef: 20 }, { maxDistance: 1e9 }] as SearchOptions[]) {
      const whole = await engine.byKey('d', query, { ...o, k: 60, compare: true });
      const pages: string[] = [];
      for (let offset = 0; offset < 60; offset += 15) pages.push(...keysOf(await engine.byKey('d', query, { ...o, k: 15, offset, compare: true })));
      assert.deepEqual(pages, keysOf(whole), JSON.stringify(o));
      assert.equal(new Set(pages).size, pages.length, `${JSON.stringify(o)}: no hit twice`);
    }
    // a re-ranked search ranks its shortlist (rerank=30 rows, the query item among them): its pages end there
    const whole = await engine.byKey('d', query, { rerank: 30, k: 28 });
    const pages: string[] = [];
    let last: SearchResponse | undefined;
    for (let offset = 0; offset < 35; offset += 7) pages.push(...keysOf((last = await engine.byKey('d', query, { rerank: 30, k: 7, offset }))));
    assert.deepEqual(pages, [...keysOf(whole), ...pages.slice(28)]);
    assert.equal(pages.length, 29);
    assert.deepEqual([last!.codes.more, last!.next], [false, null]);
  });

  it('offers no next page past the deepest one a client may ask for', async () => {
    const last = await engine.byKey('d', query, { k: 10, offset: 990 });
    assert.equal(last.codes.more, true);
    assert.equal(last.next, null);
    const bounded = await engine.byKey('d', query, { maxDistance: 1e9 });
    assert.deepEqual([bounded.codes.hits.length, bounded.next], [1000, null]);
  });

  it('pages of a filtered, grouped ranking are its slices too', async () => {
    const o: SearchOptions = { filter: { labels: ['1', '7'] }, groupBy: 'folder', perGroup: 3, compare: true };
    const whole = await engine.byKey('d', query, { ...o, k: 12 });
    const second = await engine.byKey('d', query, { ...o, k: 6, offset: 6 });
    assert.deepEqual(keysOf(second), keysOf(whole).slice(6));
    assert.deepEqual(keysOf(second, 'baseline'), keysOf(whole, 'baseline').slice(6));
  });

  it('a cursor made before a write is refused with STALE_CURSOR; a forged one with INVALID_ARGUMENT', async () => {
    const r = await engine.byKey('d', query, { k: 5 });
    const c = await Collection.open(dataDir, 'd', { quiet: true });
    try {
      await c.remove([set.keys[1999]!]);
    } finally {
      c.close();
    }
    await assert.rejects(engine.byKey('d', query, { k: 5, cursor: r.next! }), { code: 'STALE_CURSOR' });
    await assert.rejects(engine.byKey('d', query, { k: 5, cursor: 'bm90IGEgY3Vyc29y' }), { code: 'INVALID_ARGUMENT' });
    // a cursor of the format before this one (made before an upgrade) is stale, not forged
    const old = Buffer.from(JSON.stringify({ v: 2, g: 1, b: 'x', o: 5, f: 'abc' })).toString('base64url');
    await assert.rejects(engine.byKey('d', query, { k: 5, cursor: old }), { code: 'STALE_CURSOR' });
    await assert.rejects(engine.byKey('d', query, { k: 5, cursor: r.next!, offset: 5 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(engine.byKey('d', query, { k: 10, offset: 995 }), { code: 'INVALID_ARGUMENT' });
  });

  it('a cursor sent with another query or other options than its first page (a dropped filter, another k, no compare) is refused', async () => {
    const first = { k: 5, compare: true, filter: { labels: ['3', '8'] } };
    const r = await engine.byKey('d', query, first);
    assert.ok(r.next);
    for (const other of [{ k: 5, compare: true }, { ...first, k: 6 }, { ...first, compare: false }, { ...first, ef: 300 }, {}]) {
      await assert.rejects(engine.byKey('d', query, { ...other, cursor: r.next }), { code: 'INVALID_ARGUMENT' }, JSON.stringify(other));
    }
    // nor may it page another query's ranking
    const another = (await engine.byKey('d', query, { k: 1 })).codes.hits[0]!.key;
    await assert.rejects(engine.byKey('d', another, { ...first, cursor: r.next }), { code: 'INVALID_ARGUMENT' });
    // the same options in another order, with the filter's labels listed otherwise, are the same request
    const next = await engine.byKey('d', query, { filter: { labels: ['8', '3', '8'] }, compare: true, k: 5, cursor: r.next });
    const whole = await engine.byKey('d', query, { ...first, k: 10 });
    assert.deepEqual(keysOf(next), keysOf(whole).slice(5));
    assert.deepEqual(keysOf(next, 'baseline'), keysOf(whole, 'baseline').slice(5));
  });
});

describe('pages over exact duplicates', () => {
  it('are slices of one ranking in every column although the graph returns any of the tied items', async () => {
    const dir = tmpDir();
    const picks = [...Array.from({ length: 300 }, (_, i) => i), ...Array.from({ length: 40 }, () => 7)];
    const rows = picks.map((i) => i);
    const sel: ImageSet = { ...base, keys: picks.map((i, j) => `${j < 300 ? 'orig' : 'copy'}-${j}`), labels: picks.map((i) => base.labels[i]!), uris: picks.map(() => ''), pixels: new Uint8Array(picks.length * 784) };
    rows.forEach((i, j) => sel.pixels.set(base.pixels.subarray(i * 784, (i + 1) * 784), j * 784));
    const model = await smallModel(sel, { epochs: 1 });
    for (const name of ['dups', 'twin']) (await buildCollection(model, imageItems(sel), { dataDir: dir, name, kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
    model.dispose();
    const e = new SearchEngine({ dataDir: dir, quiet: true, maxK: 100 });
    try {
      for (const compare of [false, true]) {
        const whole = await e.byKey('dups', 'orig-7', { k: 30, compare });
        const pages: SearchResponse[] = [await e.byKey('dups', 'orig-7', { k: 10, compare })];
        for (let i = 0; i < 2; i++) pages.push(await e.byKey('dups', 'orig-7', { k: 10, compare, cursor: pages[i]!.next! }));
        const paged = pages.flatMap((p) => keysOf(p));
        assert.equal(new Set(paged).size, 30, 'no item twice');
        assert.deepEqual(paged, keysOf(whole));
        assert.ok(paged.every((k) => k.startsWith('copy-')), 'the 40 copies come first');
        // a cursor of one collection, sent to another holding the same keys, is refused as a wrong request
        await assert.rejects(e.byKey('twin', 'orig-7', { k: 10, compare, cursor: pages[0]!.next! }), { code: 'INVALID_ARGUMENT' });
      }
    } finally {
      e.close();
    }
  });
});

describe('batches', () => {
  it('answers a batch of keys and codes exactly as one request each', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => set.keys[i * 151]!);
    const o: SearchOptions = { k: 7, compare: true };
    const batch = await engine.batch('d', keys.map((key) => ({ key })), o);
    for (let i = 0; i < keys.length; i++) {
      const one = await engine.byKey('d', keys[i]!, o);
      assert.deepEqual(keysOf(batch[i]!), keysOf(one));
      assert.deepEqual(keysOf(batch[i]!, 'baseline'), keysOf(one, 'baseline'));
      batch[i]!.baseline!.hits.forEach((h, j) => assert.ok(Math.abs(h.distance - one.baseline!.hits[j]!.distance) < 1e-9));
    }
    const c = await engine.collection('d');
    const code = Array.from(c.codeOf(c.item(keys[3]!).id));
    const [byCode] = await engine.batch('d', [{ code }], { k: 5 });
    assert.deepEqual(keysOf(byCode!), keysOf(await engine.byCode('d', code, { k: 5 })));
  });

  it('refuses an empty or oversized batch, and names the query that is wrong', async () => {
    await assert.rejects(engine.batch('d', [], {}), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(engine.batch('d', Array.from({ length: 257 }, () => ({ key: set.keys[0]! })), {}), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(engine.batch('d', [{ key: set.keys[0]! }, { key: 'nope' }], {}), (e: Error & { code?: string }) => e.code === 'ITEM_NOT_FOUND' && /queries\[1\]/.test(e.message));
  });
});

describe('max_distance', () => {
  const query = set.keys[42]!;
  it('returns every baseline hit within the distance, and only those', async () => {
    const ref = await engine.byKey('d', query, { k: 40, compare: true });
    const t = ref.baseline!.hits[24]!.distance;
    const within = ref.baseline!.hits.filter((h) => h.distance <= t).map((h) => h.key);
    const r = await engine.byKey('d', query, { compare: true, baselineMaxDistance: t });
    assert.deepEqual(keysOf(r, 'baseline'), within);
    assert.equal(r.baseline!.more, false);
  });

  it('bounds the codes column by its distance, k caps it and says more follow', async () => {
    const ref = await engine.byKey('d', query, { k: 30 });
    const t = ref.codes.hits[19]!.distance;
    const r = await engine.byKey('d', query, { maxDistance: t });
    assert.ok(r.codes.hits.length >= 20 && r.codes.hits.every((h) => h.distance <= t));
    const capped = await engine.byKey('d', query, { maxDistance: t, k: 5 });
    assert.deepEqual(keysOf(capped), keysOf(r).slice(0, 5));
    assert.equal(capped.codes.more, true);
    await assert.rejects(engine.byKey('d', query, { maxDistance: -1 }), { code: 'INVALID_ARGUMENT' });
  });

  it('a threshold on one column leaves the other at k', async () => {
    const r = await engine.byKey('d', query, { compare: true, maxDistance: 1e9 });
    assert.deepEqual([r.codes.hits.length, r.baseline!.hits.length], [1000, 10]);
    const b = await engine.byKey('d', query, { compare: true, baselineMaxDistance: 1e9, k: 20 });
    assert.deepEqual([b.codes.hits.length, b.baseline!.hits.length], [20, 20]);
    const d = await engine.byKey('d', query, { compare: true, baselineMaxDistance: 1e9 });
    assert.deepEqual([d.codes.hits.length, d.baseline!.hits.length], [10, 1000]);
    await assert.rejects(engine.byKey('d', query, { baselineMaxDistance: 3 }), { code: 'INVALID_ARGUMENT' });
  });
});

describe('group-by', () => {
  const query = set.keys[900]!;
  it('keeps at most per_group hits per label, in ranking order', async () => {
    const plain = await engine.byKey('d', query, { k: 100 });
    const one = await engine.byKey('d', query, { k: 5, groupBy: 'label', compare: true });
    const labels = one.codes.hits.map((h) => h.label);
    assert.equal(new Set(labels).size, labels.length);
    assert.equal(one.codes.hits[0]!.key, plain.codes.hits[0]!.key);
    assert.equal(new Set(one.baseline!.hits.map((h) => h.label)).size, one.baseline!.hits.length);
    // the kept hits are the first of each label in the plain ranking
    const firsts = [...new Map(plain.codes.hits.map((h) => [h.label, h.key] as const).reverse()).values()];
    assert.ok(keysOf(one).every((k) => firsts.includes(k)));
  });

  it('per_group 3 by folder: no folder more than three times', async () => {
    const r = await engine.byKey('d', query, { k: 30, groupBy: 'folder', perGroup: 3 });
    const counts = new Map<string, number>();
    for (const h of r.codes.hits) counts.set(h.group!, (counts.get(h.group!) ?? 0) + 1);
    assert.ok([...counts.values()].every((n) => n <= 3));
    assert.ok(r.codes.hits.every((h) => h.key.startsWith(`${h.group}/`)));
  });
});

describe('HTTP: filters, pages, batches, thresholds', () => {
  const query = encodeURIComponent(set.keys[300]!);
  it('takes repeated labels and a prefix in the query string', async () => {
    const r = await request(app).get(`/api/collections/d/items/${query}/neighbors?k=5&label=3&label=8&compare=pixel`).expect(200);
    assert.ok([...r.body.codes.hits, ...r.body.baseline.hits].every((h: { label: string }) => ['3', '8'].includes(h.label)));
    assert.deepEqual(r.body.filter.labels, ['3', '8']);
    const p = await request(app).get(`/api/collections/d/items/${query}/neighbors?k=5&prefix=${encodeURIComponent('class-5/')}`).expect(200);
    assert.ok(p.body.codes.hits.every((h: { key: string }) => h.key.startsWith('class-5/')));
  });

  it('follows `next` to the following page', async () => {
    const a = await request(app).get(`/api/collections/d/items/${query}/neighbors?k=4`).expect(200);
    const b = await request(app).get(`/api/collections/d/items/${query}/neighbors?k=4&cursor=${a.body.next}`).expect(200);
    const whole = await request(app).get(`/api/collections/d/items/${query}/neighbors?k=8`).expect(200);
    assert.deepEqual([...a.body.codes.hits, ...b.body.codes.hits].map((h: { key: string }) => h.key), whole.body.codes.hits.map((h: { key: string }) => h.key));
  });

  it('answers a batch as the single routes do', async () => {
    const keys = [set.keys[10]!, set.keys[20]!];
    const r = await request(app).post('/api/collections/d/search/batch?k=3&label=1&label=2').send({ queries: keys.map((key) => ({ key })) }).expect(200);
    assert.equal(r.body.results.length, 2);
    for (let i = 0; i < 2; i++) {
      const one = await request(app).get(`/api/collections/d/items/${encodeURIComponent(keys[i]!)}/neighbors?k=3&label=1&label=2`).expect(200);
      assert.deepEqual(r.body.results[i].codes.hits, one.body.codes.hits);
    }
  });

  it('gives 400 with the project error for bad values', async () => {
    const bad = ['offset=-1', 'offset=abc', 'offset=', 'offset=%20', 'k=0x10', 'max_distance=1e', 'compare=true&baseline_max_distance=%20', 'label[x]=1', 'group_by=colour', 'per_group=2', 'max_distance=-0.5', 'max_distance=', 'cursor=garbage', 'k=5&offset=996', 'bogus=1'];
    for (const q of bad) {
      const r = await request(app).get(`/api/collections/d/items/${query}/neighbors?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT', q);
    }
    const tooMany = Array.from({ length: 300 }, (_, i) => `label=${i}`).join('&');
    assert.equal((await request(app).get(`/api/collections/d/items/${query}/neighbors?${tooMany}`)).status, 400);
    for (const body of [{}, { queries: [] }, { queries: [{ key: 1 }] }, { queries: [{ key: 'a', code: [1] }] }, { queries: Array.from({ length: 257 }, () => ({ key: 'a' })) }]) {
      const r = await request(app).post('/api/collections/d/search/batch').send(body);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 60));
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
    }
    assert.equal((await request(app).post('/api/collections/d/search/batch').send({ queries: [{ key: 'nope' }] })).status, 404);
    // a query of two fields, or of another one, is named by its place with what a query is
    for (const q of [{ key: 'x', text: 'y' }, { image: 'abc' }, {}, null, 'c0']) {
      const r = await request(app).post('/api/collections/d/search/batch').send({ queries: [{ key: 'a' }, q] }).expect(400);
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
      assert.match(r.body.error.message, /^queries\[1\] (holds|is).*one of \{"key"/);
    }
  });

  it('lists labels with their counts for the page’s filter', async () => {
    const r = await request(app).get('/api/collections/d/labels').expect(200);
    assert.equal(r.body.labels.reduce((s: number, l: { count: number }) => s + l.count, 0), (await engine.collection('d')).count);
    assert.deepEqual(r.body.groups, []);
  });

  it('serves a valid OpenAPI 3 description of every route', async () => {
    const r = await request(app).get('/api/openapi.json').expect(200);
    const doc = await SwaggerParser.validate(structuredClone(r.body));
    // every route the app serves below /api is described, with each of its methods
    const served = (app as unknown as { _router: { stack: { name: string; handle: { stack?: { route?: { path: string | string[]; methods: Record<string, boolean> } }[] } }[] } })._router.stack
      .filter((l) => l.name === 'router')
      .flatMap((l) => l.handle.stack ?? [])
      .flatMap((l) => (l.route && typeof l.route.path === 'string' ? Object.keys(l.route.methods).map((m) => `${m} /api${(l.route!.path as string).replace(/:(\w+)/g, '{$1}')}`) : []));
    assert.ok(served.length > 15, 'the routers are read');
    const described = new Set(Object.entries(r.body.paths as Record<string, Record<string, unknown>>).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`)));
    assert.deepEqual([...new Set(served)].filter((s) => !described.has(s) && s !== 'get /api/openapi.json'), []);
    const params = (r.body.paths['/api/collections/{c}/items/{key}/neighbors'].get.parameters as { name: string }[]).map((p) => p.name);
    for (const p of ['k', 'offset', 'cursor', 'label', 'group', 'prefix', 'max_distance', 'group_by', 'per_group']) assert.ok(params.includes(p), p);
  });
});

describe('text search by key with the default feedback', () => {
  it('ranks the exact copies of the query item first (its copies are fed back like any row, the item itself is not)', async () => {
    const topics = ['rocket orbit satellite launch', 'bread garlic butter oven', 'goal striker match final'];
    const n = 60;
    const set: TextSet = {
      kind: 'text',
      source: 'copies',
      keys: Array.from({ length: n }, (_, i) => `c${i}`),
      // numbers are no words: the 20 texts of a topic are identical to the model and to TF-IDF
      texts: Array.from({ length: n }, (_, i) => `${topics[i % 3]} number ${i}`),
      labels: Array.from({ length: n }, (_, i) => String(i % 3)),
      uris: Array.from({ length: n }, () => ''),
      groups: Array.from({ length: n }, () => null),
    };
    const dataDir = tmpDir();
    const model = await fitTextModel(set, { hidden: [16], codeDim: 4, epochs: 2, batchSize: 16, quiet: true });
    (await buildCollection(model, textItems(model, set), { dataDir, name: 't', ...textCollectionSettings(model, set), quiet: true })).close();
    model.dispose();
    const e = new SearchEngine({ dataDir, quiet: true });
    try {
      const r = await e.byKey('t', 'c0', { k: 25 });
      assert.match(r.codes.method, /feedback/);
      assert.deepEqual(r.codes.hits.slice(0, 19).map((h) => h.label), Array(19).fill('0'), r.codes.hits.map((h) => `${h.key} ${h.distance}`).join(', '));
      assert.ok(r.codes.hits.slice(0, 19).every((h) => h.distance < 1e-6));
      assert.ok(r.codes.hits.every((h) => h.distance >= 0 && h.key !== 'c0'));
      assert.notEqual(r.codes.hits[19]!.label, '0');
      // copies are at distance 0 (not a float hair away), so a bound of 0 finds exactly them
      const zero = await e.byKey('t', 'c0', { k: 25, maxDistance: 0 });
      assert.equal(zero.codes.hits.length, 19);
      assert.ok(zero.codes.hits.every((h) => h.distance === 0 && h.label === '0'));
    } finally {
      await e.close();
    }
  });
});
