import fs from 'node:fs/promises';
import { Option } from 'commander';
import { fail } from '../errors.js';
import { MAX_INPUT_PIXELS } from '../../data/decode.js';
import { MAX_FEEDBACK, MAX_SHORTLIST } from '../search/rerank.js';
import { MAX_BATCH, MAX_DEPTH, SearchEngine, type HitList, type SearchOptions, type SearchResponse } from '../search/engine.js';
import type { Novelty } from '../search/outliers.js';
import { globals, startBackend, type Ctx } from './context.js';
import { floatArg, intArg } from './options.js';
import { counted } from '../progress.js';

interface SearchFlags {
  collection: string;
  key?: string[];
  image?: string;
  text?: string;
  code?: string;
  k?: number;
  offset?: number;
  cursor?: string;
  compare?: boolean;
  label?: string[];
  group?: string[];
  prefix?: string;
  maxDistance?: number;
  baselineMaxDistance?: number;
  groupBy?: 'label' | 'group' | 'folder';
  perGroup?: number;
  ef?: number;
  rerank?: number;
  blend?: number;
  feedback?: number;
  novelty?: boolean;
  json?: boolean;
}

function codeArg(v: string): number[] {
  const raw = v.split(',').map((s) => s.trim());
  const parts = raw.map(Number);
  if (raw.some((s) => s === '') || parts.some((n) => !Number.isFinite(n))) throw fail('INVALID_ARGUMENT', `--code takes comma-separated numbers, got '${v.slice(0, 40)}'`);
  return parts;
}

/** One answer as text: the codes' hits, and the baseline's beside them. */
export function formatAnswer(r: SearchResponse): string {
  const q = r.query.key !== null ? `item '${r.query.key}'${r.query.label !== null ? ` (label ${r.query.label})` : ''}` : r.query.snippet !== undefined ? `"${r.query.snippet.slice(0, 60)}"` : 'query';
  const filter = r.filter ? `, filter ${JSON.stringify({ ...r.filter, matched: undefined })} → ${counted(r.filter.matched, 'item')}` : '';
  const shown = Math.max(r.codes.hits.length, r.baseline?.hits.length ?? 0);
  const lines = [`${q} in '${r.collection}'${shown === 1 ? `, hit ${r.offset + 1}` : shown ? `, hits ${r.offset + 1}–${r.offset + shown}` : ''}${filter}`];
  const col = (l: HitList | undefined, i: number) => {
    const h = l?.hits[i];
    return h ? `${h.key}${h.label !== null ? ` [${h.label}]` : ''} ${h.distance.toFixed(4)}` : '';
  };
  const n = shown;
  const width = Math.max(r.codes.method.length, ...Array.from({ length: n }, (_, i) => col(r.codes, i).length));
  lines.push(`rank  ${r.codes.method.padEnd(width)}${r.baseline ? `  ${r.baseline.method}` : ''}`.trimEnd());
  for (let i = 0; i < n; i++) lines.push(`${String(r.offset + i + 1).padStart(4)}  ${col(r.codes, i).padEnd(width)}${r.baseline ? `  ${col(r.baseline, i)}` : ''}`.trimEnd());
  if (n === 0) lines.push('      (no hits)');
  const end = shortlistEnd(r);
  if (end) lines.push(end);
  if (r.next) lines.push(`next page: the same command with --cursor ${r.next}`);
  if (r.novelty !== undefined) lines.push(formatNovelty(r.novelty));
  return lines.join('\n');
}

/** Why the codes' ranking stops short of this page: a two-stage search ranks its shortlist alone. */
function shortlistEnd(r: SearchResponse): string | null {
  const s = r.codes.shortlist;
  if (s === undefined) return null;
  return `the re-ranked ranking ends at its ${s}-row shortlist${s < MAX_SHORTLIST ? `; --rerank N (up to ${MAX_SHORTLIST}) ranks more` : ''}`;
}

/** A query's novelty in one line: its combined percentile and each score's. */
function formatNovelty(n: Novelty | null): string {
  if (n === null) return 'novelty: not computed';
  if (n.percentile === null) return 'novelty: cannot be told (the collection has no scored items)';
  const pct = (p: number | null) => (p === null ? 'n/a' : `${(p * 100).toFixed(1)}%`);
  const among = n.reference.of === 'excerpts' ? `${counted(n.reference.count, `excerpt`)} of ${counted(n.reference.words, 'word')} from the collection's texts` : `the collection's ${counted(n.reference.count, 'item')}`;
  return `novelty: more unusual than ${pct(n.percentile)} of ${among} by the ${n.score} score (reconstruction ${pct(n.reconstruction.percentile)}, code neighbours ${pct(n.neighbors.percentile)}, raw distance ${pct(n.raw.percentile)})`;
}

export function addQueryCommand(ctx: Ctx): void {
  ctx.program
    .command('search')
    .description('nearest items to a key (several: one batch), an image file, a text or a code, with filters, pages, thresholds and grouping')
    .requiredOption('--collection <name>', 'collection to search')
    .option('--key <keys...>', `query by the items with these keys (up to ${MAX_BATCH}; the item itself is left out)`)
    .option('--image <file>', 'query by an image file (image collections)')
    .option('--text <text>', 'query by a text (text collections)')
    .option('--code <values>', 'query by a code: comma-separated numbers')
    .option('--k <n>', `hits per page (default 10; with --max-distance the most hits, default ${MAX_DEPTH})`, intArg(1, MAX_DEPTH))
    .option('--offset <n>', 'hits skipped (pages)', intArg(0, MAX_DEPTH))
    .option('--cursor <c>', 'the next page of a previous answer (printed under it; give the same other options)')
    .option('--compare', 'also the exact baseline: pixels (images) or TF-IDF (texts)')
    .option('--label <labels...>', 'only items with one of these labels')
    .option('--group <groups...>', 'only items of one of these groups (source documents)')
    .option('--prefix <p>', "only items whose key starts with this (a dir: collection's folder: 'cats/')")
    .option('--max-distance <d>', 'every code hit at most this far', floatArg(0))
    .option('--baseline-max-distance <d>', 'every baseline hit at most this far', floatArg(0))
    .addOption(new Option('--group-by <field>', 'at most --per-group hits per label, group or folder').choices(['label', 'group', 'folder']))
    .option('--per-group <n>', 'hits kept per group (default 1)', intArg(1, MAX_DEPTH))
    .option('--ef <n>', 'HNSW search breadth', intArg(1, 4096))
    .option('--rerank <n>', 'two-stage search: rows the codes shortlist for the exact re-ranking (0: codes alone)', intArg(0, MAX_SHORTLIST))
    .option('--blend <w>', 'texts: weight of the code distance in the re-ranking', floatArg(0, 1))
    .option('--feedback <n>', 'texts: the best re-ranked documents folded into the query for a second re-ranking (0: none)', intArg(0, MAX_FEEDBACK))
    .option('--novelty', 'also how unusual the --image or --text is for the collection (scores every item first: about one graph search per item)')
    .option('--json', 'print the API’s JSON answer')
    .action(async (f: SearchFlags) => {
      const given = [f.key, f.image, f.text, f.code].filter((v) => v !== undefined).length;
      if (given !== 1) throw fail('INVALID_ARGUMENT', 'give exactly one query: --key KEY..., --image FILE, --text TEXT or --code V1,V2,...');
      if (f.novelty && f.image === undefined && f.text === undefined) throw fail('INVALID_ARGUMENT', '--novelty goes with --image or --text (an item of the collection has its own scores: `latentdex outliers`)');
      // the collection's items are scored for it: about one graph search per item, once per process
      const novelty = f.novelty ? 'compute' : undefined;
      if (f.key && f.key.length > MAX_BATCH) throw fail('INVALID_ARGUMENT', `at most ${MAX_BATCH} keys per search, got ${f.key.length}`);
      await startBackend(ctx);
      const g = globals(ctx);
      const engine = new SearchEngine({ dataDir: g.dataDir, quiet: g.quiet, maxK: MAX_DEPTH });
      const o: SearchOptions = {
        k: f.k,
        offset: f.offset,
        cursor: f.cursor,
        compare: f.compare,
        filter: { labels: f.label, groups: f.group, prefix: f.prefix },
        maxDistance: f.maxDistance,
        baselineMaxDistance: f.baselineMaxDistance,
        groupBy: f.groupBy,
        perGroup: f.perGroup,
        ef: f.ef,
        rerank: f.rerank,
        blend: f.blend,
        feedback: f.feedback,
      };
      try {
        let answers: SearchResponse[];
        if (f.key && f.key.length > 1) answers = await engine.batch(f.collection, f.key.map((key) => ({ key })), o);
        else if (f.key) answers = [await engine.byKey(f.collection, f.key[0]!, o)];
        else if (f.image !== undefined) {
          const bytes = await fs.readFile(f.image).catch((e: unknown) => {
            throw fail('BAD_FILE', `cannot read image '${f.image}': ${(e as Error).message}`, e);
          });
          // a local file may be as large as a collection's own images, and is named by its path
          answers = [await engine.byImage(f.collection, bytes, o, { name: f.image, maxPixels: MAX_INPUT_PIXELS }, novelty)];
        } else if (f.text !== undefined) answers = [await engine.byText(f.collection, f.text, o, novelty)];
        else answers = [await engine.byCode(f.collection, codeArg(f.code!), o)];
        if (f.json) process.stdout.write(`${JSON.stringify(answers.length === 1 && !(f.key && f.key.length > 1) ? answers[0] : { collection: f.collection, results: answers }, null, 2)}\n`);
        else process.stdout.write(`${answers.map(formatAnswer).join('\n\n')}\n`);
      } finally {
        await engine.close();
      }
    });
}
