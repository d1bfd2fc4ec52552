import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadBrownPieces } from '../data/brown.js';
import { selectImages, type ImageSet } from '../data/images.js';
import type { TrainedModel } from '../src/encoder/model.js';
import { buildCollection, collectionExists, modelDirOf } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { imageItems } from '../src/indexer/items.js';
import { readPointer } from '../src/indexer/layout.js';
import { serve, type Running } from '../src/search/serve.js';
import { SearchEngine } from '../src/search/engine.js';
import { backend, digits, pngOf, smallModel, tmpDir, writePngFolder } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const KEY = 'secret-key';
const set = digits(420);
let model: TrainedModel;

/** Runs the CLI as its own process; `crashAt` kills it at that point of its write. */
function cli(dataDir: string, args: string[], crashAt?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, LATENTDEX_QUIET: '1', ...(crashAt ? { LATENTDEX_CRASH_AT: crashAt } : {}) };
    const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, ...args], { env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
}

/** A folder of PNGs of items [from, to) of the digit set; returns it and its keys as `dir:` names them. */
function folder(from: number, to: number): { dir: string; keys: string[] } {
  const dir = tmpDir('latentdex-png-');
  const s = selectImages(set, Array.from({ length: to - from }, (_, i) => from + i));
  writePngFolder(dir, s, s.keys.length);
  return { dir, keys: s.keys.map((k, i) => `class-${s.labels[i]}/${k}.png`) };
}

async function base(dataDir: string, n = 200): Promise<void> {
  (await buildCollection(model, imageItems(selectImages(set, Array.from({ length: n }, (_, i) => i))), { dataDir, name: 'c', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
}

/** Reopens the collection from disk (as a restart would) and checks its count and that every item is reachable. */
async function reopened(dataDir: string, count: number): Promise<Collection> {
  const c = await Collection.open(dataDir, 'c', { quiet: true });
  assert.equal(c.count, count);
  assertReachable(c);
  return c;
}

/** Every live item is reachable through the graph: an exhaustive search returns exactly the catalogue's ids. */
function assertReachable(c: Collection): void {
  const rows = c.itemRows();
  assert.equal(rows.length, c.count);
  const found = new Set(c.search(c.codeOf(rows[0]!.id), c.count, c.count + 16).map((h) => h.id));
  assert.deepEqual([...found].sort((a, b) => a - b), rows.map((r) => r.id).sort((a, b) => a - b));
}

async function api(r: Running, p: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${r.url}${p}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function uploadOf(s: ImageSet, i: number): FormData {
  const fd = new FormData();
  fd.append('image', new Blob([new Uint8Array(pngOf(s.pixels.subarray(i * 784, (i + 1) * 784), 28, 28))]), 'q.png');
  return fd;
}

before(async () => {
  await backend();
  model = await smallModel(set, { epochs: 1 });
});
after(() => model.dispose());

describe('a collection shared by a server and CLI processes', () => {
  it('sees a CLI add and remove at once, and loses nothing after a later HTTP write and a restart', async () => {
    const dataDir = tmpDir();
    await base(dataDir);
    const a = folder(200, 260);
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true, apiKey: KEY });
    try {
      // Warm the server's derived caches (baseline matrix, graph) before another process writes.
      assert.equal((await api(running, `/api/collections/c/items/${set.keys[3]}/neighbors?compare=pixel`)).status, 200);
      const added = await cli(dataDir, ['add', '--collection', 'c', '--source', `dir:${a.dir}`]);
      assert.equal(added.code, 0, added.err);
      assert.equal((await api(running, '/api/collections/c')).body.count, 260);
      // An added image searched by upload: the server's graph and its pixel baseline both hold it.
      const fresh = selectImages(set, [200]);
      const r = await api(running, '/api/collections/c/search?k=3&compare=pixel', { method: 'POST', body: uploadOf(fresh, 0) });
      assert.equal(r.status, 200);
      const hits = (list: unknown) => (list as { hits: { key: string; distance: number }[] }).hits;
      assert.equal(hits(r.body.baseline)[0]!.key, a.keys[0]);
      assert.equal(hits(r.body.baseline)[0]!.distance, 0);
      assert.ok(hits(r.body.codes).some((h) => h.key === a.keys[0]), JSON.stringify(r.body.codes));

      const removed = await cli(dataDir, ['remove', '--collection', 'c', '--key', a.keys[0]!]);
      assert.equal(removed.code, 0, removed.err);
      const again = await api(running, '/api/collections/c/search?k=3&compare=pixel', { method: 'POST', body: uploadOf(fresh, 0) });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.ok(![...hits(again.body.codes), ...hits(again.body.baseline)].some((h) => h.key === a.keys[0]));
      assert.equal((await api(running, `/api/collections/c/items/${encodeURIComponent(a.keys[0]!)}`)).status, 404);

      const fd = uploadOf(selectImages(set, [400]), 0);
      fd.append('key', 'http-1');
      const w = await api(running, '/api/collections/c/items', { method: 'POST', body: fd, headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      assert.equal(w.body.count, 260);
    } finally {
      await running.close();
    }
    (await reopened(dataDir, 260)).close();
  });

  it('lets two writers take turns: concurrent adds both land, and a contested key goes to exactly one', async () => {
    const dataDir = tmpDir();
    await base(dataDir, 100);
    const b = folder(200, 280);
    const d = folder(280, 360);
    const [rb, rd] = await Promise.all([cli(dataDir, ['add', '--collection', 'c', '--source', `dir:${b.dir}`]), cli(dataDir, ['add', '--collection', 'c', '--source', `dir:${d.dir}`])]);
    assert.equal(rb.code, 0, rb.err);
    assert.equal(rd.code, 0, rd.err);
    const same = folder(360, 380);
    const both = await Promise.all([cli(dataDir, ['add', '--collection', 'c', '--source', `dir:${same.dir}`]), cli(dataDir, ['add', '--collection', 'c', '--source', `dir:${same.dir}`])]);
    assert.deepEqual(both.map((x) => x.code).sort(), [0, 2], both.map((x) => x.err).join('\n'));
    assert.match(both.find((x) => x.code !== 0)!.err, /DUPLICATE_KEY/);
    const c = await Collection.open(dataDir, 'c', { quiet: true });
    assert.equal(c.count, 100 + 80 + 80 + 20);
    assertReachable(c);
    c.close();
  });

  it('answers an HTTP write 503 COLLECTION_BUSY while another process holds the writer lock, then takes it', async () => {
    const dataDir = tmpDir();
    await base(dataDir, 50);
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true, apiKey: KEY, lockTimeoutMs: 300 });
    const home = path.join(dataDir, 'c');
    const other = new Database(path.join(home, readPointer(home)!, 'catalogue.db'));
    try {
      other.exec('BEGIN IMMEDIATE');
      const send = () => {
        const fd = uploadOf(selectImages(set, [300]), 0);
        fd.append('key', 'late');
        return api(running, '/api/collections/c/items', { method: 'POST', body: fd, headers: { authorization: `Bearer ${KEY}` } });
      };
      const busy = await send();
      assert.equal(busy.status, 503);
      assert.equal((busy.body.error as { code: string }).code, 'COLLECTION_BUSY');
      // Reads go on while the lock is held.
      assert.equal((await api(running, `/api/collections/c/items/${set.keys[3]}/neighbors`)).status, 200);
      other.exec('ROLLBACK');
      assert.equal((await send()).status, 201);
    } finally {
      other.close();
      await running.close();
    }
  });

  it('picks up a build --replace made beside it, and writes then land in the new version', async () => {
    const dataDir = tmpDir();
    await base(dataDir);
    const e = folder(200, 290);
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true, apiKey: KEY });
    try {
      assert.equal((await api(running, '/api/collections/c')).body.count, 200);
      const r = await cli(dataDir, ['build', '--collection', 'c', '--source', `dir:${e.dir}`, '--model', modelDirOf(dataDir, 'c'), '--replace']);
      assert.equal(r.code, 0, r.err);
      assert.equal((await api(running, '/api/collections/c')).body.count, 90);
      assert.equal((await api(running, `/api/collections/c/items/${encodeURIComponent(e.keys[5]!)}/neighbors`)).status, 200);
      assert.equal((await api(running, `/api/collections/c/items/${set.keys[3]}`)).status, 404);
      const del = await api(running, `/api/collections/c/items/${encodeURIComponent(e.keys[5]!)}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(del.status, 200);
      assert.equal(del.body.count, 89);
    } finally {
      await running.close();
    }
    const c = await reopened(dataDir, 89);
    assert.deepEqual(fs.readdirSync(c.paths.home).sort(), ['CURRENT', c.paths.version]);
    c.close();
  });
});

describe('a write killed at each step', () => {
  it('leaves the old or the new collection, whole, at every kill point of add, remove and build --replace', async () => {
    const dataDir = tmpDir();
    await base(dataDir, 100);
    const f = folder(200, 230);
    // A build killed before it published leaves its version for the same command to resume (`resumable`).
    const cases: { args: string[]; at: string; count: (before: number) => number; resumable?: boolean }[] = [
      { args: ['add', '--collection', 'c', '--source', `dir:${f.dir}`], at: 'write:before-commit', count: (n) => n },
      { args: ['add', '--collection', 'c', '--source', `dir:${f.dir}`], at: 'write:after-commit', count: (n) => n + 30 },
      { args: ['remove', '--collection', 'c', '--key', f.keys[0]!], at: 'graph:before-rename', count: (n) => n - 1 },
      { args: ['remove', '--collection', 'c', '--key', f.keys[1]!], at: 'write:after-commit', count: (n) => n - 1 },
      { args: ['build', '--collection', 'c', '--source', `dir:${f.dir}`, '--model', '', '--replace'], at: 'build:before-publish', count: (n) => n, resumable: true },
      { args: ['build', '--collection', 'c', '--source', `dir:${f.dir}`, '--model', '', '--replace'], at: 'build:after-publish', count: () => 30 },
    ];
    for (const k of cases) {
      const c0 = await Collection.open(dataDir, 'c', { quiet: true });
      const n = c0.count;
      const modelDir = modelDirOf(dataDir, 'c');
      c0.close();
      const args = k.args.map((a, i) => (a === '' && k.args[i - 1] === '--model' ? modelDir : a));
      const r = await cli(dataDir, args, k.at);
      assert.equal(r.signal, 'SIGKILL', `${k.at}: the process was not killed there (exit ${r.code}: ${r.err})`);
      const c = await Collection.open(dataDir, 'c', { quiet: true });
      assert.equal(c.count, k.count(n), k.at);
      assertReachable(c);
      // Leftovers of the killed process are swept on open: the live version and its pointer remain.
      const left = fs.readdirSync(c.paths.home).filter((x) => x !== 'CURRENT' && x !== c.paths.version);
      assert.equal(left.length, k.resumable ? 1 : 0, `${k.at}: ${left.join(', ')}`);
      assert.ok(!fs.readdirSync(c.paths.dir).some((x) => x.includes('.tmp-')), k.at);
      c.close();
    }
  });
});

describe('derived caches', () => {
  it('follow the generation: two writes within the same millisecond leave no stale baseline or graph', async () => {
    const dataDir = tmpDir();
    await base(dataDir, 100);
    const engine = new SearchEngine({ dataDir, quiet: true });
    try {
      const q = selectImages(set, [300]);
      const c = await engine.collection('c');
      engine.byPixels(c, q.pixels, { k: 5, compare: true });
      const g0 = c.generation;
      const item = imageItems(q)[0]!;
      for (let round = 0; round < 20; round++) {
        await c.add([item], { quiet: true });
        const withIt = engine.byPixels(await engine.collection('c'), q.pixels, { k: 5, compare: true });
        assert.equal(withIt.baseline!.hits[0]!.key, item.key);
        await c.remove([item.key]);
        const without = engine.byPixels(await engine.collection('c'), q.pixels, { k: 5, compare: true });
        assert.ok(![...without.codes.hits, ...without.baseline!.hits].some((h) => h.key === item.key));
      }
      assert.equal(c.generation, g0 + 40);
    } finally {
      await engine.close();
    }
  });
});

describe('a reader replaying a large replace', () => {
  it('finds every item by its own code after another writer replaced all of them, round after round', async () => {
    const dataDir = tmpDir();
    await base(dataDir, 400);
    const reader = await Collection.open(dataDir, 'c', { quiet: true, persistDelayMs: 60_000 });
    const writer = await Collection.open(dataDir, 'c', { quiet: true, persistDelayMs: 60_000 });
    const items = imageItems(selectImages(set, Array.from({ length: 400 }, (_, i) => i)));
    try {
      for (let round = 0; round < 3; round++) {
        await writer.add(items, { replace: true, quiet: true });
        assert.equal(reader.sync(), 'current');
        const missing = reader.itemRows().filter((r) => !reader.search(reader.codeOf(r.id), 5).some((h) => h.id === r.id));
        assert.deepEqual(missing.map((r) => r.key), [], `round ${round}`);
        assert.ok(reader.graphSize <= 400 + 256 + 100, `graph of ${reader.graphSize}`);
      }
    } finally {
      reader.close();
      writer.close();
    }
  });
});

describe('a build killed midway', () => {
  /** The live version's creation time and random part: a resumed build keeps those of the version it resumed. */
  const identity = (v: string) => v.replace(/-\d+-/, '-');

  it('is resumed by the same command from its last committed batch, with the model it had trained', async () => {
    const dataDir = tmpDir();
    const args = ['build', '--collection', 'r', '--source', 'mnist', '--limit', '2600', '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'];
    const killed = await cli(dataDir, args, 'ingest:after-batch');
    assert.equal(killed.signal, 'SIGKILL', killed.err);
    assert.equal(collectionExists(dataDir, 'r'), false);
    const home = path.join(dataDir, 'r');
    const [left] = fs.readdirSync(home);
    assert.ok(left);
    const trained = fs.readFileSync(path.join(home, left, 'model', 'manifest.json'), 'utf8');
    // info names it as a build the same command resumes
    assert.match((await cli(dataDir, ['info'])).out, /^no collections in .*\nstopped builds, resumed by the same build command: r\n$/);
    // another data directory's build leaves it alone
    assert.equal((await cli(tmpDir(), args)).code, 0);
    assert.deepEqual(fs.readdirSync(home), [left]);
    const r = await cli(dataDir, args);
    assert.equal(r.code, 0, r.err);
    const c = await Collection.open(dataDir, 'r', { quiet: true });
    try {
      assert.equal(c.count, 2600);
      assertReachable(c);
      assert.equal(identity(c.paths.version), identity(left), 'the interrupted version was resumed, not built anew');
      assert.equal(fs.readFileSync(path.join(c.paths.model, 'manifest.json'), 'utf8'), trained, 'the model was not trained again');
      // every item holds the code its model gives its pixels, the first batch's (stored before the kill) as the rest
      const rows = c.itemRows();
      const px = new Uint8Array(rows.length * 784);
      rows.forEach((row, i) => px.set(c.pixelsOf(row.id) as Uint8Array, i * 784));
      const codes = c.model.encode(px, rows.length);
      rows.forEach((row, i) => assert.deepEqual(Array.from(c.codeOf(row.id)), Array.from(codes.subarray(i * 6, (i + 1) * 6)), row.key));
      assert.deepEqual(fs.readdirSync(home).sort(), ['CURRENT', c.paths.version]);
    } finally {
      c.close();
    }
  });

  it('is removed, not resumed, by a build of that name with other options', async () => {
    const dataDir = tmpDir();
    const args = ['build', '--collection', 'r', '--source', 'mnist', '--limit', '1500', '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'];
    assert.equal((await cli(dataDir, [...args, '--denoise', 'masking:0.2'], 'ingest:after-batch')).signal, 'SIGKILL');
    const home = path.join(dataDir, 'r');
    const [left] = fs.readdirSync(home);
    // a nested option (--denoise parses to an object) counts too
    const r = await cli(dataDir, [...args, '--denoise', 'gaussian:0.1']);
    assert.equal(r.code, 0, r.err);
    const c = await Collection.open(dataDir, 'r', { quiet: true });
    try {
      assert.notEqual(identity(c.paths.version), identity(left!));
      assert.equal(c.model.manifest.regularisers.denoise?.kind, 'gaussian');
      assert.deepEqual(fs.readdirSync(home).sort(), ['CURRENT', c.paths.version]);
    } finally {
      c.close();
    }
  });

  it('trains a text model again, with its own vocabulary, when a killed text build\'s file changed', async () => {
    const dataDir = tmpDir();
    const pieces = loadBrownPieces();
    const file = path.join(tmpDir(), 'docs.jsonl');
    const write = (from: number) => fs.writeFileSync(file, Array.from({ length: 1100 }, (_, i) => JSON.stringify({ key: `d${i}`, text: pieces.texts[from + i] })).join('\n'));
    write(0);
    const args = ['build', '--collection', 't', '--source', `jsonl:${file}`, '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'];
    assert.equal((await cli(dataDir, args, 'ingest:after-batch')).signal, 'SIGKILL');
    const [left] = fs.readdirSync(path.join(dataDir, 't'));
    const kept = JSON.parse(fs.readFileSync(path.join(dataDir, 't', left!, 'model', 'manifest.json'), 'utf8')) as { createdAt: string };
    // other documents under the same keys: another vocabulary, so another baseline size
    write(2000);
    const r = await cli(dataDir, args);
    assert.equal(r.code, 0, r.err);
    const c = await Collection.open(dataDir, 't', { quiet: true });
    try {
      assert.equal(c.count, 1100);
      assert.notEqual(c.model.manifest.createdAt, kept.createdAt);
      const hits = c.search(c.codeOf(c.item('d5').id), 1);
      assert.equal(hits[0]!.id, c.item('d5').id);
    } finally {
      c.close();
    }
  });

  it('is built anew when the source no longer starts with what it stored', async () => {
    const dataDir = tmpDir();
    // more files than one batch of 1,024
    const dir = tmpDir('latentdex-png-');
    const many = digits(1100);
    writePngFolder(dir, many, 1100);
    const first = many.keys.map((k, i) => `class-${many.labels[i]}/${k}.png`).sort()[0]!;
    const args = ['build', '--collection', 'r', '--source', `dir:${dir}`, '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'];
    assert.equal((await cli(dataDir, args, 'ingest:after-batch')).signal, 'SIGKILL');
    const home = path.join(dataDir, 'r');
    const [left] = fs.readdirSync(home);
    const kept = JSON.parse(fs.readFileSync(path.join(home, left!, 'model', 'manifest.json'), 'utf8')) as { createdAt: string };
    // the first file of the folder is gone: the stored batch no longer matches the source's start
    fs.rmSync(path.join(dir, first));
    const r = await cli(dataDir, args);
    assert.equal(r.code, 0, r.err);
    const c = await Collection.open(dataDir, 'r', { quiet: true });
    try {
      assert.equal(c.count, 1099);
      assert.notEqual(identity(c.paths.version), identity(left!));
      // and with a model trained on the folder as it is now, not the one trained on the folder before
      assert.notEqual(c.model.manifest.createdAt, kept.createdAt);
      assert.equal(c.model.manifest.training.trainItems + c.model.manifest.training.heldOutItems, 1099);
      assert.deepEqual(fs.readdirSync(home).sort(), ['CURRENT', c.paths.version]);
    } finally {
      c.close();
    }
  });
});
