import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadBrown, stripTags } from '../data/brown.js';
import { loadTextSource } from '../data/sources.js';
import { pngOf, tmpDir } from './helpers.js';

describe('brown source', () => {
  it('strips POS tags and cuts the 500 texts into ~200-word chunks labelled by the 15 categories', () => {
    assert.deepEqual(stripTags('The/at jury/nn said/vbd ,/, ``/`` no/at'), ['The', 'jury', 'said', 'no']);
    const s = loadBrown();
    assert.equal(new Set(s.groups).size, 500);
    assert.equal(new Set(s.labels).size, 15);
    assert.ok(s.keys.length > 4500 && s.keys.length < 5500);
    const words = s.texts.map((t) => t.split(' ').length);
    assert.ok(Math.min(...words) >= 200 && Math.max(...words) < 400);
    assert.ok(!s.texts[0]!.includes('/at'));
    assert.equal(s.groups[0], 'ca01');
    assert.equal(s.labels[0], 'news');
  });
});

describe('text: and jsonl: sources', () => {
  it('reads .txt files with the sub-folder as label', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'sport'));
    fs.writeFileSync(path.join(dir, 'sport', 'a.txt'), 'The match ended in a draw.');
    fs.writeFileSync(path.join(dir, 'b.txt'), 'Unlabelled note.');
    const s = await loadTextSource(`text:${dir}`);
    assert.deepEqual(s.keys, ['b.txt', 'sport/a.txt']);
    assert.deepEqual(s.labels, [null, 'sport']);
  });

  it('skips and lists empty, binary and invalid UTF-8 files; strict refuses the first, naming it; none usable is BAD_SOURCE', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'good.txt'), 'a good document about sailing');
    const bad = [
      ['empty.txt', Buffer.from('   \n')],
      ['binary.txt', Buffer.from([0x50, 0x4b, 0x00, 0x03])],
      ['latin1.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6e])],
    ] as const;
    for (const [name, bytes] of bad) fs.writeFileSync(path.join(dir, name), bytes);
    const s = await loadTextSource(`text:${dir}`);
    assert.deepEqual(s.keys, ['good.txt']);
    assert.deepEqual(s.skipped!.map((f) => path.basename(f.path)).sort(), bad.map(([n]) => n).sort());
    assert.ok(s.skipped!.every((f) => f.reason.length > 5 && !f.reason.includes(dir)));
    await assert.rejects(loadTextSource(`text:${dir}`, { strict: true }), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && /binary\.txt|empty\.txt|latin1\.txt/.test(e.message));
    fs.rmSync(path.join(dir, 'good.txt'));
    await assert.rejects(loadTextSource(`text:${dir}`), { code: 'BAD_SOURCE' });
  });

  it('reads JSONL records, and skips and lists each unusable line with its number (strict: the first is an error)', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'docs.jsonl');
    fs.writeFileSync(f, '{"key": "x", "text": "first document", "label": "a"}\n\n{"text": "second one"}\n');
    const s = await loadTextSource(`jsonl:${f}`);
    assert.deepEqual(s.keys, ['x', 'line-3']);
    assert.deepEqual(s.labels, ['a', null]);
    assert.deepEqual(s.skipped, []);
    fs.writeFileSync(f, ['{"text": "ok"}', '{"text": "broken"', '{"body": "no text field"}', '{"text": "  "}', '{"text": 5}', '[1, 2]', '{"key": "k", "text": "one"}', '{"key": "k", "text": "two"}', 'null'].join('\n'));
    const t = await loadTextSource(`jsonl:${f}`);
    assert.deepEqual(t.keys, ['line-1', 'k']);
    assert.deepEqual(t.texts, ['ok', 'one']);
    assert.deepEqual(t.skipped!.map((x) => x.path), [2, 3, 4, 5, 6, 8, 9].map((n) => `${f}#${n}`));
    assert.match(t.skipped!.find((x) => x.path.endsWith('#8'))!.reason, /duplicate key 'k'/);
    await assert.rejects(loadTextSource(`jsonl:${f}`, { strict: true }), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && e.message.includes('#2:'));
    fs.writeFileSync(f, '{"text": ""}\n');
    await assert.rejects(loadTextSource(`jsonl:${f}`), (e: Error & { code?: string }) => e.code === 'BAD_SOURCE' && e.message.includes('empty text'));
    // one line that is not UTF-8, or a key with control characters, is that record's problem, not the file's
    fs.writeFileSync(f, Buffer.concat([Buffer.from('{"text": "caf'), Buffer.of(0xe9), Buffer.from('"}\n{"text": "fine"}\n{"key": "a\\u0007b", "text": "bell"}\n{"key": "\\ud800", "text": "half"}\n{"key": " ", "text": "blank"}\n')]));
    const u = await loadTextSource(`jsonl:${f}`);
    assert.deepEqual(u.keys, ['line-2']);
    assert.deepEqual(u.skipped!.map((x) => [x.path, /UTF-8|control|surrogate|blank/.test(x.reason)]), [1, 3, 4, 5].map((n) => [`${f}#${n}`, true]));
    // NUL bytes in a later line are that line's problem; in the first line, the file looks binary and is refused
    const first = 'the first record of the file, longer than the 64 bytes looked at for a binary file';
    fs.writeFileSync(f, Buffer.concat([Buffer.from(`{"text": "${first}"}\n{"text": "bin`), Buffer.of(0, 1), Buffer.from('ary"}\n{"text": "last"}\n')]));
    const nul = await loadTextSource(`jsonl:${f}`);
    assert.deepEqual(nul.texts, [first, 'last']);
    assert.deepEqual(nul.skipped, [{ path: `${f}#2`, reason: 'holds NUL bytes (binary data, not text)' }]);
    fs.writeFileSync(f, Buffer.of(0x7b, 0, 0x7d));
    await assert.rejects(loadTextSource(`jsonl:${f}`), { code: 'BAD_FILE' });
    // a PNG named .jsonl: its first line ("\x89PNG\r") holds no NUL, its first bytes do
    fs.writeFileSync(f, pngOf(new Uint8Array(16).fill(200), 4, 4));
    await assert.rejects(loadTextSource(`jsonl:${f}`), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && /looks binary/.test(e.message));
  });
});
