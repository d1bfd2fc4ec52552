import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import request from 'supertest';
import { loadDir } from '../data/dir.js';
import { BlobSpool } from '../data/spool.js';
import { decodeImage } from '../data/decode.js';
import { buildCollection } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { imageItemStream } from '../src/indexer/items.js';
import { createApp } from '../src/search/app.js';
import { SearchEngine } from '../src/search/engine.js';
import { imageTargetOf } from '../src/cli/sources.js';
import type { ModelManifest } from '../src/encoder/manifest.js';
import { backend, digits, messyFolder, smallModel, tmpDir, writePngFolder } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const cli = (args: string[], dataDir: string) => spawnSync(process.execPath, [CLI, '--data-dir', dataDir, '-q', ...args], { encoding: 'utf8' });

const folder = tmpDir();
let made: { usable: number; bad: string[] };
/** A skipped file's name as messages print it (control characters escaped). */
const printed = (b: string) => JSON.stringify(b).slice(1, -1);

before(async () => {
  await backend();
  made = await messyFolder(folder);
});

describe('dir: source on a messy folder', () => {
  it('indexes every usable image in colour at 32 px and lists each bad file with its reason', async () => {
    const s = await loadDir(folder, { quiet: true });
    assert.equal(s.keys.length, made.usable);
    assert.equal(s.channels, 3);
    assert.equal(s.width, 32);
    assert.ok(s.pixels instanceof Uint8Array);
    assert.equal(s.pixels.length, made.usable * 32 * 32 * 3);
    assert.deepEqual(s.skipped.map((f) => path.relative(folder, f.path)), made.bad);
    assert.ok(s.skipped.every((f) => f.reason.length > 5));
    assert.match(s.skipped.find((f) => f.path.endsWith('logo.svg'))!.reason, /SVG/);
    assert.ok(s.keys.includes('red/huge-wide.png') && s.keys.includes('blue/rotated.jpg') && s.keys.includes('misc/grey.png'));
    assert.deepEqual(new Set(s.labels), new Set(['red', 'blue', 'misc']));
    s.previews?.close();
  });

  it('with strict, stops at the first bad file with BAD_FILE naming it', async () => {
    await assert.rejects(loadDir(folder, { strict: true, quiet: true }), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && made.bad.some((b) => e.message.includes(printed(b))));
  });

  it('keeps colour in the pixels: a red image is red, a blue one blue', async () => {
    const s = await loadDir(folder, { quiet: true, previews: false });
    const centre = (key: string, ch: number) => s.pixels[s.keys.indexOf(key) * 3072 + (16 * 32 + 16) * 3 + ch]!;
    assert.ok(centre('red/r0.png', 0) > 200 && centre('red/r0.png', 2) < 40);
    assert.ok(centre('blue/b0.jpg', 2) > 190 && centre('blue/b0.jpg', 0) < 40);
  });

  it('keeps the aspect ratio by default (contain: the 16,000 x 120 strip sits on white), fill stretches it', async () => {
    const contain = await loadDir(folder, { quiet: true, previews: false });
    const fill = await loadDir(folder, { quiet: true, previews: false, shape: { fit: 'fill' } });
    const top = (s: typeof contain) => {
      const i = s.keys.indexOf('red/huge-wide.png');
      return Array.from(s.pixels.subarray(i * 3072, i * 3072 + 3));
    };
    assert.deepEqual(top(contain), [255, 255, 255]);
    assert.ok(top(fill)[0]! > 200 && top(fill)[2]! < 40);
  });

  it('applies EXIF orientation: the rotated JPEG previews as portrait', async () => {
    const s = await loadDir(folder, { quiet: true });
    const meta = await sharp(s.previews!.get(s.keys.indexOf('blue/rotated.jpg'))).metadata();
    assert.equal(meta.format, 'webp');
    assert.ok(meta.height! > meta.width!, `${meta.width}x${meta.height}`);
    const wide = await sharp(s.previews!.get(s.keys.indexOf('red/huge-wide.png'))).metadata();
    assert.equal(wide.width, 160);
    s.previews!.close();
  });

  it('takes --image-size and --channels: 16 px grey', async () => {
    const s = await loadDir(folder, { quiet: true, previews: false, shape: { size: 16, channels: 1 } });
    assert.equal(s.pixels.length, made.usable * 16 * 16);
    assert.equal(s.channels, 1);
  });

  it('chooses 1 channel for a folder of grey images', async () => {
    const grey = tmpDir();
    for (let i = 0; i < 3; i++) await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 60 * i, g: 60 * i, b: 60 * i } } }).png().toFile(path.join(grey, `${i}.png`));
    assert.equal((await loadDir(grey, { quiet: true, previews: false })).channels, 1);
  });
});

describe('BlobSpool', () => {
  it('gives back what was stored, in slot order after keep()', () => {
    const s = new BlobSpool();
    s.set(2, Buffer.from('two'));
    s.set(0, Buffer.from('zero'));
    s.set(1, Buffer.from('one'));
    s.keep([0, 2]);
    assert.equal(s.get(0).toString(), 'zero');
    assert.equal(s.get(1).toString(), 'two');
    s.close();
  });
});

describe('Collection#addAll', () => {
  it('builds the same collection from batches of 4 as from one batch, previews included', async () => {
    const s = await loadDir(folder, { quiet: true });
    const model = await smallModel(s, { epochs: 1 });
    const dataDir = tmpDir();
    const opts = { dataDir, kind: 'image' as const, space: 'l2' as const, rawDim: 3072, rawType: 'u8' as const, params: {}, quiet: true };
    const a = await buildCollection(model, imageItemStream(s, 4), { ...opts, name: 'small-batches' });
    const b = await buildCollection(model, imageItemStream(s, 1000), { ...opts, name: 'one-batch' });
    for (const key of s.keys) {
      assert.deepEqual(a.codeOf(a.item(key).id), b.codeOf(b.item(key).id));
      assert.deepEqual(a.preview(key), b.preview(key));
    }
    assert.equal(a.count, made.usable);
    assert.deepEqual(a.sourceRoots, [path.resolve(folder)]);
    assert.equal((a.manifest.params.skipped as { count: number }).count, made.bad.length);
    a.close();
    b.close();
    s.previews?.close();
  });
});

describe('openBuildSource on a dir: folder', () => {
  it('streams a folder larger than one batch through a spool on disk into the collection a one-batch read gives, resuming after a kill', async () => {
    const dir = tmpDir('latentdex-png-');
    writePngFolder(dir, digits(1100), 1100);
    fs.writeFileSync(path.join(dir, 'class-1', 'broken.png'), Buffer.from('not a PNG at all'));
    const dataDir = tmpDir();
    const args = ['build', '--collection', 'f', '--source', `dir:${dir}`, '--train-limit', '300', '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'];
    const killed = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, '-q', ...args], { encoding: 'utf8', env: { ...process.env, LATENTDEX_CRASH_AT: 'ingest:after-batch' } });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const [left] = fs.readdirSync(path.join(dataDir, 'f'));
    const trained = fs.readFileSync(path.join(dataDir, 'f', left!, 'model', 'manifest.json'), 'utf8');
    const r = cli(args, dataDir);
    assert.equal(r.status, 0, r.stderr);
    const streamed = await Collection.open(dataDir, 'f', { quiet: true });
    const whole = await loadDir(dir, { target: imageTargetOf(streamed.model), quiet: true });
    const once = await buildCollection(streamed.model, imageItemStream(whole, 100_000), { dataDir: tmpDir(), name: 'once', kind: 'image', space: 'l2', rawDim: streamed.model.inputDim, rawType: 'u8', params: {}, quiet: true });
    try {
      assert.equal(streamed.count, 1100);
      // resumed: the version and the model the killed build had trained, not a new build
      assert.equal(streamed.paths.version.replace(/-\d+-/, '-'), left!.replace(/-\d+-/, '-'));
      assert.equal(fs.readFileSync(path.join(streamed.paths.model, 'manifest.json'), 'utf8'), trained);
      // the spool beside the collections is empty again
      assert.deepEqual(fs.readdirSync(path.join(dataDir, '.spool')), []);
      assert.equal(streamed.model.manifest.training.trainItems + streamed.model.manifest.training.heldOutItems, 300);
      assert.deepEqual(streamed.itemRows().map((row) => row.key), whole.keys);
      for (const key of whole.keys) {
        const [a, b] = [streamed.item(key).id, once.item(key).id];
        assert.deepEqual(streamed.codeOf(a), once.codeOf(b), key);
        assert.deepEqual(streamed.pixelsOf(a), once.pixelsOf(b), key);
        assert.deepEqual(streamed.preview(key), once.preview(key), key);
      }
      const skipped = streamed.manifest.params.skipped as { count: number; files: { path: string }[] };
      assert.equal(skipped.count, 1);
      assert.equal(skipped.files[0]!.path, path.join(dir, 'class-1', 'broken.png'));
    } finally {
      streamed.close();
      once.close();
      whole.previews?.close();
    }
  });
});

describe('image shape through the CLI, the manifest and the API', () => {
  const dataDir = tmpDir();
  let app: ReturnType<typeof createApp>;
  let engine: SearchEngine;

  before(async () => {
    const r = cli(['build', '--collection', 'mine', '--source', `dir:${folder}`, '--image-size', '24', '--fit', 'cover', '--train-epochs', '1', '--hidden', '32', '--code-dim', '6'], dataDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`24x24 colour images, ${made.bad.length} files skipped`));
    // a name holding a line break is printed escaped, on its own line of the list
    for (const b of made.bad) assert.ok(r.stderr.includes(printed(b)), `skipped list names ${b}`);
    assert.ok(!r.stderr.includes('line\nbreak'));
    engine = new SearchEngine({ dataDir, quiet: true });
    app = createApp({ engine, apiKey: 'k', serveOriginals: true });
  });

  it('stores size, channels and fit in the model manifest, and info lists the skipped files', async () => {
    const c = await Collection.open(dataDir, 'mine', { quiet: true });
    const { typical, ...input } = c.model.manifest.input as Extract<ModelManifest['input'], { type: 'pixels' }>;
    // colour is standardised by default, and the manifest keeps the brightness a bare code is shown with
    assert.deepEqual(input, { type: 'pixels', width: 24, height: 24, channels: 3, scale: 'standardised', fit: 'cover', background: '#ffffff', resample: 'area' });
    assert.ok(typical && typical.mean > 0 && typical.mean < 1 && typical.sd > 0, JSON.stringify(typical));
    c.close();
    const info = cli(['info', '--collection', 'mine'], dataDir);
    assert.match(info.stdout, /24x24, colour, fit cover.*input standardised per image/);
    assert.equal((JSON.parse(cli(['info', '--collection', 'mine', '--json'], dataDir).stdout) as { model: { inputScale: string } }).model.inputScale, 'standardised');
    for (const b of made.bad) assert.ok(info.stdout.includes(printed(b)), b);
  });

  it('fails a strict build, and refuses shape flags with a given model', () => {
    const r = cli(['build', '--collection', 'strict', '--source', `dir:${folder}`, '--strict', '--train-epochs', '1'], dataDir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /BAD_FILE/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'strict')));
    // an add decodes as the collection's model was trained: a shape flag is refused, and the error says why
    const shaped = cli(['add', '--collection', 'mine', '--source', `dir:${folder}`, '--image-size', '64'], dataDir);
    assert.equal(shaped.status, 2);
    assert.match(shaped.stderr, /unknown option '--image-size'[^\n]*INVALID_ARGUMENT\]\n\(--image-size, --channels and --fit shape a new model/);
  });

  it('adds a folder decoded exactly as the model was trained', async () => {
    const more = tmpDir();
    await sharp({ create: { width: 90, height: 40, channels: 3, background: '#0a0' } }).png().toFile(path.join(more, 'green.png'));
    const r = cli(['add', '--collection', 'mine', '--source', `dir:${more}`], dataDir);
    assert.equal(r.status, 0, r.stderr);
    const c = await Collection.open(dataDir, 'mine', { quiet: true });
    const stored = c.pixelsOf(c.item('green.png').id);
    const again = await decodeImage(fs.readFileSync(path.join(more, 'green.png')), { width: 24, height: 24, channels: 3, fit: 'cover', background: '#ffffff' });
    assert.deepEqual(Array.from(stored), Array.from(again.pixels));
    assert.equal(c.sourceRoots.length, 2);
    c.close();
  });

  it('refuses a second folder whose file names repeat stored keys, saying how to keep both, and keeps both with --key-prefix', async () => {
    const again = tmpDir();
    await sharp({ create: { width: 30, height: 30, channels: 3, background: '#00f' } }).png().toFile(path.join(again, 'green.png'));
    fs.writeFileSync(path.join(again, 'zz-broken.png'), 'not an image');
    const refused = cli(['add', '--collection', 'mine', '--source', `dir:${again}`], dataDir);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /DUPLICATE_KEY/);
    assert.match(refused.stderr, /--key-prefix/);
    // refused before any file was decoded: the broken one was never looked at, so it is not listed as skipped
    assert.doesNotMatch(refused.stderr, /zz-broken/);
    assert.equal(cli(['add', '--collection', 'mine', '--source', `dir:${again}`, '--key-prefix', ''], dataDir).status, 2);
    const r = cli(['add', '--collection', 'mine', '--source', `dir:${again}`, '--key-prefix', 'again/'], dataDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /zz-broken/);
    const c = await Collection.open(dataDir, 'mine', { quiet: true });
    try {
      assert.notDeepEqual(c.pixelsOf(c.item('again/green.png').id), c.pixelsOf(c.item('green.png').id));
    } finally {
      c.close();
    }
  });

  it('finds an uploaded file first among its own stored copy, for PNG, JPEG, WebP, GIF, TIFF and AVIF uploads', async () => {
    const src = sharp(fs.readFileSync(path.join(folder, 'red', 'r3.png')));
    const uploads: [string, Buffer][] = [
      ['png', await src.clone().png().toBuffer()],
      ['jpeg', await src.clone().jpeg({ quality: 95 }).toBuffer()],
      ['webp', await src.clone().webp({ lossless: true }).toBuffer()],
      ['gif', await src.clone().gif().toBuffer()],
      ['tiff', await src.clone().tiff().toBuffer()],
      ['avif', await src.clone().avif({ lossless: true }).toBuffer()],
    ];
    for (const [fmt, buf] of uploads) {
      const r = await request(app).post('/api/collections/mine/search?k=3&compare=pixel').attach('image', buf, `q.${fmt}`);
      assert.equal(r.status, 200, `${fmt}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.baseline.hits[0].key, 'red/r3.png', fmt);
      assert.match(r.body.preview, /^data:image\/webp;base64,/);
    }
  });

  it('refuses an SVG upload with 415 and names the formats it reads', async () => {
    const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9000" height="9000"><circle r="4000"/></svg>');
    const r = await request(app).post('/api/collections/mine/search').attach('image', svg, 'x.png').expect(415);
    assert.equal(r.body.error.code, 'UNSUPPORTED_IMAGE');
    assert.match(r.body.error.message, /PNG, JPEG/);
    const w = await request(app).post('/api/collections/mine/items').set('authorization', 'Bearer k').attach('image', svg, 'x.svg').field('key', 'svg').expect(415);
    assert.equal(w.body.error.code, 'UNSUPPORTED_IMAGE');
  });

  it('serves colour previews, and originals only from the folders the collection was read from', async () => {
    const p = await request(app).get('/api/collections/mine/items/blue%2Frotated.jpg/preview').expect(200).expect('content-type', 'image/webp');
    assert.ok((await sharp(p.body as Buffer).metadata()).height === 160);
    const o = await request(app).get('/api/collections/mine/items/blue%2Frotated.jpg/original').expect(200).expect('content-type', 'image/jpeg');
    assert.deepEqual(o.body, fs.readFileSync(path.join(folder, 'blue', 'rotated.jpg')));
    // An item whose recorded file is not below a source folder is never served.
    await request(app).post('/api/collections/mine/items').set('authorization', 'Bearer k').attach('image', fs.readFileSync(path.join(folder, 'red', 'r1.png')), 'r1.png').field('key', 'uploaded').expect(201);
    await request(app).get('/api/collections/mine/items/uploaded/original').expect(404);
    const off = createApp({ engine });
    await request(off).get('/api/collections/mine/items/blue%2Frotated.jpg/original').expect(404);
  });
});

describe('skipped files, links and paths across adds', () => {
  it('lists a file once however often it is skipped, drops it once indexed, lists links, and hides paths unless originals are served', async () => {
    const dataDir = tmpDir();
    const s = await loadDir(folder, { quiet: true, previews: true });
    const model = await smallModel(s, { epochs: 1 });
    (await buildCollection(model, imageItemStream(s), { dataDir, name: 'm', kind: 'image', space: 'l2', rawDim: 3072, rawType: 'u8', params: {}, quiet: true })).close();
    s.previews?.close();
    const skipped = async () => {
      const c = await Collection.open(dataDir, 'm', { quiet: true });
      const v = c.manifest.params.skipped as { count: number; files: { path: string; reason: string }[] };
      c.close();
      return v;
    };
    assert.equal((await skipped()).count, made.bad.length);
    const more = tmpDir();
    fs.writeFileSync(path.join(more, 'later.png'), '');
    fs.symlinkSync(path.join(folder, 'red', 'r1.png'), path.join(more, 'link.png'));
    await sharp({ create: { width: 30, height: 20, channels: 3, background: '#c00' } }).png().toFile(path.join(more, '..top.png'));
    for (let round = 0; round < 2; round++) {
      const r = cli(['add', '--collection', 'm', '--source', `dir:${more}`, '--replace'], dataDir);
      assert.equal(r.status, 0, r.stderr);
      const k = await skipped();
      assert.equal(k.count, made.bad.length + 2, JSON.stringify(k));
      assert.equal(k.files.filter((f) => f.path.endsWith('later.png')).length, 1);
      assert.match(k.files.find((f) => f.path.endsWith('link.png'))!.reason, /symbolic link/);
    }
    await sharp({ create: { width: 30, height: 20, channels: 3, background: '#00c' } }).png().toFile(path.join(more, 'later.png'));
    assert.equal(cli(['add', '--collection', 'm', '--source', `dir:${more}`, '--replace'], dataDir).status, 0);
    const k = await skipped();
    assert.equal(k.count, made.bad.length + 1);
    assert.ok(!k.files.some((f) => f.path.endsWith('later.png')));

    const engine = new SearchEngine({ dataDir, quiet: true });
    try {
      await request(createApp({ engine, serveOriginals: true })).get('/api/collections/m/items/..top.png/original').expect(200).expect('content-type', 'image/png');
      const hidden = createApp({ engine });
      const item = await request(hidden).get('/api/collections/m/items/red%2Fr1.png').expect(200);
      assert.equal(item.body.uri, path.join('red', 'r1.png'));
      const info = await request(hidden).get('/api/collections/m').expect(200);
      assert.equal(info.body.manifest.params.roots, 2);
      assert.ok(!JSON.stringify(info.body).includes(path.resolve(folder)));
    } finally {
      await engine.close();
      model.dispose();
    }
  });
});
