import fs from 'node:fs/promises';
import path from 'node:path';
import { fail, messageOf, messageWithout } from '../src/errors.js';
import { counted, log } from '../src/progress.js';
import { pathKey, pathKeyProblem } from './keys.js';
import { walkFiles } from './walk.js';
import { skippedText } from './images.js';
import { decodeText, type TextSet } from './texts.js';

const TEXT_EXT = new Set(['.txt']);

/**
 * `text:DIR`: one document per .txt file below DIR; label = the sub-folder holding it. A file that is not UTF-8 text
 * is skipped and listed (`strict`: an error).
 */
export async function loadTextDir(root: string, o: { strict?: boolean; quiet?: boolean } = {}): Promise<TextSet> {
  try {
    if (!(await fs.stat(root)).isDirectory()) throw new Error('not a folder');
  } catch (e) {
    throw fail('BAD_SOURCE', `text: needs a folder of .txt files; '${root}' cannot be used (${messageOf(e)})`, e);
  }
  const files = await walkFiles(root, TEXT_EXT);
  if (files.length === 0) throw fail('BAD_SOURCE', `folder '${root}' holds no .txt files`);
  const set: TextSet = { kind: 'text', source: `text:${root}`, keys: [], labels: [], uris: [], groups: [], texts: [], skipped: [] };
  for (const f of files) {
    const rel = pathKey(root, f);
    const bad = pathKeyProblem(rel);
    if (bad) {
      if (o.strict) throw fail('BAD_FILE', `${skippedText({ path: f, reason: bad })} (without --strict it would be skipped)`);
      set.skipped!.push({ path: path.resolve(f), reason: bad });
      continue;
    }
    let text: string;
    try {
      text = decodeText(await fs.readFile(f), f);
    } catch (e) {
      // an empty, binary or non-UTF-8 file is skipped and listed, as dir: skips images (strict: an error)
      if (o.strict) throw fail('BAD_FILE', `${messageOf(e)} (without --strict it would be skipped)`, e);
      set.skipped!.push({ path: path.resolve(f), reason: messageWithout(e, f) });
      continue;
    }
    set.texts.push(text);
    set.keys.push(rel);
    const parent = path.dirname(rel);
    set.labels.push(parent === '.' ? null : parent);
    set.uris.push(path.resolve(f));
    // one file, one document: no source document above it (a group per key would list every file as a source)
    set.groups.push(null);
  }
  if (set.keys.length === 0) throw fail('BAD_SOURCE', `folder '${root}' holds no usable .txt file (first: ${skippedText(set.skipped![0]!)})`);
  const first = set.skipped![0];
  if (first) log(`skipped ${counted(set.skipped!.length, 'file')} in '${root}' that could not be used (first: ${skippedText(first)})`, o.quiet);
  return set;
}
