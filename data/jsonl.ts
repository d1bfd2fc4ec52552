import fs from 'node:fs/promises';
import { z } from 'zod';
import { fail, messageOf } from '../src/errors.js';
import { decodeText, type TextSet } from './texts.js';

const record = z.object({
  key: z.union([z.string().min(1), z.number()]).optional(),
  text: z.string(),
  label: z.union([z.string(), z.number()]).nullable().optional(),
  group: z.union([z.string(), z.number()]).nullable().optional(),
});

/** `jsonl:FILE`: one JSON record `{key?, text, label?, group?}` per line; blank lines are skipped. */
export async function loadJsonl(file: string): Promise<TextSet> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    throw fail('BAD_SOURCE', `cannot read '${file}': ${messageOf(e)}`, e);
  }
  const lines = decodeText(buf, file).split('\n');
  const set: TextSet = { kind: 'text', source: `jsonl:${file}`, keys: [], labels: [], uris: [], groups: [], texts: [] };
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw fail('BAD_FILE', `${file}:${i + 1}: malformed JSON (${messageOf(e)})`, e);
    }
    const r = record.safeParse(obj);
    if (!r.success) throw fail('BAD_FILE', `${file}:${i + 1}: expected {"text": "...", "key"?, "label"?}; ${r.error.issues[0]?.path.join('.') || 'record'} ${r.error.issues[0]?.message}`);
    if (r.data.text.trim() === '') throw fail('BAD_FILE', `${file}:${i + 1}: empty text`);
    const key = r.data.key === undefined ? `line-${i + 1}` : String(r.data.key);
    if (seen.has(key)) throw fail('BAD_FILE', `${file}:${i + 1}: duplicate key '${key}'`);
    seen.add(key);
    set.keys.push(key);
    set.texts.push(r.data.text);
    set.labels.push(r.data.label === undefined || r.data.label === null ? null : String(r.data.label));
    set.groups.push(r.data.group === undefined || r.data.group === null ? key : String(r.data.group));
    set.uris.push(`${file}#${i + 1}`);
  });
  if (set.keys.length === 0) throw fail('BAD_SOURCE', `'${file}' holds no records`);
  return set;
}
