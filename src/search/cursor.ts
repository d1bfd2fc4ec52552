import { z } from 'zod';
import { fail } from '../errors.js';

/** Where the next page of a ranking starts, and the collection generation the ranking belongs to. */
export interface Cursor {
  generation: number;
  /** the build of the collection (its creation time) */
  version: string;
  offset: number;
}

const cursorSchema = z.object({ v: z.literal(1), g: z.number().int().min(0), b: z.string().max(64), o: z.number().int().min(0) }).strict();

/** An opaque cursor string (base64url JSON) for a response's `next`. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ v: 1, g: c.generation, b: c.version, o: c.offset })).toString('base64url');
}

/** Reads a cursor a client sent back; INVALID_ARGUMENT when it is not one this server made. */
export function decodeCursor(s: string): Cursor {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  const r = cursorSchema.safeParse(v);
  if (s.length > 300 || !r.success) throw fail('INVALID_ARGUMENT', "cursor is not one this server made; pass the `next` value of a previous answer unchanged");
  return { generation: r.data.g, version: r.data.b, offset: r.data.o };
}
