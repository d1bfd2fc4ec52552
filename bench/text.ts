import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBrown, loadBrownPieces } from '../data/brown.js';
import type { TextSet } from '../data/texts.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitTextModel, textVectors, type TextModelOptions } from '../src/encoder/text.js';
import { compareModels, formatCompareTable } from '../src/search/compare.js';
import { RERANK_DEFAULTS } from '../src/search/rerank.js';
import { VECTORIZER_DEFAULTS } from '../src/encoder/vectorizer.js';
import { environment, publish, table } from './report.js';

// Text retrieval on two open sets — Brown's 200-word chunks and Brown cut into short pieces — every document a
// query against all the others, neighbours from its own source text skipped, P@10 by category. The models never
// see the categories; TF-IDF and LSA (latentdex's and scikit-learn's) are measured on the very same documents.
const HERE = path.dirname(fileURLToPath(import.meta.url));
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const quick = process.env.BENCH_QUICK === '1';
const family: [string, TextModelOptions][] = [
  ['**default** (log-TF-IDF in, softmax out, word dropout 0.7)', {}],
  ['binary 64 bits, median cut (default for --binary)', { regularisers: { binaryBits: 64 } }],
];
const f = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));

async function measure(set: TextSet, what: string): Promise<string> {
  const models = [];
  for (const [name, o] of family) {
    process.stderr.write(`${set.source}: training ${name}\n`);
    models.push({ name, model: await fitTextModel(set, { ...(quick ? { epochs: 1 } : {}), quiet: true, ...o }) });
  }
  const n = set.keys.length;
  const side = { n, raw: textVectors(models[0]!.model, set.texts).raw, labels: set.labels, groups: set.groups, keys: set.keys };
  const rows = compareModels(models, { kind: 'text', items: side, queries: side, inputOf: (m) => { const v = textVectors(m, set.texts).input; return { items: v, queries: v }; } }, 10, RERANK_DEFAULTS.text);
  models.forEach((m) => m.model.dispose());
  // scikit-learn on the very same documents, when Debian's python3-sklearn is installed.
  const py = spawnSync('/usr/bin/python3', [path.join(HERE, '..', '..', 'bench', 'sklearn_text.py')], { input: JSON.stringify({ texts: set.texts, labels: set.labels, groups: set.groups }), encoding: 'utf8', maxBuffer: 1 << 26 });
  const sk = py.status === 0 ? (JSON.parse(py.stdout) as Record<string, number>) : null;
  const anchors = sk
    ? table(
        ['scikit-learn on the same documents (stop_words=english)', 'P@10'],
        [
          [`TF-IDF, full vocabulary (${sk.vocab_full} words), cosine`, f(sk.tfidf_full)],
          [`LSA-32 over the full vocabulary`, f(sk.lsa32_full)],
          ['TF-IDF, 2,000 words (by term frequency), cosine', f(sk.tfidf_2000)],
          ['LSA-32 over those 2,000 words', f(sk.lsa32_2000)],
        ],
      )
    : 'scikit-learn anchors: not installed (apt-get install python3-sklearn).';
  return `### ${what}\n\n${n} documents, ${new Set(set.labels).size} categories, ${new Set(set.groups).size} source texts.\n\n${formatCompareTable(rows, 10)}\n\n${anchors}`;
}

const sections = [await measure(loadBrown(), 'Brown, 200-word chunks (`brown`)'), await measure(loadBrownPieces(), 'Brown, short pieces of 2–3 sentences, 20–60 words (`brown:short`)')];
const rr = RERANK_DEFAULTS.text;
publish(
  'text',
  'Documents: Brown corpus, long and short (`npm run bench:text`)',
  `Every document is a query against all the others; neighbours from its own source text are skipped; P@10 by category. Models ${VECTORIZER_DEFAULTS.size}-500-250-125-32 over the ${VECTORIZER_DEFAULTS.size.toLocaleString('en-US')} words in most documents (binary: 64 bits), at most ${quick ? 1 : 60} epochs at batch 32, early stopping on 10% held out; labels never used in training. Code rows are exact search in code space (cosine; Hamming for binary codes); the two-stage rows shortlist the top ${rr.shortlist} by code and re-rank by ${1 - rr.blend} × TF-IDF cosine distance + ${rr.blend} × code cosine distance, then (rows with feedback, the API's default for texts) add the mean TF-IDF vector and unit code of the ${rr.feedback} best re-ranked documents to the query's and re-rank the same shortlist once more (Rocchio feedback; the query itself and the other chunks of its source text are never fed back). TF-IDF and LSA rows use latentdex's sparse TF-IDF over the full vocabulary of the documents.\n\n${sections.join('\n\n')}\n\n${environment(backendName())}`,
);
