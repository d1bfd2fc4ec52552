import fs from 'node:fs/promises';
import path from 'node:path';
import { fail, messageOf } from '../src/errors.js';
import { walkFiles } from './walk.js';
import { decodeText, type TextSet } from './texts.js';

const TEXT_EXT = new Set(['.txt']);

/** `text:DIR`: one document per .txt file below DIR; label = the sub-folder holding it. */
export async function loadTextDir(root: string): Promise<TextSet> {
  try {
    if (!(await fs.stat(root)).isDirectory()) throw new Error('not a folder');
  } catch (e) {
    throw fail('BAD_SOURCE', `text: needs a folder of .txt files; '${root}' cannot be used (${messageOf(e)})`, e);
  }
  const files = await walkFiles(root, TEXT_EXT);
  if (files.length === 0) throw fail('BAD_SOURCE', `folder '${root}' holds no .txt files`);
  const set: TextSet = { kind: 'text', source: `text:${root}`, keys: [], labels: [], uris: [], groups: [], texts: [] };
  for (const f of files) {
    const rel = path.relative(root, f).split(path.sep).join('/');
    set.texts.push(decodeText(await fs.readFile(f), f));
    set.keys.push(rel);
    const parent = path.dirname(rel);
    set.labels.push(parent === '.' ? null : parent);
    set.uris.push(path.resolve(f));
    set.groups.push(rel);
  }
  return set;
}
