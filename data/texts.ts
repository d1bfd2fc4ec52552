import type { SkippedFile } from './images.js';
import { fail } from '../src/errors.js';

/** A set of documents: key, label, source uri, group (the source document a chunk came from) and text. */
export interface TextSet {
  kind: 'text';
  source: string;
  keys: string[];
  labels: (string | null)[];
  uris: string[];
  groups: (string | null)[];
  texts: string[];
  /** records or files of the source that could not be used (`jsonl:` lines as FILE:LINE) */
  skipped?: SkippedFile[];
  /** `jsonl:` read with --group-by: the field that named the groups (kept in the collection for its adds) */
  groupField?: string;
}

export function selectTexts(s: TextSet, idx: readonly number[]): TextSet {
  return {
    ...s,
    keys: idx.map((i) => s.keys[i]!),
    labels: idx.map((i) => s.labels[i]!),
    uris: idx.map((i) => s.uris[i]!),
    groups: idx.map((i) => s.groups[i]!),
    texts: idx.map((i) => s.texts[i]!),
  };
}

/** A UTF-8 decoder that throws on invalid bytes instead of replacing them. */
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes file bytes as UTF-8 text, refusing binary files, invalid UTF-8 and empty files with the file named. */
export function decodeText(buf: Uint8Array, name: string): string {
  if (buf.includes(0)) throw fail('BAD_FILE', `${name}: looks binary (contains NUL bytes); text sources take UTF-8 text files`);
  let text: string;
  try {
    text = strictUtf8.decode(buf);
  } catch {
    throw fail('BAD_FILE', `${name}: is not valid UTF-8; re-encode it as UTF-8`);
  }
  if (text.trim() === '') throw fail('BAD_FILE', `${name}: is empty`);
  return text;
}
