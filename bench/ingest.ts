import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadDir, spread } from '../data/dir.js';
import { decodeImage, MAX_INPUT_PIXELS, PREVIEW_SIDE, type DecodeTarget } from '../data/decode.js';
import { resampleArea } from '../data/resample.js';
import { walkFiles } from '../data/walk.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItemStream } from '../src/indexer/items.js';
import { progress } from '../src/progress.js';
import { emojiFolder } from './emoji.js';
import { environment, publish, table } from './report.js';

// Ingest of a large messy folder: N images of mixed sizes (16–640 px, any aspect) and formats (PNG, JPEG, WebP)
// made from the emoji set by crops, flips and resizes, with a few broken files. Peak RSS is this process's.
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const N = Number(process.env.BENCH_INGEST_N ?? 100_000);
const dir = path.join(os.tmpdir(), `latentdex-ingest-${N}`);
const emoji = await walkFiles(emojiFolder(), new Set(['.png']));

async function makeFolder(): Promise<void> {
  if (fs.existsSync(path.join(dir, '.complete'))) return;
  const bar = progress({ title: 'make files', total: N, unit: 'files' });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < N; i = next++) {
      const src = emoji[i % emoji.length]!;
      const sub = path.join(dir, path.basename(path.dirname(src)), String(i % 97));
      fs.mkdirSync(sub, { recursive: true });
      const w = 16 + ((i * 7919) % 625);
      const h = 16 + ((i * 104729) % 625);
      let img = sharp(src).resize(w, h, { fit: 'fill' });
      if (i % 3 === 1) img = img.flop();
      const fmt = ['png', 'jpeg', 'webp'][i % 3]!;
      const ext = fmt === 'jpeg' ? 'jpg' : fmt;
      // Each file is a function of its number alone: files an interrupted run (or a smaller N) made are kept.
      const file = path.join(sub, `${i}.${ext}`);
      if (!fs.existsSync(file)) await img.toFormat(fmt as 'png').toFile(file);
      if (i % 10_000 === 0) fs.writeFileSync(path.join(sub, `broken-${i}.jpg`), Buffer.alloc(50, 9));
      if (i % 1000 === 0) bar.update(i);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  bar.stop();
  fs.writeFileSync(path.join(dir, '.complete'), '');
}

await makeFolder();
const files = await walkFiles(dir, new Set(['.png', '.jpg', '.webp']));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

// Anchor: the same decoding one file at a time (as latentdex read folders before), on the first 3,000 files.
const anchorN = 3000;
let t = performance.now();
const seq = await loadDir(dir, { limit: anchorN, concurrency: 1, quiet: true });
const seqRate = seq.keys.length / ((performance.now() - t) / 1000);
seq.previews?.close();
// CPU time per image (both cores' worth): what the wall-clock rates are bounded by on this machine
const cpuMs = (since: NodeJS.CpuUsage, n: number) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000 / n;
};
let cpu = process.cpuUsage();
const bare = await loadDir(dir, { limit: anchorN, previews: false, quiet: true });
const bareCpu = cpuMs(cpu, bare.keys.length);

// Anchor for the decode itself, measured after the build (so that the RSS peaks above never hold its bytes): the same
// 3,000 files, bytes already read, through today's decode and through the pipeline before 2026-11-24 (an RGBA
// intermediate for every file, the preview flattened by libvips).
async function decodeAnchors(): Promise<{ nowCpu: number; beforeCpu: number }> {
  // the bytes are read first and dropped after, so that neither the timing nor the RSS figures below carry them
  const sample = spread(files.length, anchorN).map((i) => fs.readFileSync(files[i]!));
  const target: DecodeTarget = { width: 32, height: 32, channels: 3, fit: 'contain', background: '#ffffff', resample: 'area' };
  const previousDecode = async (buf: Buffer): Promise<void> => {
    const input = () => sharp(buf, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error', autoOrient: true, pages: 1 });
    await input().metadata();
    const mid = await input().resize(PREVIEW_SIDE, PREVIEW_SIDE, { fit: 'inside', withoutEnlargement: true }).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const preview = sharp(mid.data, { raw: { width: mid.info.width, height: mid.info.height, channels: 4 } }).flatten({ background: '#ffffff' }).resize(PREVIEW_SIDE, PREVIEW_SIDE, { fit: 'inside' }).webp({ quality: 70, effort: 0 }).toBuffer();
    resampleArea({ data: mid.data, width: mid.info.width, height: mid.info.height }, { ...target, fit: 'contain', background: '#ffffff' });
    await preview;
  };
  const cpuOf = async (decode: (buf: Buffer) => Promise<unknown>): Promise<number> => {
    let next = 0;
    const since = process.cpuUsage();
    const worker = async () => {
      for (let i = next++; i < sample.length; i = next++) await decode(sample[i]!).catch(() => undefined);
    };
    await Promise.all(Array.from({ length: 4 * os.availableParallelism() }, worker));
    return cpuMs(since, sample.length);
  };
  return { nowCpu: await cpuOf((b) => decodeImage(b, target, 'x', { preview: true })), beforeCpu: await cpuOf(previousDecode) };
}

t = performance.now();
cpu = process.cpuUsage();
const set = await loadDir(dir, {});
const decodeS = (performance.now() - t) / 1000;
const decodeCpu = cpuMs(cpu, set.keys.length);
const rssAfterDecode = process.resourceUsage().maxRSS * 1024;
t = performance.now();
const trainN = 5000;
const trainIdx = Array.from({ length: trainN }, (_, i) => Math.floor((i * set.keys.length) / trainN));
const { selectImages } = await import('../data/images.js');
const model = await fitImageModel(selectImages(set, trainIdx), { epochs: 3, quiet: false });
const trainS = (performance.now() - t) / 1000;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-ingest-data-'));
t = performance.now();
cpu = process.cpuUsage();
const c = await buildCollection(model, imageItemStream(set), { dataDir, name: 'ingest', kind: 'image', space: 'l2', rawDim: model.inputDim, rawType: 'u8', params: {}, quiet: false });
const indexS = (performance.now() - t) / 1000;
const indexCpu = cpuMs(cpu, set.keys.length);
const cores = os.availableParallelism();
const peak = process.resourceUsage().maxRSS * 1024;
const sizes = c.diskSizes();
c.close();
set.previews?.close();
fs.rmSync(dataDir, { recursive: true, force: true });
const { nowCpu, beforeCpu } = await decodeAnchors();

publish(
  'ingest',
  'Ingest of a large image folder (`npm run bench:ingest`)',
  `${files.length.toLocaleString('en')} files (${set.keys.length.toLocaleString("en")} images of 16–640 px a side as PNG, JPEG and WebP, made from the emoji set, plus ${set.skipped.length} broken files) in nested label folders; defaults (32x32, colour, contain). Training on 5,000 of them (3 epochs) is the part a user can size with \`--train-limit\`; it is shown apart.\n\n${table(
    ['figure', 'value', 'anchor (same run)'],
    [
      ['decode, images/s (4 per core in flight, libvips threads)', (set.keys.length / decodeS).toFixed(0), `${seqRate.toFixed(0)} one file at a time (first ${anchorN.toLocaleString('en')} files)`],
      ['files indexed / skipped and listed', `${set.keys.length} / ${set.skipped.length}`, ''],
      ['peak RSS after decoding', mib(rssAfterDecode), `pixels held: ${mib(set.pixels.byteLength)} as bytes (float32 would be ${mib(set.pixels.length * 4)})`],
      ['encode + insert + HNSW, images/s', (set.keys.length / indexS).toFixed(0), ''],
      ['peak RSS through the whole build', mib(peak), 'goal < 1.5 GiB'],
      ['whole build (decode + index), images/s', (set.keys.length / (decodeS + indexS)).toFixed(0), 'goal ≥ 500'],
      [`CPU per image: decode of one file's bytes with preview (first ${anchorN.toLocaleString('en')} files), ms`, nowCpu.toFixed(2), `${beforeCpu.toFixed(2)} by the pipeline before 2026-11-24 (RGBA for every file, libvips flatten)`],
      ['CPU per image: decode with preview / index, ms', `${decodeCpu.toFixed(2)} / ${indexCpu.toFixed(2)}`, `decode without preview ${bareCpu.toFixed(2)} (first ${anchorN.toLocaleString('en')} files)`],
      [`ceiling with ${cores} cores fully busy, images/s`, ((cores * 1000) / (decodeCpu + indexCpu)).toFixed(0), `without previews ${((cores * 1000) / (bareCpu + indexCpu)).toFixed(0)}`],
      ['training on 5,000 (3 epochs), s', trainS.toFixed(0), ''],
      ['catalogue on disk, bytes per item (pixels, preview, code)', ((sizes.catalogue ?? 0) / set.keys.length).toFixed(0), ''],
    ],
  )}\n\n${environment(backendName())}`,
);
