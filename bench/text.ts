import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBrown } from '../data/brown.js';
import { backendName, initBackend } from '../src/encoder/backend.js';
import { fitTextModel, textVectors, type TextModelOptions } from '../src/encoder/text.js';
import { compareModels, formatCompareTable } from '../src/search/compare.js';
import { environment, publish, table } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
await initBackend({ prefer: process.env.LATENTDEX_BACKEND });
const set = loadBrown();
const quick = process.env.BENCH_QUICK === '1';
const off = { denoise: { kind: 'dropout' as const, level: 0 } };
const family: [string, TextModelOptions][] = [
  ['paper: proportions in, softmax + CE out', { weighting: 'proportion', regularisers: off }],
  ['log-tf in, sigmoid + BCE out', { weighting: 'log-tf', output: 'sigmoid', regularisers: off }],
  ['sublinear TF-IDF in, softmax + CE out', { weighting: 'log-tfidf', regularisers: off }],
  ['**default**: the same + word dropout 0.7', {}],
  ['binary 64 bits, noise 4 (semantic hashing)', { regularisers: { binaryBits: 64, binarize: 'noise' } }],
  ['**binary 64 bits, median cut (default)**', { regularisers: { binaryBits: 64 } }],
];
const models = [];
for (const [name, o] of family) {
  process.stderr.write(`training ${name}\n`);
  models.push({ name, model: await fitTextModel(set, { ...(quick ? { epochs: 1 } : {}), quiet: true, ...o }) });
}
const n = set.keys.length;
const side = { n, raw: textVectors(models[0]!.model, set.texts).raw, labels: set.labels, groups: set.groups, keys: set.keys };
const rows = compareModels(models, { kind: 'text', items: side, queries: side, inputOf: (m) => { const v = textVectors(m, set.texts).input; return { items: v, queries: v }; } }, 10);

// scikit-learn on the very same chunks, when Debian's python3-sklearn is installed.
const py = spawnSync('/usr/bin/python3', [path.join(HERE, '..', '..', 'bench', 'sklearn_text.py')], { input: JSON.stringify({ texts: set.texts, labels: set.labels, groups: set.groups }), encoding: 'utf8', maxBuffer: 1 << 26 });
const sk = py.status === 0 ? (JSON.parse(py.stdout) as Record<string, number>) : null;
const f = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));
const anchors = sk
  ? table(
      ['scikit-learn 1.2 on the same chunks (stop_words=english)', 'P@10', "the issue's figure"],
      [
        ['TF-IDF, 2,000 words (by term frequency), cosine', f(sk.tfidf_2000), '0.258'],
        ['LSA-32 over those 2,000 words', f(sk.lsa32_2000), '0.326'],
        [`LSA-32 over the full vocabulary (${sk.vocab_full} words)`, f(sk.lsa32_full), ''],
      ],
    )
  : 'scikit-learn anchors: not installed (apt-get install python3-sklearn).';
publish(
  'text',
  'Documents: Brown corpus (`npm run bench:text`)',
  `All ${n} chunks of \`brown\` (≈200 words, 15 categories): every chunk is a query against all the others, neighbours from its own source text are skipped; P@10 by category, exact search in each code space (cosine; Hamming for binary codes). Models 2000-500-250-125-code, at most ${quick ? 1 : 60} epochs at batch 32, early stopping on 10% held out; labels never used in training. The TF-IDF and LSA rows use latentdex's own vectorizer (2,000 words by document frequency).\n\n${formatCompareTable(rows, 10)}\n\n${anchors}\n\n${environment(backendName())}`,
);
models.forEach((m) => m.model.dispose());
