import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { selectImages } from '../data/images.js';
import { readEnv } from '../src/config.js';
import { parseStore } from '../src/indexer/store-spec.js';
import { fromNpy } from '../src/encoder/npy.js';
import { digits, pngOf, tmpDir, writePngFolder } from './helpers.js';
import { startS3, type LocalS3 } from './s3-server.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const KEY = 'store-secret';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

interface Running {
  child: ChildProcess;
  /** resolves once the process's stderr matches */
  says(re: RegExp): Promise<void>;
  done: Promise<Run>;
}

/** Starts the CLI as its own process with the variables of `env` (quiet unless `quiet` is false). */
function start(args: string[], env: Record<string, string>, o: { quiet?: boolean; dataDir?: string } = {}): Running {
  const child = spawn(process.execPath, [CLI, ...(o.quiet === false ? [] : ['--quiet']), '--data-dir', o.dataDir ?? tmpDir(), ...args], { env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  const waiting: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiting.filter((x) => x.re.test(err))) w.resolve();
  });
  const done = new Promise<Run>((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
  const says = (re: RegExp) =>
    re.test(err)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          waiting.push({ re, resolve });
          void done.then((r) => reject(new Error(`exited with ${r.code} before saying ${re}: ${r.err}`)));
        });
  return { child, says, done };
}

/** Runs the CLI as its own process with the S3 variables of `env` (in a fresh data directory unless `dataDir`). */
function cli(args: string[], env: Record<string, string>, dataDir?: string): Promise<Run> {
  return start(args, env, { dataDir }).done;
}

interface Replica {
  url: string;
  child: ChildProcess;
}

/** Starts `serve --store` in a process of its own; resolves with its address once it serves. */
async function replica(store: string, env: Record<string, string>, extra: string[] = []): Promise<Replica> {
  const child = spawn(process.execPath, [CLI, '--quiet', '--data-dir', tmpDir(), 'serve', '--store', store, '--port', '0', '--sync-ms', '200', ...extra], {
    env: { ...process.env, ...env, LATENTDEX_API_KEY: KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = / at (http:\/\/[^\s]+?)\/?\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`replica exited with ${code}: ${err}`)));
  });
  return { url, child };
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** The keys of the codes and baseline columns of an item's neighbours on one replica. */
async function neighbours(r: Replica, key: string): Promise<{ codes: string[]; baseline: string[] }> {
  const { status, body } = await getJson(`${r.url}/api/collections/c/items/${encodeURIComponent(key)}/neighbors?k=10&compare=true`);
  assert.equal(status, 200, JSON.stringify(body));
  const col = (c: unknown) => (c as { hits: { key: string }[] }).hits.map((h) => h.key);
  return { codes: col(body.codes), baseline: col(body.baseline) };
}

async function count(r: Replica): Promise<number> {
  const { body } = await getJson(`${r.url}/api/collections/c`);
  return Number(body.count);
}

/** Polls `ok` until it holds; fails the test with `what` after `ms`. */
async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hasItem = (r: Replica, key: string) => async () => (await fetch(`${r.url}/api/collections/c/items/${encodeURIComponent(key)}`)).status === 200;

describe('a collection in a LanceDB store on S3, served by stateless replicas', () => {
  let s3: LocalS3;
  let store: string;
  const replicas: Replica[] = [];
  const set = digits(360);

  before(async () => {
    s3 = await startS3();
    store = `lancedb:s3://${s3.bucket}/collections`;
    const dir = tmpDir('latentdex-png-');
    writePngFolder(dir, selectImages(set, Array.from({ length: 300 }, (_, i) => i)), 300);
    const built = await cli(['build', '--collection', 'c', '--source', `dir:${dir}`, '--hidden', '32', '--code-dim', '6', '--train-epochs', '1', '--store', store], s3.env);
    assert.equal(built.code, 0, built.err);
    assert.match(built.out, /300 items.*lancedb:s3:/);
  });

  after(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    await s3?.close();
  });

  it('refuses a second build of the name without --replace, before training', async () => {
    const r = await cli(['build', '--collection', 'c', '--source', 'mnist', '--limit', '50', '--store', store], s3.env);
    assert.equal(r.code, 2);
    assert.match(r.err, /\[COLLECTION_EXISTS\]/);
  });

  it('answers a search the same on two replicas', async () => {
    replicas.push(await replica(store, s3.env), await replica(store, s3.env));
    const [a, b] = replicas as [Replica, Replica];
    assert.equal(await count(a), 300);
    assert.equal(await count(b), 300);
    const { body } = await getJson(`${a.url}/api/collections/c/random`);
    const key = String(body.key);
    const na = await neighbours(a, key);
    assert.equal(na.codes.length, 10);
    assert.deepEqual(na, await neighbours(b, key));
  });

  it('shows an add through the CLI on both replicas, and two writers at once both land', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const more = tmpDir('latentdex-png-');
    writePngFolder(more, selectImages(set, Array.from({ length: 30 }, (_, i) => 300 + i)), 30);
    // two processes write at once: the lease makes one wait for the other, and neither write is lost
    const [x, y] = await Promise.all([
      cli(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'x/', '--store', store], s3.env),
      cli(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'y/', '--store', store], s3.env),
    ]);
    assert.equal(x.code, 0, x.err);
    assert.equal(y.code, 0, y.err);
    const added = (k: string) => `${k}/${path.posix.join('class-' + set.labels[300], set.keys[300] + '.png')}`;
    for (const r of [a, b]) {
      await until(hasItem(r, added('x')), 30_000, 'the first add shows on a replica');
      await until(hasItem(r, added('y')), 30_000, 'the second add shows on a replica');
      await until(async () => (await count(r)) === 360, 30_000, 'every added item shows');
    }
    assert.deepEqual(await neighbours(a, added('x')), await neighbours(b, added('x')));
    const dup = await cli(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'x/', '--store', store], s3.env);
    assert.equal(dup.code, 2);
    assert.match(dup.err, /\[DUPLICATE_KEY\]/);
    assert.match((await cli(['info', '--store', store], s3.env)).out, /^c \(image\): 360 items, 6-d codes, 2 writes since its build, in lancedb:s3:/m);
    const info = await cli(['info', '--store', store, '--collection', 'c'], s3.env);
    assert.match(info.out, /^ {2}items +360; generation \d+ \(2 writes since its build\)$/m);
  });

  it('writes through one replica to the store, seen by the other; a removal too', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const form = new FormData();
    form.set('key', 'uploaded');
    form.set('label', '4');
    form.set('image', new Blob([new Uint8Array(pngOf(set.pixels.subarray(0, 784), 28, 28))], { type: 'image/png' }), 'u.png');
    const res = await fetch(`${a.url}/api/collections/c/items`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 201, await res.text());
    // replace=true through a replica says it replaced the item (200), as a lone server does
    const again = await fetch(`${a.url}/api/collections/c/items?replace=true`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { replaced: boolean }).replaced, true);
    assert.equal(((await getJson(`${a.url}/api/collections/c/items/uploaded`)).status), 200);
    await until(hasItem(b, 'uploaded'), 30_000, 'the upload shows on the other replica');
    const del = await fetch(`${b.url}/api/collections/c/items/uploaded`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(del.status, 200);
    await until(async () => !(await hasItem(a, 'uploaded')()), 30_000, 'the removal shows on the first replica');
  });

  it('loses nothing when a replica is killed: the other answers, and a new one copies the same collection', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const { body } = await getJson(`${b.url}/api/collections/c/random`);
    const key = String(body.key);
    const before = await neighbours(b, key);
    a.child.kill('SIGKILL');
    await once(a.child, 'exit');
    assert.equal(await count(b), 360);
    assert.deepEqual(await neighbours(b, key), before);
    const c = await replica(store, s3.env);
    replicas.push(c);
    assert.equal(await count(c), 360);
    assert.deepEqual(await neighbours(c, key), before);
    // b followed the writes one by one, c copied the collection after them: a cursor made on one pages on the other
    const page = (r: Replica, cursor?: string) => getJson(`${r.url}/api/collections/c/items/${encodeURIComponent(key)}/neighbors?k=5${cursor ? `&cursor=${cursor}` : ''}`);
    const keys = (body: Record<string, unknown>) => (body.codes as { hits: { key: string }[] }).hits.map((h) => h.key);
    const first = await page(b);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((await page(c)).body.generation, first.body.generation);
    const described = async (r: Replica) => (await getJson(`${r.url}/api/collections/c`)).body.manifest as { generation: number; createdAt: string; params: Record<string, unknown> };
    const [mb, mc] = [await described(b), await described(c)];
    assert.deepEqual([mc.generation, mc.createdAt], [mb.generation, mb.createdAt]);
    assert.equal(mb.generation, first.body.generation);
    assert.equal(mb.params.origin, undefined);
    const next = String(first.body.next);
    const onB = await page(b, next);
    const onC = await page(c, next);
    assert.equal(onC.status, 200, JSON.stringify(onC.body));
    assert.equal(keys(onC.body).length, 5);
    assert.deepEqual(keys(onC.body), keys(onB.body));
  });

  it('keeps uploads through two replicas at once apart: each lands once, on both', async () => {
    const [b, c] = replicas.slice(1) as [Replica, Replica];
    // a replica waits 5 s for the store's lease, then answers 503 COLLECTION_BUSY: a client tries again, as it should
    const upload = async (r: Replica, key: string, i: number) => {
      for (let attempt = 0; ; attempt++) {
        const form = new FormData();
        form.set('key', key);
        form.set('image', new Blob([new Uint8Array(pngOf(set.pixels.subarray(i * 784, (i + 1) * 784), 28, 28))], { type: 'image/png' }), `${key}.png`);
        const res = await fetch(`${r.url}/api/collections/c/items`, { method: 'POST', body: form, headers: { authorization: `Bearer ${KEY}` } });
        if (res.status !== 503 || attempt === 10) return res;
        const { error } = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(error.code, 'COLLECTION_BUSY', error.message);
        await new Promise((ok) => setTimeout(ok, Number(res.headers.get('retry-after') ?? 1) * 1000));
      }
    };
    const keys = Array.from({ length: 6 }, (_, i) => `both-${i}`);
    const answers = await Promise.all(keys.map((k, i) => upload(i % 2 ? b : c, k, 330 + i)));
    assert.deepEqual(answers.map((a) => a.status), keys.map(() => 201));
    for (const r of [b, c]) await until(async () => (await count(r)) === 366, 30_000, 'every upload shows on both replicas');
    for (const r of [b, c]) for (const k of keys) assert.ok(await hasItem(r, k)(), k);
    const info = await cli(['info', '--store', store, '--collection', 'c', '--json'], s3.env);
    assert.equal(JSON.parse(info.out).count, 366);
  });

  it('serves a collection over --hot-limit through the store index: neighbours, label filter, search by code, new writes', async () => {
    const [b] = replicas.slice(1) as [Replica];
    const big = await replica(store, s3.env, ['--hot-limit', '100']);
    replicas.push(big);
    const { body } = await getJson(`${big.url}/api/collections`);
    const listed = (body.collections as { name: string; servedFrom?: string; count: number }[]).find((c) => c.name === 'c');
    assert.deepEqual([listed?.servedFrom, listed?.count], ['store-index', 366]);
    // the same neighbours as a replica's local copy (below 50,000 items the store scans every code exactly)
    const dist = async (r: Replica) => {
      const { status, body } = await getJson(`${r.url}/api/collections/c/items/both-0/neighbors?k=10`);
      assert.equal(status, 200, JSON.stringify(body));
      return (body.codes as { hits: { distance: number }[] }).hits.map((h) => h.distance);
    };
    const [local, indexed] = [await dist(b), await dist(big)];
    assert.equal(indexed.length, 10);
    indexed.forEach((d, i) => assert.ok(Math.abs(d - local[i]!) <= 1e-3 * Math.max(1, local[i]!), `hit ${i}: ${d} vs ${local[i]}`));
    const label = ((await getJson(`${b.url}/api/collections/c/items/${encodeURIComponent(`x/class-${set.labels[300]}/${set.keys[300]}.png`)}`)).body.label as string | null)!;
    assert.ok(label, 'the items of a dir: source are labelled by their folder');
    const filtered = await getJson(`${big.url}/api/collections/c/items/both-0/neighbors?k=5&label=${encodeURIComponent(label)}`);
    const labels = (filtered.body.codes as { hits: { label: string }[] }).hits.map((h) => h.label);
    assert.deepEqual(labels, Array(5).fill(label));
    const item = await getJson(`${big.url}/api/collections/c/items/both-1`);
    const byCode = await fetch(`${big.url}/api/collections/c/search?k=3`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: item.body.code }) });
    assert.equal(byCode.status, 200);
    const found = (await byCode.json()) as { codes: { hits: { key: string; distance: number }[] } };
    assert.equal(found.codes.hits[0]!.key, 'both-1');
    // what the page asks when it opens a collection: a random item, the filter values, reconstructions
    const random = await getJson(`${big.url}/api/collections/c/random`);
    assert.equal((await getJson(`${big.url}/api/collections/c/items/${encodeURIComponent(String(random.body.key))}`)).status, 200);
    const counts = (await getJson(`${big.url}/api/collections/c/labels`)).body as { labels: { value: string; count: number }[] };
    const copied = (await getJson(`${b.url}/api/collections/c/labels`)).body as { labels: { value: string; count: number }[] };
    assert.deepEqual(counts.labels, copied.labels);
    const rec = await fetch(`${big.url}/api/collections/c/items/both-1/reconstruction.png`);
    assert.deepEqual([rec.status, rec.headers.get('content-type')], [200, 'image/png']);
    const refused = await getJson(`${big.url}/api/collections/c/outliers`);
    assert.deepEqual([refused.status, (refused.body.error as { code: string }).code], [501, 'NOT_SUPPORTED']);
    // a method the path is not served with is a 405 here too, not "not available on this replica"
    const wrong = await getJson(`${big.url}/api/collections/c/search`);
    assert.deepEqual([wrong.status, (wrong.body.error as { code: string }).code], [405, 'METHOD_NOT_ALLOWED']);
    // a baseline of the other kind is refused as on a local collection
    const tfidf = await fetch(`${big.url}/api/collections/c/search?compare=tfidf`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: item.body.code }) });
    assert.equal(tfidf.status, 400);
    const paged = await getJson(`${big.url}/api/collections/c/items/both-0/neighbors?offset=10`);
    assert.deepEqual([paged.status, (paged.body.error as { code: string }).code], [400, 'INVALID_ARGUMENT']);
    const manifest = (await getJson(`${big.url}/api/collections/c`)).body.manifest as { params: { roots?: unknown } };
    assert.ok(!JSON.stringify(manifest).includes(path.join(os.tmpdir(), 'latentdex-png-')), 'the manifest names no folder of the server');
    // a write through the CLI shows here too: the replica reads the store's newer commit
    const more = tmpDir('latentdex-png-');
    writePngFolder(more, selectImages(set, [340]), 1);
    const added = await cli(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'late/', '--store', store], s3.env);
    assert.equal(added.code, 0, added.err);
    await until(hasItem(big, `late/class-${set.labels[340]}/${set.keys[340]}.png`), 30_000, 'the add shows on the replica serving the store index');
  });

  it('gives a one-line error for a bad store URI or an endpoint that does not answer', async () => {
    const dead = { ...s3.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
    // a folder holding anything but a replica's cache is never used as one (its collections would be replaced)
    const busy = tmpDir();
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    // nor is the cache of another store, nor a file
    const other = tmpDir();
    fs.writeFileSync(path.join(other, '.latentdex-replica-cache'), 's3://another/store\n');
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    // nor the cache of a replica that runs
    const shared = tmpDir();
    replicas.push(await replica(store, s3.env, ['--cache-dir', shared]));
    const missing = path.join(tmpDir(), 'no-store-here');
    for (const [args, env, code] of [
      [['info', '--store', store], dead, 'STORE_UNREACHABLE'],
      [['serve', '--store', store, '--port', '0'], dead, 'STORE_UNREACHABLE'],
      [['info', '--store', `lancedb:s3://no-such-bucket/x`], s3.env, 'STORE_UNREACHABLE'],
      [['serve', '--store', 'postgres://x', '--port', '0'], s3.env, 'INVALID_ARGUMENT'],
      [['serve', '--store', store, '--port', '0', '--cache-dir', busy], s3.env, 'INVALID_ARGUMENT'],
      [['serve', '--store', store, '--port', '0', '--cache-dir', other], s3.env, 'INVALID_ARGUMENT'],
      [['serve', '--store', store, '--port', '0', '--cache-dir', file], s3.env, 'INVALID_ARGUMENT'],
      [['info', '--store', ''], s3.env, 'INVALID_ARGUMENT'],
      [['serve', '--store', store, '--port', '0', '--cache-dir', shared], s3.env, 'INVALID_ARGUMENT'],
      [['info', '--store', `lancedb:${missing}`], s3.env, 'NOT_FOUND'],
      [['add', '--collection', 'c', '--source', 'mnist', '--store', 'lancedb:s3://'], s3.env, 'INVALID_ARGUMENT'],
    ] as const) {
      const r = await cli([...args], env);
      assert.notEqual(r.code, 0, args.join(' '));
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, r.err);
      assert.match(lines[0]!, new RegExp(`\\[${code}\\]$`));
    }
    assert.ok(!fs.existsSync(missing), 'reading a store creates nothing');
  });
});

describe('parseStore', () => {
  const s3 = readEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4568', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }).s3;
  it('reads a folder, an S3 prefix with its endpoint, and refuses other schemes with INVALID_ARGUMENT', () => {
    assert.equal(parseStore('lancedb:rel/dir', s3).uri, path.resolve('rel/dir'));
    const p = parseStore('lancedb:s3://bucket-1/a/b/', s3);
    assert.equal(p.uri, 's3://bucket-1/a/b');
    assert.equal(p.storageOptions.aws_endpoint, s3.endpoint);
    assert.equal(p.storageOptions.allow_http, 'true');
    for (const bad of ['lancedb:', 'lance:x', 'lancedb:gs://b/p', 'lancedb:s3://', 'lancedb:s3://B_/x']) {
      assert.throws(() => parseStore(bad, s3), { code: 'INVALID_ARGUMENT' }, bad);
    }
    assert.throws(() => parseStore('lancedb:s3://b1/x', { ...s3, endpoint: 'ftp://x' }), { code: 'INVALID_ARGUMENT' });
  });
});

/** A local collection `name` of the first `n` of 2n digits, with its model, to copy into a store. */
async function smallCollection(name: string, n: number) {
  const { buildCollection } = await import('../src/indexer/build.js');
  const { imageItems } = await import('../src/indexer/items.js');
  const { smallModel } = await import('./helpers.js');
  const set = digits(2 * n);
  const model = await smallModel(set, { epochs: 1 });
  const c = await buildCollection(model, imageItems(selectImages(set, Array.from({ length: n }, (_, i) => i))), { dataDir: tmpDir(), name, kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true });
  return { c, model };
}

describe('LanceStore#write', () => {
  it('runs writes of one process one after another: each commits, and the log and the items agree', async () => {
    const { LanceStore, publishable } = await import('../src/indexer/lance-store.js');
    const { c, model } = await smallCollection('w', 40);
    const store = await LanceStore.connect(parseStore(`lancedb:${tmpDir()}`, readEnv({}).s3));
    try {
      const head = await store.publish(publishable(c), { quiet: true });
      const rows = [...c.storedItems()].slice(0, 3).map((r, i) => ({ ...r, key: `new-${i}` }));
      const [k0, k1] = [c.itemRows()[0]!.key, c.itemRows()[1]!.key];
      const results = await Promise.all([
        store.write('w', [rows[0]!], [], { timeoutMs: 30_000 }),
        store.write('w', [rows[1]!, rows[2]!], [k0], { timeoutMs: 30_000 }),
        store.write('w', [], [k1], { timeoutMs: 30_000, build: head.build }),
      ]);
      assert.deepEqual(results.map((r) => r.head.seq).sort(), [1, 2, 3]);
      const now = (await store.head('w'))!;
      assert.equal(now.seq, 3);
      assert.equal(now.manifest.count, 40 + 3 - 2);
      const keys = new Set<string>();
      for await (const b of store.rows(now)) for (const r of b) keys.add(r.key);
      assert.equal(keys.size, 41);
      for (const k of ['new-0', 'new-1', 'new-2']) assert.ok(keys.has(k), k);
      assert.ok(!keys.has(k0) && !keys.has(k1));
      assert.deepEqual((await store.changes(now, 0)).map((e) => e.seq), [1, 2, 2, 2, 3]);
      await assert.rejects(store.write('w', [], [k0]), { code: 'ITEM_NOT_FOUND' });
      await assert.rejects(store.write('w', [rows[0]!], []), { code: 'DUPLICATE_KEY' });
      await assert.rejects(store.write('w', [], ['new-0'], { build: 'another-build' }), { code: 'COLLECTION_REPLACED' });
      assert.equal((await store.head('w'))!.seq, 3);
      // one fragment per write until the COMPACT_EVERY-th merges them, and every item stays readable
      const { COMPACT_EVERY } = await import('../src/indexer/lance-store.js');
      const lancedb = await import('@lancedb/lancedb');
      const fragments = async () => (await (await (await lancedb.connect(store.spec.uri)).openTable('w.items')).stats()).fragmentStats.numFragments;
      for (let i = 3; i < COMPACT_EVERY - 1; i++) await store.write('w', [{ ...rows[0]!, key: `more-${i}` }], []);
      const before = await fragments();
      assert.ok(before >= COMPACT_EVERY - 2, `${before} fragments`);
      await store.write('w', [{ ...rows[0]!, key: 'compacting' }], []);
      assert.ok((await fragments()) < 3, `${await fragments()} fragments after compaction`);
      const compacted = (await store.head('w'))!;
      assert.equal(compacted.seq, COMPACT_EVERY);
      let n = 0;
      for await (const b of store.rows(compacted)) n += b.length;
      assert.equal(n, compacted.manifest.count);
    } finally {
      store.close();
      c.close();
      model.dispose();
    }
  });
});

describe('LanceStore#write from two connections on S3', () => {
  it('commits every write once when two writers race on an object store with conditional writes', async () => {
    const { LanceStore, publishable } = await import('../src/indexer/lance-store.js');
    const { c, model } = await smallCollection('r', 30);
    const s3 = await startS3();
    const spec = parseStore(`lancedb:s3://${s3.bucket}/race`, readEnv(s3.env).s3);
    // two connections are two writers: each write takes a lease of its own
    const [one, two] = [await LanceStore.connect(spec), await LanceStore.connect(spec)];
    try {
      await one.publish(publishable(c), { quiet: true });
      const row = [...c.storedItems()][0]!;
      const writes = Array.from({ length: 16 }, (_, i) => (i % 2 ? one : two).write('r', [{ ...row, key: `race-${i}` }], [], { timeoutMs: 120_000 }));
      const seqs = (await Promise.all(writes)).map((r) => r.head.seq).sort((x, y) => x - y);
      assert.deepEqual(seqs, Array.from({ length: 16 }, (_, i) => i + 1));
      const head = (await one.head('r'))!;
      assert.deepEqual([head.seq, head.manifest.count], [16, 46]);
      const keys: string[] = [];
      for await (const b of one.rows(head)) for (const r of b) keys.push(r.key);
      assert.equal(keys.length, 46);
      assert.equal(new Set(keys).size, 46);
      assert.equal((await one.changes(head, 0)).length, 16);
    } finally {
      one.close();
      two.close();
      await s3.close();
      c.close();
      model.dispose();
    }
  });
});

describe('writers of a LanceDB store', () => {
  const set = digits(120);
  const NO_S3 = {};

  /** A folder store holding collection 'c' of 60 digits, and a folder of 20 more to add. */
  async function builtStore(extra: string[] = []): Promise<{ store: string; more: string }> {
    const store = `lancedb:${tmpDir('latentdex-lance-')}`;
    const dir = tmpDir('latentdex-png-');
    writePngFolder(dir, selectImages(set, Array.from({ length: 60 }, (_, i) => i)), 60);
    const built = await cli(['build', '--collection', 'c', '--source', `dir:${dir}`, '--hidden', '32', '--code-dim', '6', '--train-epochs', '1', '--store', store, ...extra], NO_S3);
    assert.equal(built.code, 0, built.err);
    const more = tmpDir('latentdex-png-');
    writePngFolder(more, selectImages(set, Array.from({ length: 20 }, (_, i) => 60 + i)), 20);
    return { store, more };
  }

  const countIn = async (store: string) => JSON.parse((await cli(['info', '--store', store, '--collection', 'c', '--json'], NO_S3)).out).count as number;

  it('a writer interrupted before its commit gives its lease up: the waiting writer goes on, and the interrupted items never show', async () => {
    const { store, more } = await builtStore();
    const a = start(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'a/', '--store', store], { LATENTDEX_PAUSE_AT: 'store:before-commit' });
    let b: Running | undefined;
    try {
      await a.says(/paused at store:before-commit/);
      b = start(['add', '--collection', 'c', '--source', `dir:${more}`, '--key-prefix', 'b/', '--store', store], NO_S3, { quiet: false });
      await b.says(/is being written by .*waiting/);
      a.child.kill('SIGINT');
      assert.equal((await a.done).code, 130);
      const freed = Date.now();
      const rb = await b.done;
      assert.equal(rb.code, 0, rb.err);
      // given up, not run out: the lease of a writer that died outright lasts a minute
      assert.ok(Date.now() - freed < 30_000, `the waiting writer went on ${Date.now() - freed} ms after the interrupt`);
    } finally {
      a.child.kill('SIGKILL');
      b?.child.kill('SIGKILL');
    }
    assert.equal(await countIn(store), 80);
    const gone = await cli(['remove', '--collection', 'c', '--key', `a/class-${set.labels[60]}/${set.keys[60]}.png`, '--store', store], NO_S3);
    assert.equal(gone.code, 2);
    assert.match(gone.err, /\[ITEM_NOT_FOUND\]/);
  });

  it('rebuilds a collection with --replace and another code size, then adds to it', async () => {
    const { store, more } = await builtStore();
    const dir = tmpDir('latentdex-png-');
    writePngFolder(dir, selectImages(set, Array.from({ length: 50 }, (_, i) => i)), 50);
    const again = await cli(['build', '--collection', 'c', '--source', `dir:${dir}`, '--hidden', '32', '--code-dim', '4', '--train-epochs', '1', '--store', store, '--replace'], NO_S3);
    assert.equal(again.code, 0, again.err);
    const added = await cli(['add', '--collection', 'c', '--source', `dir:${more}`, '--store', store], NO_S3);
    assert.equal(added.code, 0, added.err);
    const info = JSON.parse((await cli(['info', '--store', store, '--collection', 'c', '--json'], NO_S3)).out) as { codeDim: number; count: number };
    assert.deepEqual([info.codeDim, info.count], [4, 70]);
  });

  it('refuses to write to an object store that ignores conditional writes, unless one writer is vouched for', async () => {
    const s3 = await startS3({ conditionalWrites: false });
    try {
      const store = `lancedb:s3://${s3.bucket}/p`;
      const dir = tmpDir('latentdex-png-');
      writePngFolder(dir, selectImages(set, Array.from({ length: 40 }, (_, i) => i)), 40);
      const args = ['build', '--collection', 'c', '--source', `dir:${dir}`, '--hidden', '32', '--code-dim', '6', '--train-epochs', '1', '--store', store];
      const refused = await cli(args, s3.env);
      assert.equal(refused.code, 2);
      assert.equal(refused.err.trim().split('\n').length, 1, refused.err);
      assert.match(refused.err, /\[STORE_UNSAFE\]$/m);
      const vouched = await cli(args, { ...s3.env, LATENTDEX_STORE_SINGLE_WRITER: '1' });
      assert.equal(vouched.code, 0, vouched.err);
      const info = await cli(['info', '--store', store, '--collection', 'c', '--json'], s3.env);
      assert.equal(JSON.parse(info.out).count, 40);
      const add = await cli(['remove', '--collection', 'c', '--key', `class-${set.labels[0]}/${set.keys[0]}.png`, '--store', store], s3.env);
      assert.match(add.err, /\[STORE_UNSAFE\]/);
    } finally {
      await s3.close();
    }
  });
});

describe('CollectionStore: a data directory and a LanceDB store behind the same commands', () => {
  it('build, add, remove, info and export give the same items and codes in either', async () => {
    const set = digits(90);
    const first = tmpDir('latentdex-png-');
    writePngFolder(first, selectImages(set, Array.from({ length: 60 }, (_, i) => i)), 60);
    const more = tmpDir('latentdex-png-');
    writePngFolder(more, selectImages(set, Array.from({ length: 20 }, (_, i) => 60 + i)), 20);
    fs.writeFileSync(path.join(more, 'broken.png'), Buffer.alloc(40, 7));
    const dataDir = tmpDir();
    const model = path.join(tmpDir(), 'model');
    const trained = await cli(['train', '--source', `dir:${first}`, '--epochs', '1', '--hidden', '32', '--code-dim', '6', '--out', model], {}, dataDir);
    assert.equal(trained.code, 0, trained.err);
    const removed = `class-${set.labels[0]}/${set.keys[0]}.png`;
    const exported: { keys: string[]; codes: number[][] }[] = [];
    for (const where of [[], ['--store', `lancedb:${tmpDir('latentdex-lance-')}`]]) {
      const run = async (args: string[]) => {
        const r = await cli([...args, ...where], {}, dataDir);
        assert.equal(r.code, 0, `${args.join(' ')} ${where.join(' ')}: ${r.err}`);
        return r.out;
      };
      assert.match(await run(['build', '--collection', 'p', '--source', `dir:${first}`, '--model', model]), /built collection 'p': 60 items, 6-d codes/);
      assert.match(await run(['add', '--collection', 'p', '--source', `dir:${more}`]), /^added 20 items; 'p' now holds 80/);
      assert.match(await run(['remove', '--collection', 'p', '--key', removed]), /^removed 1 item; 'p' now holds 79/);
      assert.match(await run(['info']), /^p(\n| \(image\): 79 items, 6-d codes, 2 writes since its build)/);
      assert.equal(await run(['info', '--json']), '["p"]\n');
      const info = JSON.parse(await run(['info', '--collection', 'p', '--json'])) as { count: number; codeDim: number; params: { roots: string[]; skipped: { count: number; files: { path: string }[] } } };
      assert.deepEqual([info.count, info.codeDim], [79, 6]);
      // the add's folder (where originals may be served from) and its skipped file are recorded in either store
      assert.deepEqual(info.params.roots, [path.resolve(first), path.resolve(more)]);
      assert.deepEqual(info.params.skipped.files.map((f) => f.path), [path.join(path.resolve(more), 'broken.png')]);
      assert.match(await run(['info', '--collection', 'p']), /^ {2}items +79/m);
      const out = path.join(tmpDir(), 'p.npy');
      assert.match(await run(['export', '--collection', 'p', '--out', out]), /wrote 79x6 float32 codes/);
      const { keys } = JSON.parse(fs.readFileSync(out.replace(/\.npy$/, '.keys.json'), 'utf8')) as { keys: string[] };
      const { data } = fromNpy(fs.readFileSync(out));
      const byKey = new Map(keys.map((k, i) => [k, Array.from(data.subarray(i * 6, (i + 1) * 6) as Float32Array)]));
      const sorted = [...keys].sort();
      exported.push({ keys: sorted, codes: sorted.map((k) => byKey.get(k)!) });
    }
    const [local, lance] = exported as [{ keys: string[]; codes: number[][] }, { keys: string[]; codes: number[][] }];
    assert.equal(local.keys.length, 79);
    assert.ok(!local.keys.includes(removed));
    assert.deepEqual(lance, local);
  });
});

describe('LanceStore#search past ANN_MIN_ROWS', () => {
  it('finds k items of a rare label that the IVF_PQ partitions it probes hold fewer of', async () => {
    const { LanceStore, ANN_MIN_ROWS } = await import('../src/indexer/lance-store.js');
    const { c, model } = await smallCollection('a', 10);
    const store = await LanceStore.connect(parseStore(`lancedb:${tmpDir()}`, readEnv({}).s3), { create: true });
    try {
      const n = ANN_MIN_ROWS;
      const cd = c.manifest.codeDim;
      // codes spread over many clusters; 12 items labelled 'rare', scattered among them
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const rare = new Set(Array.from({ length: 12 }, (_, i) => Math.floor((i + rand()) * (n / 12))));
      const template = [...c.storedItems()][0]!;
      const code = (i: number) => Float32Array.from({ length: cd }, (_, d) => ((i * 7919 + d * 104729) % 97) / 9.7 + rand() * 0.1);
      const items = function* () {
        for (let i = 0; i < n; i++) yield { ...template, key: `k${i}`, label: rare.has(i) ? 'rare' : 'common', code: Buffer.from(code(i).buffer), bits: null };
      };
      const head = await store.publish({ manifest: { ...c.manifest, count: n }, modelDir: c.paths.model, items }, { quiet: true });
      const query = code(3);
      const exact = await store.search(head, query, 10, { labels: ['rare'], exact: true });
      assert.equal(exact.length, 10);
      const hits = await store.search(head, query, 10, { labels: ['rare'], nprobes: 1 });
      assert.deepEqual(hits.map((h) => h.key), exact.map((h) => h.key));
      assert.ok(hits.every((h) => h.label === 'rare'));
    } finally {
      store.close();
      c.close();
      model.dispose();
    }
  });
});

describe('sweepTempCaches', () => {
  it('removes the temporary caches of killed replicas, never one in use or one just made', async () => {
    const { sweepTempCaches, TEMP_CACHE_PREFIX } = await import('../src/indexer/mirror.js');
    const { BuildLock } = await import('../src/indexer/build-lock.js');
    const parent = tmpDir();
    const make = (name: string, o: { old: boolean; lock: 'none' | 'free' | 'held' }) => {
      const dir = path.join(parent, `${TEMP_CACHE_PREFIX}${name}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'copy'), 'x');
      let held: { release(): void } | undefined;
      if (o.lock !== 'none') {
        held = BuildLock.tryFile(path.join(dir, '.latentdex-replica.lock'), 'replica', 0)!;
        if (o.lock === 'free') held.release();
      }
      const t = new Date(Date.now() - (o.old ? 3_600_000 : 0));
      if (o.old) fs.utimesSync(dir, t, t);
      return { dir, held };
    };
    const killed = make('killed', { old: true, lock: 'free' });
    const running = make('running', { old: true, lock: 'held' });
    const starting = make('starting', { old: false, lock: 'free' });
    const unlocked = make('unlocked', { old: true, lock: 'none' });
    const other = path.join(parent, 'someone-else');
    fs.mkdirSync(other);
    try {
      assert.equal(sweepTempCaches(parent), 1);
      assert.ok(!fs.existsSync(killed.dir));
      for (const d of [running.dir, starting.dir, unlocked.dir, other]) assert.ok(fs.existsSync(d), d);
    } finally {
      running.held?.release();
    }
  });
});
