import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { fail, isLatentdexError, LatentdexError, messageOf } from '../errors.js';
import type { DemoBuild } from './demo.js';
import type { SearchEngine } from './engine.js';
import type { Collection, ItemInput } from '../indexer/collection.js';
import type { StoreIndexedCollection } from '../indexer/store-indexed.js';
import { MAX_QUERY_TEXT } from './schemas.js';
import { analysisRoutes } from './routes/analysis.js';
import { openapiRoutes } from './routes/openapi.js';
import { readRoutes } from './routes/read.js';
import { searchRoutes } from './routes/search.js';
import { storeIndexRoutes } from './routes/store-index.js';
import { writeRoutes } from './routes/write.js';
import { methodsServed, type Handler, type RouteContext } from './routes/http.js';

export interface AppDeps {
  engine: SearchEngine;
  /** enables the write routes; they answer 403 when unset */
  apiKey?: string;
  /** largest upload in bytes (default 5 MB) */
  maxUploadBytes?: number;
  /** folder of the web page served at / */
  webDir?: string;
  backend?: string;
  version?: string;
  /** serve each image item's original file, only from the folders the collection was read from (off by default) */
  serveOriginals?: boolean;
  /** host names the Host header may carry (DNS-rebinding guard); undefined accepts any */
  allowedHosts?: string[];
  /** requests with a body (uploads, JSON) handled at once; more answer 429 (default 16) */
  maxBodies?: number;
  /** demo collections being built in the background (`serve --demo`), reported by /api/health */
  demo?: { status(): DemoBuild[] };
  /** where writes go when the collections are copies of a store's (`serve --store`): the store, not the copies */
  writer?: StoreWriter;
  /** a replica's collections too large to copy (`serve --store --hot-limit`), searched through the store's index */
  indexed?: StoreIndex;
}

/** The collections a replica serves from its store's index instead of a local copy. */
export interface StoreIndex {
  indexed(name: string): StoreIndexedCollection | undefined;
  indexedNames(): string[];
}

/** Writes of a replica: made in the store, then shown by the local copy; each answers the collection's new count. */
export interface StoreWriter {
  /** the new count, and how many of the items replaced one of the same key */
  add(c: Collection, items: ItemInput[], o: { replace?: boolean }): Promise<{ count: number; replaced: number }>;
  remove(c: Collection, keys: string[]): Promise<number>;
}

/** The host name of a Host header, without port (IPv6 literals keep their brackets). */
export function hostName(header: string | undefined): string {
  const h = (header ?? '').trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return i >= 0 ? h.slice(0, i) : h;
}

/** Status → code for the client errors that express, body-parser and busboy raise before a handler runs. */
function clientError(status: number, message: string): LatentdexError {
  const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA' : status === 408 ? 'REQUEST_TIMEOUT' : 'INVALID_ARGUMENT';
  return fail(code, `bad request: ${message}`);
}

/** The 4xx status an upstream library put on an error (express path decoding, body-parser), if any. */
function upstreamStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown };
  const s = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return s !== undefined && s >= 400 && s < 500 ? s : undefined;
}

/** Whether an error only says the client went away mid-request (nothing to log, nobody to answer). */
function isAbort(err: unknown, req: Request): boolean {
  if (req.socket.destroyed) return true;
  const e = err as { type?: unknown; code?: unknown; message?: unknown } | null;
  return e?.type === 'request.aborted' || e?.code === 'ECONNRESET' || e?.code === 'ECONNABORTED' || e?.message === 'Request aborted';
}

/** Why body-parser refused a JSON body: not JSON at all, or JSON that is not an object (`null`, `3`, `"x"`). */
function jsonBodyProblem(body: unknown): string {
  const invalid = 'request body is not valid JSON';
  if (typeof body !== 'string') return invalid;
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return invalid;
  }
  return `request body must be a JSON object, got ${v === null ? 'null' : typeof v}`;
}

/** A multipart field's byte limit: the longest query text (MAX_QUERY_TEXT characters) at 3 UTF-8 bytes each, so that
 * multipart takes every text JSON takes and the schema names the limit in characters. */
const MAX_FIELD_BYTES = 3 * MAX_QUERY_TEXT;

/** Builds the express app (routes, validation, one error middleware); the caller decides whether to listen. */
export function createApp(deps: AppDeps): express.Express {
  const { engine } = deps;
  const maxUpload = deps.maxUploadBytes ?? 5 * 1024 * 1024;
  const multerUpload = multer({ storage: multer.memoryStorage(), limits: { fileSize: maxUpload, files: 1, fields: 8, fieldSize: MAX_FIELD_BYTES, parts: 10 } }).single('image');
  // Multipart errors (no boundary, truncated body, wrong field) are the client's: 400/413, never 500.
  const upload: express.RequestHandler = (req, res, next) =>
    multerUpload(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      if (isLatentdexError(err)) return next(err);
      if (err instanceof multer.MulterError) {
        if (err.code === 'LIMIT_FILE_SIZE') return next(fail('PAYLOAD_TOO_LARGE', `upload is over the ${(maxUpload / 1048576).toFixed(0)} MB limit; send a smaller image`));
        if (err.code === 'LIMIT_UNEXPECTED_FILE' && err.field === 'text') return next(fail('INVALID_ARGUMENT', "bad upload: field `text` was sent as a file; send the words themselves as a plain form field (curl -F 'text=…', not -F 'text=@file') or as JSON {\"text\": \"…\"}"));
        if (err.code === 'LIMIT_UNEXPECTED_FILE') return next(fail('INVALID_ARGUMENT', `bad upload: the image must be sent in the multipart field \`image\` (got '${err.field ?? ''}')`));
        if (err.code === 'LIMIT_FIELD_VALUE') return next(fail('PAYLOAD_TOO_LARGE', `field '${err.field ?? ''}' is over ${MAX_QUERY_TEXT.toLocaleString('en')} characters; send a shorter text`));
        return next(fail('INVALID_ARGUMENT', `bad upload: ${err.message}`));
      }
      if (isAbort(err, req)) return next(err);
      next(fail('INVALID_ARGUMENT', `bad upload: ${messageOf(err)}; send multipart/form-data with the image in field \`image\``));
    });
  const maxBodies = deps.maxBodies ?? 16;
  let bodies = 0;
  // Every handler runs as tracked engine work, so closing the engine waits for it even if its client hung up.
  const wrap =
    (h: Handler) =>
    (req: Request, res: Response, next: NextFunction): void => {
      engine.track(async () => h(req, res)).catch(next);
    };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Node's querystring: `k[]=3`, `a[b]=1`, `__proto__=1` and `=1` reach the schemas as the keys they are (and are
  // refused as unknown), where qs would build arrays and objects of them or drop them without a word.
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    res.set('x-content-type-options', 'nosniff').set('x-frame-options', 'DENY').set('referrer-policy', 'no-referrer');
    // A page on another origin that rebinds its DNS name to this address still sends its own name as Host.
    if (deps.allowedHosts && !deps.allowedHosts.includes(hostName(req.get('host')))) {
      return next(fail('MISDIRECTED', `host '${hostName(req.get('host'))}' is not served here; open the page at http://localhost or start the server with --allowed-host`));
    }
    next();
  });
  // Bodies are buffered (uploads up to the limit, JSON up to 1 MB): bound how many are in flight at once.
  app.use((req, res, next) => {
    const hasBody = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) > 0 : req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) return next();
    if (bodies >= maxBodies) {
      res.set('retry-after', '1').set('connection', 'close');
      return next(fail('TOO_MANY_REQUESTS', `${maxBodies} uploads are in progress; retry in a moment`));
    }
    bodies++;
    let done = false;
    const release = () => {
      if (!done) bodies--;
      done = true;
    };
    res.on('close', release);
    res.on('finish', release);
    next();
  });
  // Every body the API reads is JSON or a multipart upload: anything else (an image sent raw) is refused unread.
  app.use((req, _res, next) => {
    const type = req.headers['content-type'];
    if (type === undefined || req.is(['application/json', 'multipart/form-data']) !== false) return next();
    next(fail('UNSUPPORTED_MEDIA', `a body of type '${type.split(';')[0]}' is not read here; send JSON, or an image as a multipart/form-data upload in field \`image\``));
  });
  app.use(express.json({ limit: '1mb' }));

  const requireKey: express.RequestHandler = (req, _res, next) => {
    if (!deps.apiKey) return next(fail('WRITES_DISABLED', 'write routes are off; start the server with LATENTDEX_API_KEY set to enable them'));
    const got = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    const a = Buffer.from(got);
    const b = Buffer.from(deps.apiKey);
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return next(fail('UNAUTHORIZED', 'missing or wrong API key; send Authorization: Bearer <LATENTDEX_API_KEY>'));
    next();
  };

  // the methods each path is served with, known once every router is built (routers ask it while handling requests)
  let served: (path: string) => string[] = () => [];
  const ctx: RouteContext = { engine, serveOriginals: Boolean(deps.serveOriginals), backend: deps.backend ?? null, version: deps.version ?? null, demo: deps.demo ?? null, writer: deps.writer ?? null, indexed: deps.indexed ?? null, wrap, upload, requireKey, methodsOn: (p) => served(p) };
  const routers = [storeIndexRoutes(ctx), readRoutes(ctx), searchRoutes(ctx), analysisRoutes(ctx), writeRoutes(ctx), openapiRoutes(deps.version)];
  served = methodsServed(routers);
  // OPTIONS lists every router's methods for the path (express would answer with the first matching router's only)
  app.options('/api/*', (req, res, next) => {
    const allow = served(req.path.slice('/api'.length));
    if (allow.length === 0) return next();
    res.set('allow', [...allow, 'OPTIONS'].join(', ')).status(204).end();
  });
  app.use('/api', ...routers);

  app.use('/api', (req, res, next) => {
    const allow = served(req.path);
    if (allow.length === 0 || allow.includes(req.method)) return next(fail('NOT_FOUND', `no route ${req.method} ${req.originalUrl}; see the README for the API`));
    res.set('allow', allow.join(', '));
    next(fail('METHOD_NOT_ALLOWED', `${req.method} is not served on ${req.baseUrl}${req.path}; use ${allow.filter((m) => m !== 'HEAD').join(' or ')}`));
  });
  if (deps.webDir) app.use(express.static(path.resolve(deps.webDir), { index: 'index.html' }));

  // The one error middleware: LatentdexError codes → statuses; a 4xx an upstream library set is honoured; a client
  // that went away gets no answer and no log line; anything else is a 500, logged.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e: LatentdexError;
    const upstream = upstreamStatus(err);
    if (isLatentdexError(err)) e = err;
    else if (typeof err === 'object' && err !== null && (err as { type?: unknown }).type === 'entity.too.large') {
      e = fail('PAYLOAD_TOO_LARGE', 'request body is over the 1 MB limit');
    } else if (typeof err === 'object' && err !== null && (err as { type?: unknown }).type === 'entity.parse.failed') {
      e = fail('INVALID_ARGUMENT', jsonBodyProblem((err as { body?: unknown }).body));
    } else if (isAbort(err, req)) {
      return;
    } else if (upstream !== undefined) {
      e = clientError(upstream, err instanceof URIError ? 'the path is not valid percent-encoding' : messageOf(err));
    } else {
      // The details (paths, library internals) go to the log, not to the client.
      e = fail('INTERNAL', 'internal error; the server log has the details', err);
      process.stderr.write(`latentdex: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    if (res.headersSent) return;
    if (e.code === 'COLLECTION_BUSY' || e.code === 'TOO_MANY_REQUESTS') res.set('retry-after', '1');
    res.status(e.status).json({ error: { code: e.code, message: deps.serveOriginals ? e.message : engine.publicMessage(e.message) } });
  });
  return app;
}
