import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBrown } from '../data/brown.js';
import { selectTexts } from '../data/texts.js';
import { TrainedModel } from '../src/encoder/model.js';
import { baselineVectorizerOf, fitTextModel, textVectors, vectorizerOf } from '../src/encoder/text.js';
import { buildVocabulary, tokenize, tokenSpans, Vectorizer } from '../src/encoder/vectorizer.js';
import { buildCollection } from '../src/indexer/build.js';
import { textCollectionSettings, textItems, textItemStream } from '../src/indexer/items.js';
import type { ItemInput } from '../src/indexer/collection.js';
import { SearchEngine } from '../src/search/engine.js';
import { Collection } from '../src/indexer/collection.js';
import { backend, tmpDir } from './helpers.js';

const brown = loadBrown();
const small = selectTexts(brown, Array.from({ length: 400 }, (_, i) => Math.floor((i * brown.keys.length) / 400)));

before(backend);

describe('tokenize', () => {
  it('lower-cases, keeps letters, drops stop words and one-letter tokens, stems on request', () => {
    assert.deepEqual(tokenize("The Jury's 3 findings: it was NOT a surprise!"), ['jurys', 'findings', 'not', 'surprise']);
    assert.deepEqual(tokenize('Running runners ran', true), ['run', 'runner', 'ran']);
    assert.deepEqual(tokenize('the and of to'), []);
  });

  it('keeps the letters of every script, pairs up characters of unspaced scripts, and keeps the ascii cut for old vocabularies', () => {
    assert.deepEqual(tokenize('Café NAÏVE übermäßig, Привет мир, Ελληνικά'), ['café', 'naïve', 'übermäßig', 'привет', 'мир', 'ελληνικά']);
    assert.deepEqual(tokenize('don’t stop'), tokenize("don't stop"));
    assert.deepEqual(tokenize('東京タワー and 東京tower'), ['東京', '京タ', 'タワ', 'ワー', '東京', 'tower']);
    assert.deepEqual(tokenize('ﬁle'), ['file']);
    // marks with no letter before them are no word; the tatweel only stretches a word on the line
    assert.deepEqual(tokenize('\u0301\u0301\u0301 \u064B\u064B word'), ['word']);
    assert.deepEqual(tokenize('كتـــاب ـــــ كتاب'), ['كتاب', 'كتاب']);
    assert.deepEqual(tokenSpans('ـــــ كتـــاب').spans, [{ token: 'كتاب', start: 6, end: 13 }]);
    assert.deepEqual(tokenize('नमस्ते दुनिया'), ['नमस्ते', 'दुनिया']);
    assert.deepEqual(tokenize('Café naïve', false, 'ascii'), ['caf', 'na']);
    const v = buildVocabulary(['café crème', 'café noir'], { size: 10, minDf: 1 });
    assert.equal(v.tokens, 'unicode');
    assert.ok(v.words.includes('café'));
    // a vocabulary saved before the unicode tokenizer (no `tokens`) still cuts texts the way it was built
    const old = new Vectorizer({ words: ['caf', 'cr'], idf: [1, 1], stem: false, docs: 2 });
    assert.deepEqual(Array.from(old.counts('Café crème')), [1, 1]);
  });
});

describe('buildVocabulary and Vectorizer', () => {
  it('keeps the N words in most documents and refuses a text with none of them', () => {
    const v = buildVocabulary(['apple banana cherry', 'apple banana', 'apple date', 'elder fig'], { size: 2, minDf: 1 });
    assert.deepEqual(v.words, ['apple', 'banana']);
    assert.ok(v.idf[0]! < v.idf[1]!);
    const vec = new Vectorizer(v);
    assert.deepEqual(Array.from(vec.vector('banana apple apple', 'proportion')), [2 / 3, 1 / 3].map((x) => Math.fround(x)));
    const t = vec.vector('apple banana', 'tfidf');
    assert.ok(Math.abs(Math.hypot(...t) - 1) < 1e-6);
    const idf = v.idf;
    const sub = [(1 + Math.log(2)) * idf[0]!, idf[1]!];
    const log = vec.vector('banana apple apple', 'log-tfidf');
    sub.forEach((x, i) => assert.ok(Math.abs(log[i]! - x / Math.hypot(...sub)) < 1e-6));
    assert.throws(() => vec.vector('the of and', 'tfidf'), { code: 'EMPTY_TEXT' });
    assert.throws(() => vec.vector('cherry date', 'proportion'), { code: 'EMPTY_TEXT' });
  });
});

describe('text model', () => {
  let model: TrainedModel;
  before(async () => {
    model = await fitTextModel(small, { hidden: [64], codeDim: 8, epochs: 2, batchSize: 32, quiet: true, vocabulary: { size: 300 } });
  });
  after(() => model.dispose());

  it('defaults to sublinear TF-IDF in, word proportions out (softmax + cross-entropy), with word dropout', () => {
    const m = model.manifest;
    assert.deepEqual(m.input, { type: 'bow', vocabSize: 300, weighting: 'log-tfidf' });
    assert.equal(m.output, 'softmax');
    assert.equal(m.loss, 'softmax-ce');
    assert.deepEqual(m.regularisers.denoise, { kind: 'dropout', level: 0.7 });
    const v = textVectors(model, small.texts.slice(0, 3));
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(Math.hypot(...v.input.subarray(i * 300, (i + 1) * 300)) - 1) < 1e-5);
  });

  it('keeps the N most frequent words for the model and every word of its documents for the baseline', () => {
    const input = vectorizerOf(model).vocab;
    const base = baselineVectorizerOf(model).vocab;
    assert.equal(input.words.length, 300);
    const all = new Set(small.texts.flatMap((t) => tokenize(t)));
    assert.equal(base.words.length, all.size);
    assert.ok(input.words.every((w) => base.words.includes(w)));
    // A word of a single document is in the baseline (as scikit-learn keeps it), never in the model's input.
    const once = base.words.find((w) => small.texts.filter((t) => tokenize(t).includes(w)).length === 1)!;
    assert.ok(once && !input.words.includes(once));
    const v = textVectors(model, [`${once} ${input.words[0]}`]).raw[0]!;
    assert.equal(v.index.length, 2);
    assert.ok(Math.abs(Math.hypot(...v.value) - 1) < 1e-6);
  });

  it('never reads labels: other labels, or none, give the same vocabularies and the same codes', async () => {
    const o = { hidden: [16], codeDim: 4, epochs: 1, batchSize: 64, quiet: true, vocabulary: { size: 100 } };
    const relabelled = { ...small, labels: small.labels.map((_, i) => (i % 2 ? 'odd' : null)) };
    const a = await fitTextModel(small, o);
    const b = await fitTextModel(relabelled, o);
    assert.deepEqual(a.extras, b.extras);
    const x = textVectors(a, small.texts.slice(0, 20)).input;
    assert.deepEqual(Array.from(a.encode(x, 20)), Array.from(b.encode(x, 20)));
    a.dispose();
    b.dispose();
  });

  it('persists its vocabulary: a reloaded model gives the same vectors and codes', async () => {
    const dir = path.join(tmpDir(), 'tm');
    await model.save(dir);
    const again = await TrainedModel.load(dir);
    assert.deepEqual(vectorizerOf(again).vocab, vectorizerOf(model).vocab);
    assert.deepEqual(baselineVectorizerOf(again).vocab, baselineVectorizerOf(model).vocab);
    assert.equal(vectorizerOf(again).dim, 300);
    const a = textVectors(model, small.texts.slice(0, 5));
    const b = textVectors(again, small.texts.slice(0, 5));
    assert.deepEqual(Array.from(b.input), Array.from(a.input));
    assert.deepEqual(Array.from(again.encode(b.input, 5)), Array.from(model.encode(a.input, 5)));
    again.dispose();
  });

  it('streams texts in batches that hold the items one batch gives, documents without vocabulary left out of both (strict: an error naming the first)', async () => {
    const docs = { ...small, keys: [...small.keys, 'empty-1', 'empty-2', 'unknown'], texts: [...small.texts, 'the of and to', '1999 2000', 'zyxwv qwertz zyxwv'], labels: [...small.labels, null, null, null], uris: [...small.uris, '', '', ''], groups: [...small.groups, null, null, null] };
    const whole = textItems(model, docs);
    const stream = textItemStream(model, docs, { batch: 7 });
    assert.equal(stream.total, 400);
    assert.deepEqual(stream.keys, small.keys);
    assert.deepEqual(stream.skipped!.map((f) => f.path), ['empty-1', 'empty-2', 'unknown']);
    // a text of stop words has no words; one of words no training text shares is told it has words the model lacks
    assert.match(stream.skipped![0]!.reason, /^no words/);
    assert.match(stream.skipped![2]!.reason, /^none of its 2 words is among the \d+ words of the model's vocabulary/);
    const batches = [...(stream.batches(14) as Iterable<ItemInput[]>)];
    assert.equal(batches.length, Math.ceil((400 - 14) / 7));
    const items = batches.flat();
    assert.deepEqual(items.map((it) => it.key), whole.slice(14).map((it) => it.key));
    items.forEach((it, i) => {
      assert.deepEqual(Array.from(it.input), Array.from(whole[i + 14]!.input));
      assert.deepEqual(it.raw, whole[i + 14]!.raw);
    });
    assert.throws(() => textItemStream(model, selectTexts(docs, [400, 401])), { code: 'EMPTY_TEXT' });
    assert.throws(() => textItemStream(model, docs, { strict: true }), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && e.message.startsWith('empty-1:'));
  });

  it('lists the records the reader skipped and those without vocabulary together, in line order', () => {
    const docs = {
      ...small,
      keys: [...small.keys, 'e1', 'e2'],
      texts: [...small.texts, 'the of and to', '1999 2000'],
      labels: [...small.labels, null, null],
      uris: [...small.uris, 'f.jsonl#2', 'f.jsonl#9'],
      groups: [...small.groups, null, null],
      skipped: [
        { path: 'f.jsonl#3', reason: 'malformed JSON' },
        { path: 'f.jsonl#10', reason: 'empty text' },
      ],
    };
    assert.deepEqual(textItemStream(model, docs).skipped!.map((f) => f.path), ['f.jsonl#2', 'f.jsonl#3', 'f.jsonl#9', 'f.jsonl#10']);
  });

  it('ranks a chunk first when queried with its own text, in codes and in the TF-IDF baseline', async () => {
    const dataDir = tmpDir();
    (await buildCollection(model, textItems(model, small), { dataDir, name: 'b', ...textCollectionSettings(model, small), quiet: true })).close();
    const engine = new SearchEngine({ dataDir, quiet: true });
    for (const i of [3, 150, 321]) {
      const r = await engine.byText('b', small.texts[i]!, { k: 5, compare: true });
      assert.equal(r.codes.hits[0]!.key, small.keys[i]);
      assert.equal(r.baseline!.hits[0]!.key, small.keys[i]);
      assert.ok(r.baseline!.hits[0]!.distance < 1e-5);
      assert.ok(r.codes.hits[0]!.snippet!.length > 0);
      // a text item has no preview: no hit points at one
      assert.ok([...r.codes.hits, ...r.baseline!.hits].every((h) => h.thumbnail === undefined));
    }
    await assert.rejects(engine.byText('b', 'the of and to', { k: 5 }), { code: 'EMPTY_TEXT' });
    await assert.rejects(engine.byText('b', '   ', { k: 5 }), { code: 'EMPTY_TEXT' });
    // a code of zeros has no cosine direction
    await assert.rejects(engine.byCode('b', Array(model.codeDim).fill(0), { k: 5 }), { code: 'INVALID_ARGUMENT' });
    const byKey = await engine.byKey('b', small.keys[10]!, { k: 5, compare: true });
    assert.ok(byKey.codes.hits.every((h) => h.key !== small.keys[10]));
    // Texts are searched in two stages by default (codes shortlist, TF-IDF re-ranks); rerank=0 is codes alone.
    assert.match(byKey.codes.method, /TF-IDF/);
    const alone = await engine.byKey('b', small.keys[10]!, { k: 5, rerank: 0 });
    assert.equal(alone.codes.method, 'hnsw');
    // The whole collection shortlisted and re-ranked by TF-IDF alone (no feedback) is the exact TF-IDF ranking.
    const all = await engine.byKey('b', small.keys[10]!, { k: 5, rerank: small.keys.length, blend: 0, feedback: 0, compare: true });
    assert.deepEqual(all.codes.hits.map((h) => h.key), all.baseline!.hits.map((h) => h.key));
    // Another handle (as another process would) adds and removes: the engine's sparse rows and codes follow, row for row.
    const other = await Collection.open(dataDir, 'b', { quiet: true });
    const fresh = 'the jury said the election was fair and the county grand jury praised the city';
    const v = textVectors(model, [fresh]);
    await other.add([{ key: 'fresh', label: null, uri: null, text: fresh, input: v.input, raw: v.raw[0]!, thumb: null }]);
    await other.remove([small.keys[0]!, small.keys[1]!]);
    other.close();
    const after = await engine.byText('b', fresh, { k: 5, rerank: small.keys.length, blend: 0, feedback: 0, compare: true });
    assert.equal(after.codes.hits[0]!.key, 'fresh');
    assert.deepEqual(after.codes.hits.map((h) => h.key), after.baseline!.hits.map((h) => h.key));
    after.codes.hits.forEach((h, i) => assert.ok(Math.abs(h.distance - after.baseline!.hits[i]!.distance) < 1e-6));
    const gone = await engine.byText('b', small.texts[0]!, { k: 10, compare: true });
    assert.ok([...gone.codes.hits, ...gone.baseline!.hits].every((h) => h.key !== small.keys[0] && h.key !== small.keys[1]));
    await assert.rejects(engine.byKey('b', small.keys[10]!, { k: 5, rerank: -1 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(engine.byKey('b', small.keys[10]!, { k: 5, blend: 2 }), { code: 'INVALID_ARGUMENT' });
    await engine.close();
  });
});
