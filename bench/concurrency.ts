import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { selectImages } from '../data/images.js';
import { loadImageSource } from '../data/sources.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { imagePng } from '../src/encoder/png.js';
import { buildCollection, modelDirOf } from '../src/indexer/build.js';
import { Collection } from '../src/indexer/collection.js';
import { imageItems } from '../src/indexer/items.js';
import { environment, publish, table } from './report.js';

/**
 * A collection shared by processes, measured: reads/s of a server alone, with HTTP writes, and with another
 * process writing; the server's RSS under 200 stalled 5 MB uploads; and every kill point (plus random-time
 * kills) of add, remove and build --replace, each checked to leave the old or the new collection.
 */
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');
const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const KEY = 'bench-key';

await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-conc-'));
const digits = await loadImageSource('mnist');
const model = await fitImageModel(digits, { epochs: 2, quiet: true });
(await buildCollection(model, imageItems(digits), { dataDir, name: 'c', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
model.dispose();
const N = digits.keys.length;

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve', '--port', '0'], { env: { ...process.env, LATENTDEX_API_KEY: KEY, LATENTDEX_QUIET: '1' } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+?)\/?\n/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const { child: server, url } = await startServer();
const keys = digits.keys.filter((_, i) => i % 37 === 0);

async function reads(): Promise<autocannon.Result> {
  let n = 0;
  return autocannon({
    url,
    connections: 8,
    duration: DURATION,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/api/collections/c/items/${keys[n++ % keys.length]}/neighbors?k=10&compare=pixel` }) }],
  });
}

/** Runs `step` in a loop until `until` settles; returns how many steps ran. */
async function loop(step: (i: number) => Promise<void>, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.then(() => (done = true));
  let i = 0;
  while (!done) {
    await step(i++);
    // A write that never waits for the lock resolves in microtasks: yield so autocannon's timers run.
    await new Promise((r) => setImmediate(r));
  }
  return i;
}

const png = imagePng(digits.pixels.subarray(0, 784), 28, 28, 1);
const alone = await reads();

// HTTP writes beside the reads: add an item, then remove it.
const httpReads = reads();
const httpWrites = await loop(async (i) => {
  const fd = new FormData();
  fd.append('image', new Blob([new Uint8Array(png)]), 'w.png');
  fd.append('key', `w-${i}`);
  await fetch(`${url}/api/collections/c/items`, { method: 'POST', body: fd, headers: { authorization: `Bearer ${KEY}` } });
  await fetch(`${url}/api/collections/c/items/w-${i}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
}, httpReads);
const withHttp = await httpReads;

// Another process (this one) writes through the library while the server reads.
const writer = await Collection.open(dataDir, 'c', { quiet: true });
const item = imageItems(selectImages(digits, [1]))[0]!;
const procReads = reads();
const procWrites = await loop(async (i) => {
  await writer.add([{ ...item, key: `p-${i}` }], { quiet: true });
  await writer.remove([`p-${i}`]);
}, procReads);
const withProc = await procReads;
writer.close();

// 200 clients announce 5 MB uploads, send 4.9 MB and stall.
const idleRss = rssMiB(server.pid!);
const port = Number(new URL(url).port);
const sockets: net.Socket[] = [];
let peak = idleRss;
const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid!))), 50);
// A well-formed multipart start: the image part's header, then 4.9 MB of the file, and no end.
const chunk = Buffer.concat([Buffer.from('--B\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'), Buffer.alloc(4_900_000, 45)]);
await Promise.all(
  Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`POST /api/collections/c/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 5000000\r\n\r\n`);
      s.write(chunk, () => resolve());
    });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    sockets.push(s);
  })),
);
await new Promise((r) => setTimeout(r, 3000));
const stalledRss = Math.max(peak, rssMiB(server.pid!));
clearInterval(sampler);
for (const s of sockets) s.destroy();
await new Promise((r) => setTimeout(r, 3000));
const afterRss = rssMiB(server.pid!);
const stillServes = (await fetch(`${url}/api/collections/c`)).status;

// Kill points, with the server running: after each kill, a fresh open and the server both see old or new.
function cli(args: string[], crashAt?: string, killAfterMs?: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, ...args], { env: { ...process.env, LATENTDEX_QUIET: '1', ...(crashAt ? { LATENTDEX_CRASH_AT: crashAt } : {}) }, stdio: 'ignore' });
    const t = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-conc-png-'));
const extra = selectImages(await loadImageSource('mnist:test'), Array.from({ length: 200 }, (_, i) => i));
for (let i = 0; i < extra.keys.length; i++) fs.writeFileSync(path.join(folder, `${extra.keys[i]}.png`), imagePng(extra.pixels.subarray(i * 784, (i + 1) * 784), 28, 28, 1));
const addedKeys = extra.keys.map((k) => `${k}.png`);

async function state(): Promise<{ count: number; version: string; reachable: boolean; server: number; clean: boolean }> {
  const c = await Collection.open(dataDir, 'c', { quiet: true });
  const rows = c.itemRows();
  const found = new Set(c.search(c.codeOf(rows[0]!.id), c.count, Math.min(c.count + 16, 4096)).map((h) => h.id));
  const reachable = c.count <= 4000 ? rows.every((r) => found.has(r.id)) : rows.slice(0, 200).every((r) => c.search(c.codeOf(r.id), 10).some((h) => h.id === r.id));
  const clean = fs.readdirSync(c.paths.home).length === 2 && !fs.readdirSync(c.paths.dir).some((f) => f.includes('.tmp-'));
  const out = { count: c.count, version: c.paths.version, reachable, clean, server: 0 };
  c.close();
  out.server = ((await (await fetch(`${url}/api/collections/c`)).json()) as { count: number }).count;
  return out;
}

type Op = { name: string; args: () => string[]; after: (n: number) => number };
const add: Op = { name: 'add 200', args: () => ['add', '--collection', 'c', '--source', `dir:${folder}`], after: (n) => n + 200 };
const remove: Op = { name: 'remove 200', args: () => ['remove', '--collection', 'c', '--key', ...addedKeys], after: (n) => n - 200 };
const replace: Op = { name: 'build --replace (200)', args: () => ['build', '--collection', 'c', '--source', `dir:${folder}`, '--model', modelDirOf(dataDir, 'c'), '--replace'], after: () => 200 };
const outcomes: { op: string; point: string; old: number; now: number; outcome: string }[] = [];

async function attempt(op: Op, point: string, crashAt?: string, killAfterMs?: number): Promise<void> {
  const b = await state();
  const before = b.count;
  await cli(op.args(), crashAt, killAfterMs);
  const s = await state();
  // A replace is told apart by its version (old and new may hold as many items); add and remove by the count.
  const landed = op === replace ? s.version !== b.version : s.count !== before;
  const outcome = !s.reachable || s.server !== s.count || !s.clean ? 'BROKEN' : !landed ? (s.count === before ? 'old' : 'LOST') : s.count === op.after(before) ? 'new' : 'LOST';
  outcomes.push({ op: op.name, point, old: before, now: s.count, outcome });
  // Undo a landed add, redo a missing remove, so each attempt starts from its op's precondition.
  if (op === add && outcome === 'new') await cli(remove.args());
}

for (const point of ['write:before-commit', 'write:after-commit', 'graph:before-rename']) await attempt(add, point, point);
for (const point of ['write:before-commit', 'write:after-commit', 'graph:before-rename']) {
  await cli(add.args());
  await attempt(remove, point, point);
  if ((await state()).count !== N) await cli(remove.args());
}
for (let i = 0; i < 8; i++) await attempt(add, `random ${(i * 250).toString()} ms`, undefined, i * 250);
for (const point of ['build:before-publish', 'build:after-publish']) await attempt(replace, point, point);
for (let i = 0; i < 8; i++) await attempt(replace, `random ${(i * 300).toString()} ms`, undefined, i * 300);
server.kill('SIGTERM');

const rps = (r: autocannon.Result) => r.requests.average.toFixed(0);
const tally = (op: string) => {
  const o = outcomes.filter((x) => x.op === op);
  const by = (k: string) => o.filter((x) => x.outcome === k).length;
  return `${o.length} kills: ${by('old')} old, ${by('new')} new, ${by('LOST') + by('BROKEN')} lost or broken`;
};
publish(
  'concurrency',
  'A collection shared by processes: reads under writes, stalled uploads, kills',
  `${N.toLocaleString('en')} MNIST items; server in its own process (\`latentdex serve\`); reads are GET neighbours with the exact pixel baseline (\`compare=pixel\`, k = 10), 8 connections, ${DURATION} s each.\n\n${table(
    ['measure', 'figure', 'anchor (same run)', 'goal'],
    [
      ['reads/s, no writes', rps(alone), `p50 ${alone.latency.p50} ms`, ''],
      ['reads/s while HTTP writes run (add + delete in a loop)', rps(withHttp), `${rps(alone)} without writes; ${httpWrites} add+delete pairs`, 'no collapse'],
      ['reads/s while another process writes (add + remove in a loop)', rps(withProc), `${rps(alone)} without writes; ${procWrites} add+remove pairs`, 'no collapse'],
      ['server RSS under 200 stalled 5 MB uploads', `${stalledRss.toFixed(0)} MiB`, `${idleRss.toFixed(0)} MiB idle`, '< 400 MiB'],
      ['server RSS 3 s after the clients left', `${afterRss.toFixed(0)} MiB`, `${idleRss.toFixed(0)} MiB idle; then GET → ${stillServes}`, 'released'],
      ['kills during add', tally(add.name), 'each checked by a fresh open and by the running server', 'none lost'],
      ['kills during remove', tally(remove.name), '', 'none lost'],
      ['kills during build --replace', tally(replace.name), '', 'none lost'],
    ],
  )}\n\nEvery kill: ${outcomes.map((o) => `${o.op} @ ${o.point} → ${o.outcome}`).join('; ')}.\n\n${environment(backendName())}`,
);
