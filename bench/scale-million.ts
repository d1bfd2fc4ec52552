/**
 * The million-item rows of `npm run bench:scale`: a build of the million-image IDX set (bench/make-million.ts) by the
 * CLI in a process of its own, timed and with its peak RSS, next to a build of 60,000 of its items (spread over it)
 * by the same model in the same run; then HNSW recall@10 and queries/s at that size against the exact code scan.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Collection } from '../src/indexer/collection.js';
import { FlatScan } from '../src/indexer/flat-scan.js';
import { fashion } from './fashion.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..', '..');
const CLI = path.join(ROOT, 'bin', 'latentdex.js');
const PROBE = path.join(HERE, 'peak-rss.js');
const TRAIN_ITEMS = 20_000;
const ANCHOR_ITEMS = 60_000;

interface Run {
  seconds: number;
  peakRss: number;
}

/** Runs the CLI with `args`, inheriting stderr (its progress bars); fails the benchmark if it fails. */
function cli(args: string[]): Run {
  const rssFile = path.join(os.tmpdir(), `latentdex-rss-${process.pid}-${Date.now()}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', PROBE, CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LATENTDEX_PEAK_RSS_FILE: rssFile } });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`latentdex ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  const peakRss = Number(fs.readFileSync(rssFile, 'utf8'));
  fs.rmSync(rssFile, { force: true });
  return { seconds, peakRss };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const rel of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = fs.statSync(path.join(dir, rel));
    if (st.isFile()) total += st.size;
  }
  return total;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toLocaleString('en-US', { maximumFractionDigits: 0 })} MiB`;
const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Table rows for a build of `count` items (figure, latentdex, anchor in the same run, goal). */
export async function millionRows(count: number): Promise<string[][]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-million-'));
  try {
    const gen = spawnSync(process.execPath, [path.join(HERE, 'make-million.js'), work, String(count)], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (gen.status !== 0) throw new Error('bench/make-million failed');
    const source = `idx:${path.join(work, 'million-images-idx3-ubyte')},${path.join(work, 'million-labels-idx1-ubyte')}`;
    const dataDir = path.join(work, 'data');
    const model = path.join(work, 'model');
    const train = cli(['--data-dir', dataDir, 'train', '--source', source, '--limit', String(TRAIN_ITEMS), '--epochs', '3', '--out', model]);
    const anchor = cli(['--data-dir', dataDir, 'build', '--collection', 'first', '--source', source, '--limit', String(Math.min(ANCHOR_ITEMS, count)), '--model', model]);
    const full = cli(['--data-dir', dataDir, 'build', '--collection', 'million', '--source', source, '--model', model]);

    const c = await Collection.open(dataDir, 'million');
    let measured: { n: number; ef: number; M: number; recall: number; hnswQps: number; exactQps: number };
    try {
      const queries = await fashion('t10k', 1000);
      const nq = queries.keys.length;
      const cd = c.manifest.codeDim;
      const q = c.model.encode(queries.pixels, nq);
      const { ids, data } = c.codeMatrix();
      const scan = new FlatScan(data, cd, 'l2');
      const tE = performance.now();
      const exact = Array.from({ length: nq }, (_, i) => scan.knn(q.subarray(i * cd, (i + 1) * cd), 10));
      const exactQps = nq / ((performance.now() - tE) / 1000);
      const tH = performance.now();
      const hnsw = Array.from({ length: nq }, (_, i) => c.search(q.subarray(i * cd, (i + 1) * cd), 10));
      const hnswQps = nq / ((performance.now() - tH) / 1000);
      let recall = 0;
      for (let i = 0; i < nq; i++) {
        const truth = new Set(exact[i]!.map((h) => ids[h.index]));
        recall += hnsw[i]!.filter((h) => truth.has(h.id)).length / 10;
      }
      measured = { n: c.count, ef: c.manifest.hnsw.ef, M: c.manifest.hnsw.M, recall: recall / nq, hnswQps, exactQps };
    } finally {
      c.close();
    }
    const { n, ef, M, recall, hnswQps, exactQps } = measured;
    const disk = dirBytes(path.join(dataDir, 'million'));
    const anchorDisk = dirBytes(path.join(dataDir, 'first'));
    const anchorN = Math.min(ANCHOR_ITEMS, count);
    return [
      [`build of ${fmt(n)} items of 28×28 after training (s)`, `${fmt(full.seconds)} (${fmt(n / full.seconds)} items/s)`, `${fmt(anchorN)} items: ${fmt(anchor.seconds)} s (${fmt(anchorN / anchor.seconds)} items/s)`, '< 900'],
      ['peak RSS of the build process', mb(full.peakRss), `${fmt(anchorN)} items: ${mb(anchor.peakRss)}`, '< 2 GiB'],
      ['bytes per item on disk (catalogue with pixels and thumbnails, codes, graph)', fmt(disk / n), `${fmt(anchorN)} items: ${fmt(anchorDisk / anchorN)}; 784 of them are the pixels`, ''],
      [`HNSW recall@10 at ${fmt(n)} (ef ${ef}, M ${M}), 1,000 t10k queries`, fmt(recall, 4), '1 (exact code scan)', '≥ 0.99'],
      [`queries/s at ${fmt(n)}, HNSW 10-NN (1 thread)`, fmt(hnswQps), `${fmt(exactQps)} (exact 32-d code scan, wasm SIMD)`, ''],
      [`training before the builds: ${fmt(TRAIN_ITEMS)} items × 3 epochs (s)`, fmt(train.seconds), '', ''],
    ];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
