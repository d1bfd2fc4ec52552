import { createHash } from 'node:crypto';
import { z } from 'zod';
import { fail } from '../errors.js';
import { stableJson } from '../stable-json.js';

/** Where the next page of a ranking starts, and the collection generation the ranking belongs to. */
export interface Cursor {
  /** the collection the ranking is of */
  collection: string;
  generation: number;
  /** the build of the collection (its creation time) */
  version: string;
  offset: number;
  /** fingerprint of the query and of the options that shape its ranking and pages: see `pageFingerprint` */
  options: string;
}

const cursorSchema = z.object({ v: z.literal(3), c: z.string().max(64), g: z.number().int().min(0), b: z.string().max(64), o: z.number().int().min(0), f: z.string().max(32) }).strict();

/** An opaque cursor string (base64url JSON) for a response's `next`. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ v: 3, c: c.collection, g: c.generation, b: c.version, o: c.offset, f: c.options })).toString('base64url');
}

/** Reads a cursor a client sent back; INVALID_ARGUMENT when it is not one this server made. */
export function decodeCursor(s: string): Cursor {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  // a cursor of an earlier format was made by this server before an upgrade: stale, not forged
  if (s.length <= 400 && typeof v === 'object' && v !== null && 'v' in v && typeof v.v === 'number' && v.v < 3) {
    throw fail('STALE_CURSOR', 'this cursor was made by an earlier version of latentdex; start again from the first page');
  }
  const r = cursorSchema.safeParse(v);
  if (s.length > 400 || !r.success) throw fail('INVALID_ARGUMENT', "cursor is not one this server made; pass the `next` value of a previous answer unchanged");
  return { collection: r.data.c, generation: r.data.g, version: r.data.b, offset: r.data.o, options: r.data.f };
}

/**
 * A short fingerprint of the options a page depends on. A cursor carries it, so that a next page asked with other
 * options (a dropped filter, another k) is refused instead of silently answering another query's page.
 */
export function optionsFingerprint(options: Record<string, unknown>): string {
  return createHash('sha256').update(stableJson(options)).digest('base64url').slice(0, 16);
}

/**
 * What a cursor carries: the options' fingerprint and the query's code (with the item it is, if any), so that a next
 * page asked for another query, with the cursor of the first, is refused too.
 */
export function pageFingerprint(options: string, query: { code: Float32Array; id: number | null }): string {
  return createHash('sha256').update(options).update(String(query.id)).update(new Uint8Array(query.code.buffer, query.code.byteOffset, query.code.byteLength)).digest('base64url').slice(0, 16);
}
