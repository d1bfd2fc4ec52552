import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { publicManifest } from '../src/search/routes/read.js';
import { fileURLToPath } from 'node:url';
import { loadBrownPieces } from '../data/brown.js';
import { fromNpy } from '../src/encoder/npy.js';
import { BuildLock } from '../src/indexer/build-lock.js';
import { SearchEngine } from '../src/search/engine.js';
import { digits, tmpDir, writePngFolder } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');

function run(args: string[], dataDir: string) {
  const r = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, ...args], { encoding: 'utf8', env: { ...process.env, LATENTDEX_QUIET: '' }, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('latentdex CLI', () => {
  const dataDir = tmpDir();
  const work = tmpDir();
  const model = path.join(work, 'm');

  it('trains, logging the backend and samples/s, and writes a model directory', () => {
    const r = run(['train', '--source', 'mnist', '--limit', '400', '--epochs', '1', '--hidden', '64', '--code-dim', '6', '--out', model], dataDir);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /tfjs backend: (wasm|cpu|tensorflow)/);
    assert.match(r.err, /samples\/s/);
    assert.ok(fs.existsSync(path.join(model, 'manifest.json')));
  });

  it('splits training over the threads asked for and records them in the manifest', () => {
    const out = path.join(work, 'm2');
    const r = run(['train', '--source', 'mnist', '--limit', '400', '--epochs', '1', '--batch-size', '64', '--hidden', '32', '--code-dim', '4', '--threads', '2', '--out', out], dataDir);
    assert.equal(r.code, 0, r.err);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { training: { threads?: number } };
    assert.equal(manifest.training.threads, 2);
    assert.equal(run(['train', '--source', 'mnist', '--threads', '0', '--out', path.join(work, 'm3')], dataDir).code, 2);
  });

  it('encodes a source into .npy codes, labels and keys', () => {
    const out = path.join(work, 'codes.npy');
    const r = run(['encode', '--model', model, '--source', 'mnist:test', '--limit', '50', '--out', out], dataDir);
    assert.equal(r.code, 0, r.err);
    const codes = fromNpy(fs.readFileSync(out));
    assert.deepEqual(codes.shape, [50, 6]);
    assert.ok(codes.data instanceof Float32Array);
    const labels = fromNpy(fs.readFileSync(path.join(work, 'codes.labels.npy')));
    assert.ok(labels.data instanceof Int32Array);
    assert.equal(labels.data.length, 50);
    assert.equal((JSON.parse(fs.readFileSync(path.join(work, 'codes.keys.json'), 'utf8')) as { keys: string[] }).keys.length, 50);
  });

  it('prints the reconstruction error and writes the PNG grid', () => {
    const out = path.join(work, 'r.png');
    const r = run(['recon', '--model', model, '--source', 'mnist:test', '--limit', '40', '--out', out], dataDir);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /reconstruction error \d+\.\d+ per image/);
    assert.equal(fs.readFileSync(out).subarray(1, 4).toString(), 'PNG');
  });

  it('builds, adds a folder of PNGs, removes, exports and shows info', () => {
    // training flags beside a given model would be ignored: refused before any work
    const ignored = run(['build', '--collection', 'd', '--source', 'mnist', '--limit', '300', '--model', model, '--code-dim', '16', '--input-scale', '0-1'], dataDir);
    assert.equal(ignored.code, 2);
    assert.match(ignored.err, /--code-dim, --input-scale train a new model.*\[INVALID_ARGUMENT\]/);
    assert.equal(run(['build', '--collection', 'd', '--source', 'mnist', '--limit', '300', '--model', model], dataDir).code, 0);
    const pngs = tmpDir();
    writePngFolder(pngs, digits(5, 'test'), 5);
    const add = run(['add', '--collection', 'd', '--source', `dir:${pngs}`], dataDir);
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /now holds 305/);
    const key = fs.readdirSync(pngs)[0]!;
    const file = fs.readdirSync(path.join(pngs, key))[0]!;
    assert.match(run(['remove', '--collection', 'd', '--key', `${key}/${file}`], dataDir).out, /now holds 304/);
    const out = path.join(work, 'export.npy');
    assert.equal(run(['export', '--collection', 'd', '--out', out], dataDir).code, 0);
    assert.deepEqual(fromNpy(fs.readFileSync(out)).shape, [304, 6]);
    const info = JSON.parse(run(['info', '--collection', 'd', '--json'], dataDir).out) as { count: number; codeDim: number };
    assert.equal(info.count, 304);
    assert.equal(info.codeDim, 6);
    // with --json an error comes in the API's shape too, as the last line of stderr, with the same exit status
    const missing = run(['search', '--collection', 'd', '--key', 'nope', '--json'], dataDir);
    assert.equal(missing.code, 2);
    assert.equal(missing.out, '');
    assert.equal((JSON.parse(missing.err.trimEnd().split('\n').at(-1)!) as { error: { code: string } }).error.code, 'ITEM_NOT_FOUND');
    assert.match(run(['search', '--collection', 'd', '--key', 'nope'], dataDir).err, /latentdex: .*\[ITEM_NOT_FOUND\]\n$/);
    const badFlag = run(['search', '--collection', 'd', '--key', 'nope', '--k', 'many', '--json'], dataDir);
    assert.equal(badFlag.code, 2);
    assert.equal((JSON.parse(badFlag.err.trimEnd().split('\n').at(-1)!) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
  });

  it('trains and builds a collection with every architecture and regulariser flag', () => {
    const variants: [string, string[]][] = [
      ['conv', ['--arch', 'conv', '--code-dim', '8']],
      ['denoise', ['--denoise', 'masking:0.25', '--hidden', '32', '--code-dim', '8']],
      ['gauss', ['--denoise', 'gaussian:0.1', '--hidden', '32', '--code-dim', '8']],
      ['dropout', ['--denoise', 'dropout:0.5', '--hidden', '32', '--code-dim', '8']],
      ['sparse', ['--sparse', '0.01', '--hidden', '32', '--code-dim', '8']],
      ['contractive', ['--contractive', '0.05', '--hidden', '32', '--code-dim', '8']],
      ['shift', ['--shift', '2', '--hidden', '32', '--code-dim', '8']],
      ['binary', ['--binary', '64', '--hidden', '32']],
    ];
    for (const [name, flags] of variants) {
      const r = run(['build', '--collection', `v-${name}`, '--source', 'mnist', '--limit', '200', '--train-epochs', '1', ...flags], dataDir);
      assert.equal(r.code, 0, `${name}: ${r.err}`);
      assert.match(r.out, /built collection 'v-[a-z]+': 200 items/);
    }
    const info = JSON.parse(run(['info', '--collection', 'v-binary', '--json'], dataDir).out) as { codeDim: number; model: { regularisers: { binaryBits: number; binarize: string } } };
    assert.equal(info.codeDim, 64);
    assert.equal(info.model.regularisers.binaryBits, 64);
    assert.equal(info.model.regularisers.binarize, 'median');
  });

  it('builds a binary text collection whose bits are cut at the training medians by default', () => {
    const r = run(['build', '--collection', 't-bits', '--source', 'brown', '--limit', '300', '--train-epochs', '1', '--hidden', '32', '--vocab-size', '300', '--binary', '16'], dataDir);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err + r.out, /log-tfidf in, softmax out/);
    const info = JSON.parse(run(['info', '--collection', 't-bits', '--json'], dataDir).out) as { codeDim: number; model: { regularisers: { binarize: string; binaryThresholds: number[] } } };
    assert.equal(info.codeDim, 16);
    assert.equal(info.model.regularisers.binarize, 'median');
    assert.equal(info.model.regularisers.binaryThresholds.length, 16);
    const bad = run(['build', '--collection', 't-x', '--source', 'brown', '--limit', '50', '--binarize', 'sometimes'], dataDir);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /binarize/);
  });

  it('evaluates a JSONL text collection by source document: codes, two-stage, full-vocabulary TF-IDF and LSA rows', async () => {
    // Short pieces of Brown as a user's JSONL file: the source text in a field of its own.
    const set = loadBrownPieces(2);
    const file = path.join(work, 'short.jsonl');
    // Two pieces of each of 100 texts, spread over the categories.
    const picked = set.keys.map((_, i) => i).filter((i) => i % 10 < 2);
    const line = (i: number) => JSON.stringify({ key: set.keys[i], text: set.texts[i], label: set.labels[i], source: set.groups[i] });
    fs.writeFileSync(file, `${picked.map(line).join('\n')}\n`);
    const build = (name: string, extra: string[]) => run(['build', '--collection', name, '--source', `jsonl:${file}`, '--train-epochs', '1', '--hidden', '32', '--code-dim', '8', '--vocab-size', '300', ...extra], dataDir);
    const built = build('short', ['--group-by', 'source']);
    assert.equal(built.code, 0, built.err);
    // an add reads the field the build named; a record without it has no group (not its own key)
    const more = path.join(work, 'more.jsonl');
    fs.writeFileSync(more, `${JSON.stringify({ key: 'new-1', text: set.texts[picked[0]!], source: 'x-source' })}\n${JSON.stringify({ key: 'new-2', text: set.texts[picked[1]!] })}\n`);
    // image model flags on texts are refused, not silently ignored
    for (const flags of [['--input-scale', 'standardised'], ['--loss', 'mse']]) {
      const r = run(['build', '--collection', 'short-scaled', '--source', `jsonl:${more}`, ...flags], dataDir);
      assert.equal(r.code, 2, flags.join(' '));
      assert.match(r.err, /\[INVALID_ARGUMENT\]/);
    }
    const added = run(['add', '--collection', 'short', '--source', `jsonl:${more}`], dataDir);
    assert.equal(added.code, 0, added.err);
    assert.match(added.out, /added 2 items/, added.err);
    // encode leaves out a text without a word of the vocabulary, as build does, and says so
    const odd = path.join(work, 'odd.jsonl');
    fs.writeFileSync(odd, `${JSON.stringify({ key: 'zzz', text: 'qqqq zzzz 1999' })}\n${line(picked[0]!)}\n`);
    const enc = run(['encode', '--collection', 'short', '--source', `jsonl:${odd}`, '--out', path.join(work, 'odd.npy')], dataDir);
    assert.equal(enc.code, 0, enc.err);
    assert.match(enc.out, /wrote 1x8 float32 codes/);
    assert.match(enc.err, /odd\.jsonl#1: none of its \d+ words? is among the \d+ words of the model's vocabulary/);
    assert.deepEqual((JSON.parse(fs.readFileSync(path.join(work, 'odd.keys.json'), 'utf8')) as { keys: string[] }).keys, [set.keys[picked[0]!]]);
    const engine = new SearchEngine({ dataDir, quiet: true });
    const short = await engine.collection('short');
    assert.equal(short.item('new-1').grp, 'x-source');
    assert.equal(short.item('new-2').grp, null);
    // what the API shows of the manifest names the file, not the server's folders
    const shown = JSON.stringify(publicManifest(short.manifest, false));
    assert.ok(!shown.includes(work), shown);
    assert.match(shown, /"source":"jsonl:short\.jsonl"/);
    await engine.close();
    assert.equal(run(['remove', '--collection', 'short', '--key', 'new-1', 'new-2'], dataDir).code, 0);
    const r = run(['eval', '--collection', 'short', '--queries', `jsonl:${file}`, '--group-by', 'source', '--json'], dataDir);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as { rows: { method: string; precision: number }[]; labelledQueries: number };
    // the queries without a word of the 300-word vocabulary are left out and listed, as a build leaves them out
    const left = Number(/skipped (\d+) files? or records?/.exec(r.err)?.[1] ?? 0);
    assert.equal(report.labelledQueries + left, picked.length, r.err);
    const methods = report.rows.map((x) => x.method);
    assert.deepEqual(methods.map((m) => m.split(' ')[0]), ['codes', 'codes', 'HNSW', 'HNSW', 'TF-IDF,', 'LSA']);
    // the two-stage row without feedback, then the default with it
    assert.match(methods[2]!, /top 100 → TF-IDF \+ 0\.3 × code re-rank$/);
    assert.match(methods[3]!, /top 100 → TF-IDF \+ 0\.3 × code re-rank, 3-row feedback$/);
    assert.match(methods[4]!, /full vocabulary of \d+ words/);
    // Without --group-by a query's sibling piece (same text, same category, often its nearest) counts: TF-IDF,
    // which needs no training, scores higher; with it the sibling is skipped. --rerank 0 drops the two-stage row.
    const own = JSON.parse(run(['eval', '--collection', 'short', '--queries', `jsonl:${file}`, '--json', '--rerank', '0'], dataDir).out) as typeof report;
    assert.equal(own.rows.length, 4);
    const tfidf = (x: typeof report) => x.rows.find((row) => row.method.startsWith('TF-IDF'))!.precision;
    assert.ok(tfidf(own) > tfidf(report), `${tfidf(own)} vs ${tfidf(report)}`);
    // A collection built without the field cannot skip a query's own source; a misnamed field is refused.
    assert.equal(build('plain', []).code, 0);
    const refused = run(['eval', '--collection', 'plain', '--queries', `jsonl:${file}`, '--group-by', 'source'], dataDir);
    assert.notEqual(refused.code, 0);
    assert.match(refused.err, /--group-by source.*INVALID_ARGUMENT/);
    assert.match(build('bad', ['--group-by', 'sorce']).err, /"sorce".*BAD_SOURCE/);
    assert.match(build('bad', ['--group-by', 'text']).err, /INVALID_ARGUMENT/);
    assert.match(run(['eval', '--collection', 'short', '--queries', `jsonl:${file}`, '--rerank', '-3'], dataDir).err, /rerank/);
    // a page past the re-ranked shortlist is empty, and says why
    const past = run(['search', '--collection', 'short', '--key', set.keys[picked[1]!]!, '--k', '5', '--rerank', '10', '--offset', '10'], dataDir);
    assert.equal(past.code, 0, past.err);
    assert.match(past.out, /\(no hits\)\n.*ends at its 10-row shortlist; --rerank N/);
  });

  it('exits non-zero with one line naming the problem for bad input', () => {
    const cases: [string[], RegExp][] = [
      [['info', '--collection', 'missing'], /COLLECTION_NOT_FOUND/],
      [['train', '--source', 'nope', '--out', path.join(work, 'x')], /BAD_SOURCE/],
      [['encode', '--model', path.join(work, 'none'), '--source', 'mnist', '--out', path.join(work, 'y.npy')], /MODEL_NOT_FOUND/],
      [['train', '--source', 'mnist', '--out', path.join(work, 'x'), '--epoch', '3'], /unknown option/],
      // a misspelled required option is named as the misspelling, not as the option missing
      [['build', '--colection', 'x', '--source', 'mnist'], /unknown option '--colection'.*\n\(Did you mean --collection\?\)/],
      [['build', '--source', 'mnist'], /required option '--collection <name>' not specified \[INVALID_ARGUMENT\]/],
      [['build', '--collection', 'd', '--source', 'mnist', '--model', model], /COLLECTION_EXISTS/],
      // refused before the source is read or a model trains (no progress line of either)
      [['build', '--collection', 'd', '--source', 'mnist'], /COLLECTION_EXISTS/],
      // options of a store's replica, given without a store, are refused rather than ignored
      [['serve', '--port', '0', '--sync-ms', '100'], /--sync-ms.*INVALID_ARGUMENT/],
      [['serve', '--port', '0', '--hot-limit', '10'], /--hot-limit.*INVALID_ARGUMENT/],
      [['serve', '--port', '0', '--cache-dir', path.join(work, 'cache')], /--cache-dir.*INVALID_ARGUMENT/],
      // numbers in the API's syntax only: no hex, no sign '+', no blanks
      ...['0x10', '+3', ' 3', ''].map((k): [string[], RegExp] => [['search', '--collection', 'd', '--k', k], /'--k <n>' argument .* is invalid.*INVALID_ARGUMENT/]),
    ];
    for (const [args, re] of cases) {
      const r = run(args, dataDir);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, re);
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(r.err, /items\/s|samples\/s/, 'no work before the refusal');
    }
    // a usage error is followed by a one-line hint, not the whole help
    const usage = run(['search', '--collection', 'd', '--k', '0'], dataDir);
    assert.equal(usage.code, 2);
    assert.equal(usage.err.trim().split('\n').length, 2, usage.err);
    assert.match(usage.err, /^latentdex: option '--k <n>' argument '0' is invalid.*\[INVALID_ARGUMENT\]\n/);
    assert.doesNotMatch(usage.err, /Usage:/);
  });

  it('refuses a build of a name another process is building, before any work, and builds it once that ends', () => {
    const lock = BuildLock.tryAcquire(dataDir, 'busy');
    assert.ok(lock);
    const args = ['build', '--collection', 'busy', '--source', 'mnist', '--limit', '50', '--model', model];
    const r = run(args, dataDir);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /being built by another process.*COLLECTION_BUSY/);
    assert.doesNotMatch(r.err, /items\/s/);
    lock.release();
    const ok = run(args, dataDir);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(BuildLock.isHeld(dataDir, 'busy'), false, 'the build released its lock');
  });

  it('refuses a data directory that is or lies below a file before any work', () => {
    const file = path.join(tmpDir(), 'file');
    fs.writeFileSync(file, 'x');
    for (const dir of [file, path.join(file, 'sub', 'deeper')]) {
      const r = run(['build', '--collection', 'x', '--source', 'mnist', '--limit', '50'], dir);
      assert.equal(r.code, 2);
      assert.match(r.err, /is a file|lies below the file.*INVALID_ARGUMENT/);
      assert.doesNotMatch(r.err, /items\/s|samples\/s/);
    }
  });
});
