import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { MAX_SHORTLIST } from './rerank.js';
import { imagePng } from '../encoder/png.js';
import { fail, isLatentdexError, LatentdexError, messageOf } from '../errors.js';
import type { Collection } from '../indexer/collection.js';
import { projectCodes } from './map.js';
import { sniffImage, type DecodedImage } from '../../data/decode.js';
import { decodeQueryImage, textQueryVectors, type SearchEngine, type SearchOptions, type SearchResponse } from './engine.js';

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

/** The content type of a stored preview from its first bytes. */
function previewType(b: Buffer): string {
  return sniffImage(b) === 'webp' ? 'image/webp' : 'image/png';
}

/** Whether `file` lies inside one of `roots` once links are resolved (a path that does not exist is not). */
function insideRoots(file: string, roots: string[]): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return undefined;
  }
  for (const r of roots) {
    let root: string;
    try {
      root = fs.realpathSync(r);
    } catch {
      continue;
    }
    if (relativeInside(root, real) !== undefined) return real;
  }
  return undefined;
}

/** `p` relative to `root` when it lies below it ('..top.png' does; '..' and '../x' do not), else undefined. */
function relativeInside(root: string, p: string): string | undefined {
  const rel = path.relative(root, p);
  return rel && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel) ? rel : undefined;
}

/**
 * A path as clients may see it: absolute file paths reveal the server's folders, so unless originals are served
 * they are shown relative to the folder they were read from (null when outside every recorded folder).
 */
function publicPath(p: string | null, roots: string[], full: boolean): string | null {
  if (p === null || full || !path.isAbsolute(p)) return p;
  for (const r of roots) {
    const rel = relativeInside(r, p);
    if (rel !== undefined) return rel;
  }
  return null;
}

/** The manifest as clients may see it: source folders and skipped files' paths only when originals are served. */
function publicManifest(c: Collection, full: boolean): Record<string, unknown> {
  if (full) return { ...c.manifest };
  const { roots, skipped, ...params } = c.manifest.params as { roots?: string[]; skipped?: { count: number; files: { path: string; reason: string }[] } };
  const r = roots ?? [];
  const source = String(c.manifest.model.source ?? '');
  return {
    ...c.manifest,
    // the training source names a folder too: keep its last component
    model: { ...c.manifest.model, ...(source.startsWith('dir:') ? { source: `dir:${path.basename(source.slice(4))}` } : {}) },
    params: {
      ...params,
      ...(roots ? { roots: r.length } : {}),
      ...(skipped ? { skipped: { count: skipped.count, files: skipped.files.map((f) => ({ path: publicPath(f.path, r, false) ?? path.basename(f.path), reason: r.reduce((t, root) => t.split(`${root}${path.sep}`).join(''), f.reason) })) } } : {}),
    },
  };
}

const searchQuery = z
  .object({
    k: z.coerce.number().int().optional(),
    ef: z.coerce.number().int().min(1).max(4096).optional(),
    compare: z.enum(['pixel', 'tfidf', 'none', 'true', 'false']).optional(),
    /** two-stage search: rows the codes shortlist for the exact re-ranking; 0 = codes alone */
    rerank: z.string().min(1).pipe(z.coerce.number().int().min(0).max(MAX_SHORTLIST)).optional(),
    /** weight of the code distance in the re-ranking (texts) */
    blend: z.string().min(1).pipe(z.coerce.number().min(0).max(1)).optional(),
  })
  .strict();

/** Largest magnitude a float32 holds: codes are float32, so 1e308 is no code. */
const FLOAT32_MAX = 3.4028234663852886e38;
const codeBody = z.object({ code: z.array(z.number().finite().min(-FLOAT32_MAX).max(FLOAT32_MAX)).min(1).max(65536) }).strict();
const textBody = z.object({ text: z.string() }).strict();
const textItemBody = z.object({ key: z.string().min(1).max(512), text: z.string(), label: z.string().max(256).nullable().optional() }).strict();
const imageItemFields = z.object({ key: z.string().min(1).max(512), label: z.string().max(256).optional() }).strict();

function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw fail('INVALID_ARGUMENT', `${what}: ${i.path.join('.') || 'value'} ${i.message.toLowerCase()}`);
  }
  return r.data;
}

function searchOptions(req: Request): SearchOptions {
  const q = parse(searchQuery, req.query, 'query string');
  return { k: q.k, ef: q.ef, rerank: q.rerank, blend: q.blend, compare: q.compare !== undefined && q.compare !== 'none' && q.compare !== 'false' };
}

type Handler = (req: Request, res: Response) => Promise<void> | void;

function summary(c: Collection) {
  const m = c.manifest;
  return { name: m.name, kind: m.kind, count: m.count, codeDim: m.codeDim, space: m.space, binaryBits: c.binaryBits ?? null, model: m.model.arch, updatedAt: m.updatedAt };
}

/** Builds the express app (routes, validation, one error middleware); the caller decides whether to listen. */
export function createApp(deps: AppDeps): express.Express {
  const { engine } = deps;
  const maxUpload = deps.maxUploadBytes ?? 5 * 1024 * 1024;
  const multerUpload = multer({ storage: multer.memoryStorage(), limits: { fileSize: maxUpload, files: 1, fields: 8, fieldSize: 64 * 1024, parts: 10 } }).single('image');
  // Multipart errors (no boundary, truncated body, wrong field) are the client's: 400/413, never 500.
  const upload: express.RequestHandler = (req, res, next) =>
    multerUpload(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      if (isLatentdexError(err)) return next(err);
      if (err instanceof multer.MulterError) {
        if (err.code === 'LIMIT_FILE_SIZE') return next(fail('PAYLOAD_TOO_LARGE', `upload is over the ${(maxUpload / 1048576).toFixed(0)} MB limit; send a smaller image`));
        if (err.code === 'LIMIT_UNEXPECTED_FILE') return next(fail('INVALID_ARGUMENT', `bad upload: the image must be sent in the multipart field \`image\` (got '${err.field ?? ''}')`));
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
  app.use(express.json({ limit: '1mb' }));

  const requireKey: express.RequestHandler = (req, _res, next) => {
    if (!deps.apiKey) return next(fail('WRITES_DISABLED', 'write routes are off; start the server with LATENTDEX_API_KEY set to enable them'));
    const got = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    const a = Buffer.from(got);
    const b = Buffer.from(deps.apiKey);
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return next(fail('UNAUTHORIZED', 'missing or wrong API key; send Authorization: Bearer <LATENTDEX_API_KEY>'));
    next();
  };

  app.get('/api/health', (_req, res) => {
    res.json({ status: 'ok', backend: deps.backend ?? null, version: deps.version ?? null, collections: engine.names().length, originals: Boolean(deps.serveOriginals) });
  });

  app.get(
    '/api/collections',
    wrap(async (_req, res) => {
      const all = await engine.status();
      res.json({ collections: all.map((c) => ('available' in c ? c : { ...summary(c), available: true })) });
    }),
  );

  app.get(
    '/api/collections/:c',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json({ ...summary(c), manifest: publicManifest(c, Boolean(deps.serveOriginals)), disk: c.diskSizes() });
    }),
  );

  app.get(
    '/api/collections/:c/random',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json({ key: c.randomKey() });
    }),
  );

  app.get(
    '/api/collections/:c/map',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json(projectCodes(c));
    }),
  );

  app.get(
    '/api/collections/:c/items/:key',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const row = c.item(req.params.key!);
      res.json({ key: row.key, label: row.label, uri: publicPath(row.uri, c.sourceRoots, Boolean(deps.serveOriginals)), group: row.grp, text: row.text, thumbnail: engine.thumbnailUrl(c, row.key), code: Array.from(c.codeOf(row.id)) });
    }),
  );

  app.get(
    '/api/collections/:c/items/:key/preview',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const b = c.preview(req.params.key!);
      if (b === null) throw fail('NOT_FOUND', `item '${req.params.key}' has no preview (text items have snippets)`);
      res.type(previewType(b)).set('cache-control', 'private, max-age=60').send(b);
    }),
  );

  app.get(
    '/api/collections/:c/items/:key/thumbnail.png',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const i = c.model.manifest.input;
      if (i.type !== 'pixels') throw fail('NOT_FOUND', `collection '${c.name}' holds text; its items have snippets, not images`);
      const row = c.item(req.params.key!);
      res.type('png').set('cache-control', 'private, max-age=60').send(imagePng(c.pixelsOf(row.id), i.width, i.height, i.channels));
    }),
  );

  app.get(
    '/api/collections/:c/items/:key/original',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      if (!deps.serveOriginals) throw fail('NOT_FOUND', 'original files are not served; start the server with --serve-originals to allow it');
      const row = c.item(req.params.key!);
      const file = row.uri && path.isAbsolute(row.uri) ? insideRoots(row.uri, c.sourceRoots) : undefined;
      if (!file) throw fail('NOT_FOUND', `item '${row.key}' has no original file in the folders '${c.name}' was read from (moved, or not from a dir: source)`);
      const head = Buffer.alloc(64);
      const fh = await fs.promises.open(file, 'r').catch(() => undefined);
      if (!fh) throw fail('NOT_FOUND', `the original of '${row.key}' cannot be read`);
      try {
        await fh.read(head, 0, 64, 0);
      } finally {
        await fh.close();
      }
      const type = sniffImage(head);
      if (!type) throw fail('NOT_FOUND', `the original of '${row.key}' is no longer an image`);
      res.type(type === 'heif' ? 'image/avif' : `image/${type}`).set('x-content-type-options', 'nosniff').set('content-security-policy', "default-src 'none'");
      await new Promise<void>((resolve, reject) =>
        res.sendFile(file, { dotfiles: 'allow' }, (err) => (err && !res.headersSent ? reject(fail('NOT_FOUND', `the original of '${row.key}' cannot be read`, err)) : resolve())),
      );
    }),
  );

  app.get(
    '/api/collections/:c/items/:key/reconstruction.png',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const i = c.model.manifest.input;
      if (i.type !== 'pixels') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; it has no image reconstructions`);
      const row = c.item(req.params.key!);
      const rec = c.model.decode(c.codeOf(row.id), 1);
      res.type('png').send(imagePng(rec, i.width, i.height, i.channels));
    }),
  );

  app.get(
    '/api/collections/:c/items/:key/neighbors',
    wrap(async (req, res) => {
      res.json(await engine.byKey(req.params.c!, req.params.key!, searchOptions(req)));
    }),
  );

  const withPictures = (c: Collection, r: SearchResponse, img: DecodedImage) => {
    const i = c.model.manifest.input;
    if (i.type !== 'pixels') return r;
    const rec = c.model.reconstruct(img.pixels, 1);
    return {
      ...r,
      reconstruction: `data:image/png;base64,${imagePng(rec, i.width, i.height, i.channels).toString('base64')}`,
      ...(img.preview ? { preview: `data:image/webp;base64,${img.preview.toString('base64')}` } : {}),
    };
  };

  app.post(
    '/api/collections/:c/search',
    upload,
    wrap(async (req, res) => {
      const o = searchOptions(req);
      const name = req.params.c!;
      if (req.file) {
        const c = await engine.collection(name);
        const img = await decodeQueryImage(c, req.file.buffer);
        res.json(withPictures(c, engine.byPixels(c, img.pixels, o), img));
        return;
      }
      const body: unknown = req.body;
      if (body && typeof body === 'object' && 'code' in body) {
        res.json(await engine.byCode(name, parse(codeBody, body, 'body').code, o));
        return;
      }
      if (body && typeof body === 'object' && 'text' in body) {
        res.json(await engine.byText(name, parse(textBody, body, 'body').text, o));
        return;
      }
      await engine.collection(name);
      throw fail('INVALID_ARGUMENT', 'send an image as multipart field `image`, or JSON {"code": [...]} or {"text": "..."}');
    }),
  );

  app.post(
    '/api/collections/:c/items',
    requireKey,
    upload,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const replace = req.query.replace === 'true';
      if (c.kind === 'image') {
        if (!req.file) throw fail('INVALID_ARGUMENT', 'send the image as multipart field `image` with a `key` field');
        const f = parse(imageItemFields, req.body, 'fields');
        const i = c.model.manifest.input;
        if (i.type !== 'pixels') throw fail('INTERNAL', 'image collection with a text model');
        const img = await decodeQueryImage(c, req.file.buffer);
        await c.add([{ key: f.key, label: f.label ?? null, uri: `upload:${f.key}`, input: img.pixels, raw: img.pixels, thumb: img.preview ?? imagePng(img.pixels, i.width, i.height, i.channels) }], { replace, quiet: true });
        res.status(201).json({ key: f.key, count: c.count });
        return;
      }
      const b = parse(textItemBody, req.body, 'body');
      const v = textQueryVectors(c, b.text);
      await c.add([{ key: b.key, label: b.label ?? null, uri: `upload:${b.key}`, text: b.text, input: v.input, raw: v.raw, thumb: null }], { replace, quiet: true });
      res.status(201).json({ key: b.key, count: c.count });
    }),
  );

  app.delete(
    '/api/collections/:c/items/:key',
    requireKey,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      await c.remove([req.params.key!]);
      res.json({ removed: req.params.key, count: c.count });
    }),
  );

  app.use('/api', (req, _res, next) => next(fail('NOT_FOUND', `no route ${req.method} ${req.originalUrl}; see the README for the API`)));
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
      e = fail('INVALID_ARGUMENT', 'request body is not valid JSON');
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
