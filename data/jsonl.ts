import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fail, messageOf } from '../src/errors.js';
import { counted, log } from '../src/progress.js';
import { keyProblem } from './keys.js';
import { skippedText } from './images.js';
import { decodeText, strictUtf8, type TextSet } from './texts.js';

const scalar = z.union([z.string(), z.number()]).nullable().optional();
const record = z
  .object({
    key: z.union([z.string().min(1), z.number()]).optional(),
    text: z.string(),
    label: scalar,
  })
  .passthrough();

/**
 * The lines of a JSONL file, each decoded on its own: a line that is not UTF-8, or holds NUL bytes, is the reason it
 * cannot be read (skipped and listed, not the whole file refused). A file with NUL bytes in its first line or first
 * 64 bytes (a binary file: PNG, gzip, UTF-16 text) or that is empty is refused as `text:` refuses one.
 */
function utf8Lines(buf: Buffer, file: string): (string | { unreadable: string })[] {
  const firstEnd = buf.indexOf(0x0a);
  const head = buf.subarray(0, Math.max(64, firstEnd < 0 ? buf.length : firstEnd));
  // decodeText throws for both, with the reason
  if (head.includes(0) || buf.toString('latin1').trim() === '') decodeText(buf, file);
  const lines: (string | { unreadable: string })[] = [];
  for (let start = 0; start <= buf.length; ) {
    const end = buf.indexOf(0x0a, start);
    const stop = end < 0 ? buf.length : end;
    const bytes = buf.subarray(start, stop);
    if (bytes.includes(0)) lines.push({ unreadable: 'holds NUL bytes (binary data, not text)' });
    else {
      try {
        lines.push(strictUtf8.decode(bytes));
      } catch {
        lines.push({ unreadable: 'not valid UTF-8 (re-encode the file as UTF-8)' });
      }
    }
    start = stop + 1;
  }
  return lines;
}

/** Field names a record may not use as its group (they are the record's own fields). */
const RESERVED = new Set(['key', 'text', 'label']);

/**
 * `jsonl:FILE`: one JSON record `{key?, text, label?, group?}` per line; blank lines are passed over, records that
 * cannot be used skipped and listed (`strict`: the first one is an error). `groupBy` names
 * the field that says which source document a record comes from (default `group`; a record without it has no
 * group): evaluation never counts a neighbour of the query's own group.
 */
export async function loadJsonl(file: string, o: { groupBy?: string; groupOptional?: boolean; strict?: boolean; quiet?: boolean } = {}): Promise<TextSet> {
  const groupField = o.groupBy ?? 'group';
  if (RESERVED.has(groupField)) throw fail('INVALID_ARGUMENT', `--group-by '${groupField}' names a record's own ${groupField}; name the field that holds its source document`);
  let groupsSeen = 0;
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    throw fail('BAD_SOURCE', `cannot read '${file}': ${messageOf(e)}`, e);
  }
  const lines = utf8Lines(buf, file);
  const set: TextSet = { kind: 'text', source: `jsonl:${file}`, keys: [], labels: [], uris: [], groups: [], texts: [], skipped: [], ...(o.groupBy !== undefined ? { groupField: o.groupBy } : {}) };
  const seen = new Set<string>();
  // records are named FILE#LINE, skipped or not, in messages too (as idx: and brown: items are), so that a line fixed
  // and added again leaves the skipped list of collections built before as well
  const where = path.resolve(file);
  const at = (i: number) => `${where}#${i + 1}`;
  // A record that cannot be used is skipped and listed (as dir: skips files), or with `strict` stops the read.
  const skip = (i: number, reason: string, cause?: unknown) => {
    if (o.strict) throw fail('BAD_FILE', `${at(i)}: ${reason} (without --strict it would be skipped)`, cause);
    set.skipped!.push({ path: at(i), reason });
  };
  lines.forEach((line, i) => {
    if (typeof line !== 'string') return skip(i, line.unreadable);
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      return skip(i, `malformed JSON (${messageOf(e)})`, e);
    }
    const r = record.safeParse(obj);
    if (!r.success) return skip(i, `expected {"text": "...", "key"?, "label"?}; ${r.error.issues[0]?.path.join('.') || 'record'} ${r.error.issues[0]?.message}`);
    if (r.data.text.trim() === '') return skip(i, 'empty text');
    const g = scalar.safeParse(Object.hasOwn(r.data, groupField) ? r.data[groupField] : undefined);
    if (!g.success) return skip(i, `"${groupField}" must be a string or a number`);
    const key = r.data.key === undefined ? `line-${i + 1}` : String(r.data.key);
    const bad = keyProblem(key);
    if (bad) return skip(i, bad);
    if (seen.has(key)) return skip(i, `duplicate key '${key}' (the first record with it is kept)`);
    if (g.data !== undefined && g.data !== null) groupsSeen++;
    seen.add(key);
    set.keys.push(key);
    set.texts.push(r.data.text);
    set.labels.push(r.data.label === undefined || r.data.label === null ? null : String(r.data.label));
    set.groups.push(g.data === undefined || g.data === null ? null : String(g.data));
    set.uris.push(at(i));
  });
  const first = set.skipped![0];
  if (set.keys.length === 0) throw fail('BAD_SOURCE', `'${file}' holds no usable record${first ? ` (${set.skipped!.length} skipped; first: ${skippedText(first)})` : ''}`);
  if (o.groupBy !== undefined && groupsSeen === 0 && !o.groupOptional) throw fail('BAD_SOURCE', `no record of '${file}' has a "${groupField}" field; --group-by names the field that holds each record's source document`);
  if (first) log(`skipped ${counted(set.skipped!.length, 'record')} of '${file}' that could not be used (first: ${skippedText(first)})`, o.quiet);
  return set;
}
