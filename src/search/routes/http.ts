import type { StoreIndex, StoreWriter } from '../app.js';
import type { DemoBuild } from '../demo.js';
import type express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { fail } from '../../errors.js';
import { sniffImage } from '../../../data/decode.js';
import type { SearchEngine } from '../engine.js';
import { codeBody, emptyQuery, searchFields, textBody } from '../schemas.js';

/** What every router of the app is given: the engine, the app's options, and the shared middleware. */
export interface RouteContext {
  engine: SearchEngine;
  /** serve originals and full paths (see AppDeps.serveOriginals) */
  serveOriginals: boolean;
  backend: string | null;
  version: string | null;
  /** demo collections being built in the background */
  demo: { status(): DemoBuild[] } | null;
  /** a replica's writes go to its store (AppDeps.writer) */
  writer: StoreWriter | null;
  /** a replica's collections too large to copy, searched through the store's index (AppDeps.indexed) */
  indexed: StoreIndex | null;
  /** runs a handler as tracked engine work, errors to the error middleware */
  wrap: (h: Handler) => (req: Request, res: Response, next: NextFunction) => void;
  /** multipart upload of one image in field `image` */
  upload: express.RequestHandler;
  /** 403/401 unless writes are on and the API key is sent */
  requireKey: express.RequestHandler;
  /** the methods any router serves on a path below /api (see methodsServed) */
  methodsOn: (path: string) => string[];
}

export type Handler = (req: Request, res: Response) => Promise<void> | void;

/** A zod issue in words: `query parameter 'k': number must be …`, `body: unknown field 'txt'`. */
function issueText(i: z.ZodIssue, what: 'query string' | 'body' | 'fields'): string {
  const noun = what === 'query string' ? 'query parameter' : what === 'body' ? 'body field' : 'field';
  if (i.code === 'unrecognized_keys') return `unknown ${noun}${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}; see /api/openapi.json`;
  // `k=3&k=4` (or a form field sent twice) reaches the schema as an array
  if (i.code === 'invalid_type' && i.received === 'array' && what !== 'body') return `${noun} '${i.path.join('.')}' is given more than once; give it once`;
  const message = i.message.charAt(0).toLowerCase() + i.message.slice(1);
  return i.path.length ? `${noun} '${i.path.join('.')}': ${message}` : `${what}: ${message}`;
}

/** Validates a value from the client with a zod schema; INVALID_ARGUMENT naming the first problem. */
export function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, v: unknown, what: 'query string' | 'body' | 'fields'): T {
  const r = schema.safeParse(v);
  if (!r.success) throw fail('INVALID_ARGUMENT', issueText(r.error.issues[0]!, what));
  return r.data;
}

/** Refuses any query parameter, on routes that take none (`/random?label=x` would otherwise pass silently). */
export const noQuery: express.RequestHandler = (req, _res, next) => {
  parse(emptyQuery, req.query, 'query string');
  next();
};

/** The JSON body of a search: a code or a text (one of the two), or undefined when it has neither. */
export function searchBody(body: unknown, collection: string): { code: number[] } | { text: string } | undefined {
  if (Array.isArray(body)) throw fail('INVALID_ARGUMENT', 'the body is a JSON array; send one query as an object, {"code": [...]} or {"text": "..."}, or many to /search/batch as {"queries": [...]}');
  if (!body || typeof body !== 'object') return undefined;
  const has = (f: string) => Object.hasOwn(body, f);
  if (has('code') && has('text')) throw fail('INVALID_ARGUMENT', 'send {"code": [...]} or {"text": "..."}, not both');
  if (has('key') && !has('code') && !has('text')) {
    const key = (body as { key?: unknown }).key;
    const item = typeof key === 'string' && key !== '' ? encodeURIComponent(key) : 'KEY';
    throw fail('INVALID_ARGUMENT', `a search by an item's key is GET /api/collections/${encodeURIComponent(collection)}/items/${item}/neighbors; /search takes {"code": [...]} or {"text": "..."}`);
  }
  if (has('code')) return parse(codeBody, body, 'body');
  if (has('text')) return parse(textBody, body, 'body');
  return undefined;
}

/**
 * What a search request asks by: an uploaded image (multipart `image`), a text (multipart field `text`, or JSON),
 * a code (JSON), or undefined when it carries none of them.
 */
export function searchInput(req: Request): { image: Buffer } | { code: number[] } | { text: string } | undefined {
  if (!req.is('multipart/form-data')) return searchBody(req.body, req.params.c ?? '');
  const fields = parse(searchFields, { ...req.body }, 'fields');
  if (req.file && fields.text !== undefined) throw fail('INVALID_ARGUMENT', 'send an image (field `image`) or a text (field `text`), not both');
  if (req.file) return { image: req.file.buffer };
  return fields.text === undefined ? undefined : { text: fields.text };
}

/** What a search request must carry, said when it carries none of it. */
export const SEARCH_BODY_HELP = 'send an image as multipart field `image`, a text as multipart field `text`, or JSON {"code": [...]} or {"text": "..."}';

/** The content type of a stored preview from its first bytes. */
export function previewType(b: Buffer): string {
  return sniffImage(b) === 'webp' ? 'image/webp' : 'image/png';
}

/** The part of an express router's route layer this module reads (express 4 keeps it in `router.stack`). */
interface RouteLayer {
  regexp: RegExp;
  route?: { methods: Record<string, boolean> };
}

/**
 * The methods the routers serve on a path (uppercase, HEAD beside GET), to answer 405 with `Allow` when a path is
 * served but not for the method asked, instead of a 404 that says the route does not exist.
 */
export function methodsServed(routers: express.Router[]): (path: string) => string[] {
  const layers = routers.flatMap((r) => (r.stack as RouteLayer[]).filter((l) => l.route !== undefined));
  // checked when the app is built, so that an express whose routers look otherwise fails at start, not per request
  if (layers.length === 0 || layers.some((l) => !(l.regexp instanceof RegExp) || typeof l.route!.methods !== 'object')) {
    throw fail('INTERNAL', 'the routers are not laid out as express 4 lays them out; check the express version in package.json');
  }
  return (path) => {
    const methods = new Set<string>();
    for (const l of layers) {
      if (!l.regexp.test(path)) continue;
      for (const [m, on] of Object.entries(l.route!.methods)) if (on && m !== '_all') methods.add(m.toUpperCase());
    }
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
