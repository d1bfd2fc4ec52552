import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Option } from 'commander';
import { gridPng } from '../encoder/png.js';
import { writeFileAtomic } from '../encoder/npy.js';
import { fail, messageOf } from '../errors.js';
import { MAX_INPUT_PIXELS } from '../../data/decode.js';
import { Collection } from '../indexer/collection.js';
import { denoiseImage } from '../search/denoise.js';
import { DUPLICATE_FACTOR, DUPLICATE_LIMIT, findDuplicates, type ThresholdSource } from '../search/duplicates.js';
import { evaluateOutliers, formatOutlierEval } from '../search/outlier-eval.js';
import { DEFAULT_SCORE, outliers, OUTLIER_SCORES, type OutlierScore } from '../search/outliers.js';
import { globals, startBackend, type Ctx } from './context.js';
import { floatArg, intArg, outFileArg } from './options.js';
import { counted } from '../progress.js';

/** Opens a collection for one command and closes it after. */
async function withCollection<T>(ctx: Ctx, name: string, fn: (c: Collection) => Promise<T> | T): Promise<T> {
  await startBackend(ctx);
  const g = globals(ctx);
  const c = await Collection.open(g.dataDir, name, { quiet: g.quiet });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const fixed = (v: number | null, d = 4) => (v === null ? '–' : v.toFixed(d));

/** `outliers`, `duplicates`, `denoise` and `eval-outliers`: looking into a collection with its model and codes. */
export function addAnalysisCommands(ctx: Ctx): void {
  ctx.program
    .command('outliers')
    .description('the most unusual items of a collection (labels are not read), worst first, with their scores')
    .requiredOption('--collection <name>', 'collection name')
    .addOption(new Option('--score <name>', 'how unusual is measured').choices([...OUTLIER_SCORES]).default(DEFAULT_SCORE))
    .option('--top <n>', 'items listed', intArg(1, 1000), 20)
    .option('--offset <n>', 'items skipped', intArg(0), 0)
    .option('--out <file>', 'image collections: PNG of the items (top row) above their reconstructions', outFileArg)
    .option('--json', 'print JSON')
    .action((f: { collection: string; score: OutlierScore; top: number; offset: number; out?: string; json?: boolean }) =>
      withCollection(ctx, f.collection, async (c) => {
        const list = outliers(c, { score: f.score, top: f.top, offset: f.offset });
        if (f.out) {
          const i = c.model.manifest.input;
          if (i.type !== 'pixels') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; --out draws images`);
          const ids = list.items.map((it) => c.item(it.key).id);
          const png = gridPng([ids.map((id) => c.pixelsOf(id)), ids.map((id) => c.model.decode(c.codeOf(id), 1, { like: c.pixelsOf(id) }))], i.width, i.height, i.channels, Math.max(1, Math.round(56 / i.width)));
          await writeFileAtomic(f.out, png);
        }
        if (f.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        const lines = [
          `${counted(list.count, 'item')} of '${c.name}' ranked by ${list.score} score (higher = more unusual)${f.out ? `; picture: ${f.out}` : ''}`,
          '',
          '| rank | key | label | score | percentile | reconstruction error | code distance to 5th neighbour | pixel/TF-IDF distance to 5th code neighbour |',
          '|---:|---|---|---:|---:|---:|---:|---:|',
          ...list.items.map((it) => `| ${it.rank} | ${it.key} | ${it.label ?? ''} | ${it.score.toFixed(4)} | ${(it.percentile * 100).toFixed(1)} | ${fixed(it.reconstruction)} | ${fixed(it.neighbors)} | ${fixed(it.raw)} |`),
          '',
        ];
        process.stdout.write(lines.join('\n'));
      }),
    );

  ctx.program
    .command('duplicates')
    .description('groups of near-duplicate items (codes, then raw vectors, within thresholds); exact copies always group')
    .requiredOption('--collection <name>', 'collection name')
    .option('--threshold <d>', `largest code distance of a pair (default: ${DUPLICATE_FACTOR} × the median distance of an item to its 5th neighbour)`, floatArg(0))
    .option('--raw-threshold <d>', `largest pixel (or TF-IDF cosine) distance of a pair (default: ${DUPLICATE_FACTOR} × the median)`, floatArg(0))
    .option('--limit <n>', 'groups listed, largest first', intArg(1, DUPLICATE_LIMIT.max), DUPLICATE_LIMIT.default)
    .option('--json', 'print JSON')
    .action((f: { collection: string; threshold?: number; rawThreshold?: number; limit: number; json?: boolean }) =>
      withCollection(ctx, f.collection, (c) => {
        const d = findDuplicates(c, { threshold: f.threshold, rawThreshold: f.rawThreshold, limit: f.limit });
        const keyOf = (id: number) => c.rowOf(id)?.key ?? `#${id}`;
        const groups = d.groups.map((g) => ({ ...g, keys: g.ids.map(keyOf) }));
        if (f.json) return void process.stdout.write(`${JSON.stringify({ ...d, groups }, null, 2)}\n`);
        process.stdout.write(
          [
            `${counted(d.count, 'group')} (${counted(d.items, 'item')}) in '${c.name}' within code distance ${d.threshold.toFixed(4)} and raw distance ${d.rawThreshold.toFixed(4)} (${thresholdsText(d.thresholds)})`,
            ...groups.map((g) => `${g.exact ? 'exact copies' : `near (≤ ${g.maxDistance.toFixed(4)})`}: ${g.keys.join('  ')}`),
            '',
          ].join('\n'),
        );
      }),
    );

  ctx.program
    .command('denoise')
    .description("an image as the collection's model reconstructs it (a model trained with --denoise removes noise)")
    .requiredOption('--collection <name>', 'image collection whose model to use')
    .requiredOption('--in <file>', 'image to denoise')
    .requiredOption('--out <file>', 'image to write: .png, .jpg or .webp', outFileArg)
    .action((f: { collection: string; in: string; out: string }) =>
      withCollection(ctx, f.collection, async (c) => {
        const bytes = await fs.readFile(f.in).catch((e: unknown) => {
          throw fail('BAD_FILE', `cannot read '${f.in}' (${messageOf(e)})`, e);
        });
        // a local file, as `search --image` reads one: the file's name in errors, the limit of files on disk
        const ext = path.extname(f.out).toLowerCase();
        const format = ({ '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' } as const)[ext];
        if (!format) throw fail('INVALID_ARGUMENT', `--out '${f.out}': write .png, .jpg or .webp`);
        const out = await denoiseImage(c, bytes, { name: f.in, maxPixels: MAX_INPUT_PIXELS });
        // the file's format is its extension's (the model's PNG re-encoded when another is asked for)
        await writeFileAtomic(f.out, format === 'png' ? out.png : await sharp(out.png).flatten({ background: '#ffffff' }).toFormat(format).toBuffer());
        process.stdout.write(`wrote ${f.out} (${out.width}x${out.height})${out.denoising ? '' : `; note: '${c.name}' was not trained with --denoise, so its model reconstructs rather than removes noise`}\n`);
      }),
    );

  ctx.program
    .command('eval-outliers')
    .description('AUROC and precision of the top N of the outlier scores against labelled anomalies, beside PCA and pixel k-NN')
    .requiredOption('--collection <name>', 'image collection')
    .requiredOption('--anomaly <labels...>', 'labels that mark the anomalies (used only to score)')
    .option('--json', 'print JSON')
    .action((f: { collection: string; anomaly: string[]; json?: boolean }) =>
      withCollection(ctx, f.collection, (c) => {
        const r = evaluateOutliers(c, f.anomaly);
        process.stdout.write(f.json ? `${JSON.stringify(r, null, 2)}\n` : formatOutlierEval(r));
      }),
    );
}

/** How the two duplicate thresholds were chosen, in a few words. */
function thresholdsText(t: { code: ThresholdSource; raw: ThresholdSource }): string {
  if (t.code === t.raw) return t.code === 'exact copies only' ? 'too few items for default thresholds: exact copies only' : `${t.code} thresholds`;
  const one = (s: ThresholdSource) => (s === 'exact copies only' ? '0, too few items for a default' : s);
  return `code threshold ${one(t.code)}, raw threshold ${one(t.raw)}`;
}
