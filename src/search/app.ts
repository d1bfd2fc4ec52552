import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
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
    const rel = path.relative(root, real);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return real;
  }
  return undefined;
}

const searchQuery = z
  .object({
    k: z.coerce.number().int().optional(),
    ef: z.coerce.number().int().min(1).max(4096).optional(),
    compare: z.enum(['pixel', 'tfidf', 'none', 'true', 'false']).optional(),
  })
  .strict();

const codeBody = z.object({ code: z.array(z.number()).min(1) }).strict();
const textBody = z.object({ text: z.string() }).strict();
const textItemBody = z.object({ key: z.string().min(1).max(512), text: z.string(), label: z.string().max(256).nullable().optional() }).strict();
const imageItemFields = z.object({ key: z.string().min(1).max(512), label: z.string().max(256).optional() }).strict();

function parse<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw fail('INVALID_ARGUMENT', `${what}: ${i.path.join('.') || 'value'} ${i.message.toLowerCase()}`);
  }
  return r.data;
}

function searchOptions(req: Request): SearchOptions {
  const q = parse(searchQuery, req.query, 'query string');
  return { k: q.k, ef: q.ef, compare: q.compare !== undefined && q.compare !== 'none' && q.compare !== 'false' };
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
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: maxUpload, files: 1, fields: 8 } });
  // Every handler runs as tracked engine work, so closing the engine waits for it even if its client hung up.
  const wrap =
    (h: Handler) =>
    (req: Request, res: Response, next: NextFunction): void => {
      engine.track(async () => h(req, res)).catch(next);
    };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
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
      const out = [];
      for (const n of engine.names()) out.push(summary(await engine.collection(n)));
      res.json({ collections: out });
    }),
  );

  app.get(
    '/api/collections/:c',
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json({ ...summary(c), manifest: c.manifest, disk: c.diskSizes() });
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
      res.json({ key: row.key, label: row.label, uri: row.uri, group: row.grp, text: row.text, thumbnail: engine.thumbnailUrl(c, row.key), code: Array.from(c.codeOf(row.id)) });
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
      res.type('png').set('cache-control', 'private, max-age=60').send(imagePng(c.rawOf(row.id), i.width, i.height, i.channels));
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
    upload.single('image'),
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
    upload.single('image'),
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

  // The one error middleware: LatentdexError codes → statuses, everything else → 500.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    let e: LatentdexError;
    if (isLatentdexError(err)) e = err;
    else if (err instanceof multer.MulterError) {
      e = err.code === 'LIMIT_FILE_SIZE' ? fail('PAYLOAD_TOO_LARGE', `upload is over the ${(maxUpload / 1048576).toFixed(0)} MB limit; send a smaller image`) : fail('INVALID_ARGUMENT', `bad upload: ${err.message}`);
    } else if (typeof err === 'object' && err !== null && 'type' in err && (err as { type: string }).type === 'entity.too.large') {
      e = fail('PAYLOAD_TOO_LARGE', 'request body is over the 1 MB limit');
    } else if (typeof err === 'object' && err !== null && 'type' in err && (err as { type: string }).type === 'entity.parse.failed') {
      e = fail('INVALID_ARGUMENT', 'request body is not valid JSON');
    } else {
      e = fail('INTERNAL', `internal error: ${messageOf(err)}`, err);
      process.stderr.write(`latentdex: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    res.status(e.status).json({ error: { code: e.code, message: e.message } });
  });
  return app;
}
