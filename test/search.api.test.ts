import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type express from 'express';
import { selectImages } from '../data/images.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { textItemBody } from '../src/search/schemas.js';
import { createApp } from '../src/search/app.js';
import { SearchEngine } from '../src/search/engine.js';
import { pngBomb, backend, digits, pngOf, smallModel, tmpDir } from './helpers.js';

const set = digits(300);
const KEY = 'secret-key';
let app: express.Express;
let engine: SearchEngine;
const png = (i: number) => pngOf(set.pixels.subarray(i * 784, (i + 1) * 784), 28, 28);

before(async () => {
  await backend();
  const dataDir = tmpDir();
  const model = await smallModel(set, { epochs: 2 });
  (await buildCollection(model, imageItems(selectImages(set, Array.from({ length: 250 }, (_, i) => i))), { dataDir, name: 'digits', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
  model.dispose();
  engine = new SearchEngine({ dataDir, quiet: true });
  app = createApp({ engine, apiKey: KEY, maxUploadBytes: 64 * 1024, backend: 'test' });
});
after(() => engine.close());

describe('GET routes', () => {
  it('/api/health answers ok', async () => {
    const r = await request(app).get('/api/health').expect(200);
    assert.equal(r.body.status, 'ok');
    assert.equal(r.body.collections, 1);
  });

  it('/api/collections lists the collection with its count and code size', async () => {
    const r = await request(app).get('/api/collections').expect(200);
    assert.deepEqual(r.body.collections.map((c: { name: string; count: number; codeDim: number }) => [c.name, c.count, c.codeDim]), [['digits', 250, 8]]);
  });

  it('/api/collections/:c returns the manifest; unknown collection is 404', async () => {
    const r = await request(app).get('/api/collections/digits').expect(200);
    assert.equal(r.body.manifest.hnsw.M, 16);
    const e = await request(app).get('/api/collections/nope').expect(404);
    assert.equal(e.body.error.code, 'COLLECTION_NOT_FOUND');
  });

  it('/items/:key returns the item and its code; unknown key is 404', async () => {
    const r = await request(app).get(`/api/collections/digits/items/${set.keys[3]}`).expect(200);
    assert.equal(r.body.label, set.labels[3]);
    assert.equal(r.body.code.length, 8);
    const e = await request(app).get('/api/collections/digits/items/none').expect(404);
    assert.equal(e.body.error.code, 'ITEM_NOT_FOUND');
  });

  it('/items/:key/thumbnail.png, reconstruction.png and preview are 28x28 PNGs for digits', async () => {
    for (const p of ['thumbnail.png', 'reconstruction.png', 'preview']) {
      const r = await request(app).get(`/api/collections/digits/items/${set.keys[3]}/${p}`).expect(200).expect('content-type', /png/);
      const body = r.body as Buffer;
      assert.equal(body.subarray(1, 4).toString(), 'PNG');
      assert.equal(body.readUInt32BE(16), 28);
    }
  });

  it('/neighbors returns k hits without the query, and with compare=pixel both lists, overlap and precision', async () => {
    const key = set.keys[40]!;
    const r = await request(app).get(`/api/collections/digits/items/${key}/neighbors?k=10&compare=pixel`).expect(200);
    assert.equal(r.body.codes.hits.length, 10);
    assert.equal(r.body.baseline.hits.length, 10);
    assert.equal(r.body.baseline.method, 'pixel-exact');
    assert.ok(r.body.codes.hits.every((h: { key: string }) => h.key !== key));
    assert.ok(r.body.baseline.hits.every((h: { key: string }) => h.key !== key));
    assert.deepEqual(r.body.codes.hits.map((h: { rank: number }) => h.rank), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const d = r.body.baseline.hits.map((h: { distance: number }) => h.distance);
    assert.deepEqual(d, [...d].sort((a: number, b: number) => a - b));
    const own = r.body.baseline.hits.filter((h: { label: string }) => h.label === set.labels[40]).length / 10;
    assert.equal(r.body.baseline.precision, own);
    assert.ok(r.body.overlap >= 0 && r.body.overlap <= 1);
    assert.ok(r.body.codes.hits[0].thumbnail.endsWith('/preview'));
  });

  it('rejects k out of range, an unknown parameter and the baseline of the other kind (tfidf on images) with 400', async () => {
    for (const q of ['k=0', 'k=101', 'k=abc', 'compare=words', 'compare=tfidf', 'kk=3', 'k=3&k=4', 'rerank=20&feedback=3', 'feedback=x']) {
      const r = await request(app).get(`/api/collections/digits/items/${set.keys[1]}/neighbors?${q}`).expect(400);
      assert.ok(['K_OUT_OF_RANGE', 'INVALID_ARGUMENT'].includes(r.body.error.code), q);
    }
    // a search by code has no baseline column, yet a baseline of the other kind is refused there too
    const twice = await request(app).get(`/api/collections/digits/items/${set.keys[1]}/neighbors?k=3&k=4`).expect(400);
    assert.match(twice.body.error.message, /'k' is given more than once/);
    const byCode = await request(app).post('/api/collections/digits/search?compare=tfidf').send({ code: Array(8).fill(0.5) }).expect(400);
    assert.equal(byCode.body.error.code, 'INVALID_ARGUMENT');
    await request(app).post('/api/collections/digits/search?compare=pixel').send({ code: Array(8).fill(0.5) }).expect(200);
  });

  it('refuses any query parameter on the routes that take none, where it used to pass unread', async () => {
    const item = `/api/collections/digits/items/${set.keys[3]}`;
    for (const path of ['/api/health', '/api/collections', '/api/collections/digits', '/api/collections/digits/random', '/api/collections/digits/map', '/api/collections/digits/labels', item, `${item}/preview`, `${item}/thumbnail.png`, `${item}/reconstruction.png`]) {
      await request(app).get(path).expect(200);
      const r = await request(app).get(`${path}?label=3`).expect(400);
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT', path);
    }
    const d = await request(app).post('/api/collections/digits/denoise?format=jpeg').attach('image', png(3), 'q.png').expect(400);
    assert.equal(d.body.error.code, 'INVALID_ARGUMENT');
    // keys the qs parser would turn into arrays or objects, or drop, reach the schemas as they are
    for (const q of ['=1', '__proto__=1', 'constructor[prototype]=1', 'x=1']) {
      for (const path of ['/api/health', '/api/openapi.json']) {
        const r = await request(app).get(`${path}?${q}`).expect(400);
        assert.equal(r.body.error.code, 'INVALID_ARGUMENT', `${path}?${q}`);
      }
    }
    const arr = await request(app).get(`/api/collections/digits/items/${set.keys[1]}/neighbors?k[]=3`).expect(400);
    assert.match(arr.body.error.message, /unknown query parameter 'k\[\]'/);
  });

  it('says when a re-ranked ranking ended with its shortlist, and only then', async () => {
    const at = (q: string) => request(app).get(`/api/collections/digits/items/${set.keys[1]}/neighbors?rerank=20&${q}`).expect(200);
    // 20 rows less the query's own: pages 1–15 and 16–19
    const mid = await at('k=5&offset=10');
    assert.equal(mid.body.codes.more, true);
    assert.equal(mid.body.codes.shortlist, undefined);
    const last = await at('k=5&offset=15');
    assert.equal(last.body.codes.hits.length, 4);
    assert.equal(last.body.codes.shortlist, 20);
    // a filter that lets fewer rows through than the shortlist ends the ranking itself
    const few = set.keys.slice(0, 250).filter((_, i) => set.labels[i] === '0').length;
    assert.ok(few < 40, `${few}`);
    const filtered = await at(`k=50&label=0`);
    assert.equal(filtered.body.codes.hits.length, few - (set.labels[1] === '0' ? 1 : 0));
    assert.equal(filtered.body.codes.shortlist, undefined);
    const full = await request(app).get(`/api/collections/digits/items/${set.keys[1]}/neighbors?rerank=1000&k=100&offset=900`).expect(200);
    assert.equal(full.body.codes.shortlist, undefined, 'the collection ends before a 1000-row shortlist');
  });

  it('takes a multipart text, refuses it beside an image, and says what a JSON array should have been', async () => {
    const both = await request(app).post('/api/collections/digits/search').attach('image', png(3), 'q.png').field('text', 'three').expect(400);
    assert.match(both.body.error.message, /not both/);
    const twice = await request(app).post('/api/collections/digits/search').field('text', 'a').field('text', 'b').expect(400);
    assert.match(twice.body.error.message, /'text' is given more than once/);
    // a text sent as a file part is told to send the words as a plain field; another file part, to use `image`
    const textFile = await request(app).post('/api/collections/digits/search').attach('text', Buffer.from('three'), 'q.txt').expect(400);
    assert.equal(textFile.body.error.code, 'INVALID_ARGUMENT');
    assert.match(textFile.body.error.message, /field `text` was sent as a file/);
    const photo = await request(app).post('/api/collections/digits/search').attach('photo', png(3), 'q.png').expect(400);
    assert.match(photo.body.error.message, /multipart field `image` \(got 'photo'\)/);
    const other = await request(app).post('/api/collections/digits/search').attach('image', png(3), 'q.png').field('key', 'x').expect(400);
    assert.match(other.body.error.message, /unknown field 'key'/);
    // a multipart text is a text query: an image collection refuses it as it refuses JSON text
    const text = await request(app).post('/api/collections/digits/search').field('text', 'three').expect(400);
    const json = await request(app).post('/api/collections/digits/search').send({ text: 'three' }).expect(400);
    assert.equal(text.body.error.message, json.body.error.message);
    const list = await request(app).post('/api/collections/digits/search').send([{ code: Array(8).fill(0.5) }]).expect(400);
    assert.match(list.body.error.message, /JSON array.*\/search\/batch/);
    const key = await request(app).post('/api/collections/digits/search').send({ key: set.keys[0] }).expect(400);
    assert.equal(key.body.error.code, 'INVALID_ARGUMENT');
    assert.ok(key.body.error.message.includes(`GET /api/collections/digits/items/${encodeURIComponent(set.keys[0]!)}/neighbors`), key.body.error.message);
    const batchList = await request(app).post('/api/collections/digits/search/batch').send([{ key: set.keys[0] }]).expect(400);
    assert.equal(batchList.body.error.code, 'INVALID_ARGUMENT');
    assert.match(batchList.body.error.message, /\{"queries": \[\.\.\.\]\}/);
  });

  it('takes a multipart text as long as a JSON one, and names the limit past it', async () => {
    // 70,000 characters: over the 64 KiB field limit multipart had, under the 100,000-character limit of JSON texts
    const long = 'three '.repeat(70_000 / 6);
    const multipart = await request(app).post('/api/collections/digits/search').field('text', long).expect(400);
    const json = await request(app).post('/api/collections/digits/search').send({ text: long }).expect(400);
    assert.equal(multipart.body.error.code, json.body.error.code);
    assert.equal(multipart.body.error.message, json.body.error.message);
    const huge = await request(app).post('/api/collections/digits/search').field('text', 'x'.repeat(400_000)).expect(413);
    assert.equal(huge.body.error.code, 'PAYLOAD_TOO_LARGE');
    assert.match(huge.body.error.message, /100,000 characters/);
  });

  it('a batch sent as a multipart form is a 415 that says a batch is JSON', async () => {
    const r = await request(app).post('/api/collections/digits/search/batch').attach('image', png(3), 'q.png').expect(415);
    assert.equal(r.body.error.code, 'UNSUPPORTED_MEDIA');
  });

  it('unknown API routes are JSON 404s', async () => {
    const r = await request(app).get('/api/nothing').expect(404);
    assert.equal(r.body.error.code, 'NOT_FOUND');
  });

  it('a route asked with a method it does not serve is a 405 that lists the methods it does', async () => {
    const get = await request(app).get('/api/collections/digits/search').expect(405).expect('allow', 'POST');
    assert.equal(get.body.error.code, 'METHOD_NOT_ALLOWED');
    await request(app).put(`/api/collections/digits/items/${set.keys[3]}`).expect(405).expect('allow', 'DELETE, GET, HEAD');
    await request(app).delete('/api/collections/digits').expect(405).expect('allow', 'GET, HEAD');
    await request(app).get('/api/collections/digits/items').expect(405).expect('allow', 'POST');
    // OPTIONS lists the methods of every router that serves the path
    await request(app).options(`/api/collections/digits/items/${set.keys[3]}`).expect(204).expect('allow', 'DELETE, GET, HEAD, OPTIONS');
  });
});

describe('POST /api/collections/:c/search', () => {
  it('finds the stored twin of an uploaded image first, with its reconstruction', async () => {
    const r = await request(app).post('/api/collections/digits/search?k=5&compare=pixel').attach('image', png(12), 'q.png').expect(200);
    assert.equal(r.body.codes.hits[0].key, set.keys[12]);
    assert.equal(r.body.baseline.hits[0].key, set.keys[12]);
    assert.ok(r.body.baseline.hits[0].distance < 0.1);
    assert.match(r.body.reconstruction, /^data:image\/png;base64,/);
  });

  it('searches by a raw code; a code of the wrong size is 400 INVALID_DIM', async () => {
    const item = await request(app).get(`/api/collections/digits/items/${set.keys[8]}`);
    const r = await request(app).post('/api/collections/digits/search').send({ code: item.body.code }).expect(200);
    assert.equal(r.body.codes.hits[0].key, set.keys[8]);
    const e = await request(app).post('/api/collections/digits/search').send({ code: [1, 2, 3] }).expect(400);
    assert.equal(e.body.error.code, 'INVALID_DIM');
  });

  it('answers 415 for a non-image upload, 400 for an empty body and bad JSON; 413 for an oversized upload', async () => {
    const a = await request(app).post('/api/collections/digits/search').attach('image', Buffer.from('hello, not an image'), 'x.png').expect(415);
    assert.equal(a.body.error.code, 'UNSUPPORTED_IMAGE');
    const b = await request(app).post('/api/collections/digits/search').send({}).expect(400);
    assert.equal(b.body.error.code, 'INVALID_ARGUMENT');
    const c = await request(app).post('/api/collections/digits/search').set('content-type', 'application/json').send('{"code": [1,').expect(400);
    assert.equal(c.body.error.code, 'INVALID_ARGUMENT');
    const d = await request(app).post('/api/collections/digits/search').attach('image', Buffer.alloc(100 * 1024, 1), 'big.png').expect(413);
    assert.equal(d.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('answers 400 IMAGE_TOO_LARGE for a decompression bomb, before decoding it', async () => {
    const r = await request(app).post('/api/collections/digits/search').attach('image', pngBomb(30000, 30000), 'bomb.png').expect(400);
    assert.equal(r.body.error.code, 'IMAGE_TOO_LARGE');
  });

  it('accepts a wide image far over the old 4096 px side limit', async () => {
    const sharp = (await import('sharp')).default;
    const wide = await sharp({ create: { width: 6000, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
    const r = await request(app).post('/api/collections/digits/search').attach('image', wide, 'wide.png').expect(200);
    assert.equal(r.body.codes.hits.length, 10);
  });

  it('answers 404 for an unknown collection', async () => {
    const r = await request(app).post('/api/collections/nope/search').attach('image', png(1), 'q.png').expect(404);
    assert.equal(r.body.error.code, 'COLLECTION_NOT_FOUND');
  });
});

describe('write routes', () => {
  it('need the bearer key: 401 without or with a wrong one', async () => {
    await request(app).post('/api/collections/digits/items').attach('image', png(260), 'a.png').field('key', 'up-1').expect(401);
    await request(app).delete(`/api/collections/digits/items/${set.keys[0]}`).set('authorization', 'Bearer wrong').expect(401);
  });

  it('add an uploaded image that is then found, and delete it', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const r = await request(app).post('/api/collections/digits/items').set(auth).field('key', 'up-1').field('label', set.labels[260]!).attach('image', png(260), 'a.png').expect(201);
    assert.equal(r.body.count, 251);
    const s = await request(app).post('/api/collections/digits/search?k=1').attach('image', png(260), 'q.png').expect(200);
    assert.equal(s.body.codes.hits[0].key, 'up-1');
    const dup = await request(app).post('/api/collections/digits/items').set(auth).field('key', 'up-1').attach('image', png(261), 'a.png').expect(409);
    assert.equal(dup.body.error.code, 'DUPLICATE_KEY');
    // replace=true answers 200 when it replaced an item, 201 when the key was new
    const rep = await request(app).post('/api/collections/digits/items?replace=true').set(auth).field('key', 'up-1').attach('image', png(261), 'a.png').expect(200);
    assert.deepEqual(rep.body, { key: 'up-1', count: 251, replaced: true });
    const fresh = await request(app).post('/api/collections/digits/items?replace=true').set(auth).field('key', 'up-2').field('label', '').attach('image', png(262), 'a.png').expect(201);
    assert.deepEqual(fresh.body, { key: 'up-2', count: 252, replaced: false });
    // replace takes true or false only; a key with a control character is refused; an empty label is none
    await request(app).post('/api/collections/digits/items?replace=yes').set(auth).field('key', 'up-1').attach('image', png(261), 'a.png').expect(400);
    await request(app).post('/api/collections/digits/items').set(auth).field('key', 'a\tb').attach('image', png(261), 'a.png').expect(400);
    const blank = await request(app).post('/api/collections/digits/items').set(auth).field('key', '   ').attach('image', png(261), 'a.png').expect(400);
    assert.equal(blank.body.error.code, 'INVALID_ARGUMENT');
    assert.match(blank.body.error.message, /only blank space/);
    // JSON can spell a lone surrogate, which no later request could ask for: refused where the key enters
    assert.match(textItemBody.safeParse({ key: 'a\ud800', text: 'words' }).error?.issues[0]?.message ?? '', /lone UTF-16 surrogate/);
    assert.ok(textItemBody.safeParse({ key: 'a\ud83d\ude00', text: 'words' }).success, 'a pair of surrogates is one character');
    // keys that print as nothing, reorder a line, or carry the mark of bytes that were not UTF-8 are refused
    for (const key of ['\u200b', '\u00ad\u0301', 'x\u202ey', 'x\u0085y', 'x\u2028y', 'ok\ufffd']) assert.equal(textItemBody.safeParse({ key, text: 'words' }).success, false, JSON.stringify(key));
    for (const key of ['\u{1f468}\u200d\u{1f469}\u200d\u{1f467}.png', '日本', 'é x']) assert.ok(textItemBody.safeParse({ key, text: 'words' }).success, key);
    // a numeric label or group is kept as its text, as a jsonl: build keeps it
    assert.deepEqual(textItemBody.parse({ key: 'k', text: 'words', label: 7, group: 2.5 }), { key: 'k', text: 'words', label: '7', group: '2.5' });
    assert.equal((await request(app).get('/api/collections/digits/items/up-2').expect(200)).body.label, null);
    await request(app).delete('/api/collections/digits/items/up-2').set(auth).expect(200);
    await request(app).delete('/api/collections/digits/items/up-1').set(auth).expect(200);
    await request(app).get('/api/collections/digits/items/up-1').expect(404);
    await request(app).delete('/api/collections/digits/items/up-1').set(auth).expect(404);
  });

  it('are off (403) when no API key is configured', async () => {
    const open = createApp({ engine });
    const r = await request(open).delete(`/api/collections/digits/items/${set.keys[0]}`).expect(403);
    assert.equal(r.body.error.code, 'WRITES_DISABLED');
  });
});
