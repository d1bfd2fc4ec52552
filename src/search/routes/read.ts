import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { imagePng } from '../../encoder/png.js';
import { fail } from '../../errors.js';
import type { CollectionManifest } from '../../indexer/catalogue.js';
import type { Collection } from '../../indexer/collection.js';
import type { StoreIndexedCollection } from '../../indexer/store-indexed.js';
import { sniffImage } from '../../../data/decode.js';
import { projectCodes } from '../map.js';
import { MAX_DEPTH } from '../engine.js';
import { MAX_SHORTLIST } from '../rerank.js';
import { noQuery, previewType, type RouteContext } from './http.js';

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
export function publicManifest(manifest: CollectionManifest, full: boolean): Record<string, unknown> {
  if (full) return { ...manifest };
  const { roots, skipped, ...params } = manifest.params as { roots?: string[]; source?: unknown; skipped?: { count: number; files: { path: string; reason: string }[] } };
  const r = roots ?? [];
  // a source names files or folders of the server (dir:, jsonl:, text:, idx:A,B): keep their last components
  const folderless = (v: unknown) => {
    const m = typeof v === 'string' ? /^(dir|jsonl|text|idx):(.+)$/.exec(v) : null;
    return m ? { source: `${m[1]}:${m[2]!.split(',').map((f) => path.basename(f)).join(',')}` } : {};
  };
  return {
    ...manifest,
    model: { ...manifest.model, ...folderless(manifest.model.source) },
    params: {
      ...params,
      ...folderless(params.source),
      ...(roots ? { roots: r.length } : {}),
      ...(skipped ? { skipped: { count: skipped.count, files: skipped.files.map((f) => ({ path: publicPath(f.path, r, false) ?? path.basename(f.path), reason: r.reduce((t, root) => t.split(`${root}${path.sep}`).join(''), f.reason) })) } } : {}),
    },
  };
}

function summary(c: Collection) {
  const m = c.manifest;
  // a replica's copy says when the store's collection changed, alike on every replica
  return { name: m.name, kind: m.kind, count: m.count, codeDim: m.codeDim, space: m.space, binaryBits: c.binaryBits ?? null, model: m.model.arch, updatedAt: c.origin?.updatedAt ?? m.updatedAt };
}

/** What a collection served from the store's index says of itself. */
export function indexedSummary(c: StoreIndexedCollection) {
  const m = c.head.manifest;
  return { name: m.name, kind: m.kind, count: m.count, codeDim: m.codeDim, space: m.space, binaryBits: null, model: m.model.arch, updatedAt: m.updatedAt, available: true, servedFrom: 'store-index' as const };
}

/** Reading routes: health, collections, items, their previews, reconstructions and originals, the code map. */
export function readRoutes(ctx: RouteContext): express.Router {
  const { engine, wrap } = ctx;
  const r = express.Router();
  r.get('/health', noQuery, (_req, res) => {
    res.json({ status: 'ok', backend: ctx.backend, version: ctx.version, maxK: engine.maxK, maxDepth: MAX_DEPTH, maxRerank: MAX_SHORTLIST, collections: engine.names().length + (ctx.indexed?.indexedNames().length ?? 0), originals: Boolean(ctx.serveOriginals), demo: (ctx.demo?.status() ?? []).map((b) => ({ ...b, error: b.error === null ? null : engine.publicMessage(b.error) })) });
  });

  r.get(
    '/collections',
    noQuery,
    wrap(async (_req, res) => {
      const all = await engine.status();
      const indexed = (ctx.indexed?.indexedNames() ?? []).flatMap((n) => {
        const c = ctx.indexed?.indexed(n);
        return c ? [indexedSummary(c)] : [];
      });
      res.json({ collections: [...all.map((c) => ('available' in c ? c : { ...summary(c), available: true })), ...indexed] });
    }),
  );

  r.get(
    '/collections/:c',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      // a replica's copy says what the store says (generation, times), as its answers do, alike on every replica
      const { origin: _, ...params } = c.manifest.params;
      const o = c.origin;
      const store = o ? { generation: o.generation, createdAt: o.createdAt, updatedAt: o.updatedAt } : {};
      const input = c.model.manifest.input;
      const model = { ...c.manifest.model, ...(input.type === 'pixels' ? { inputScale: input.scale } : {}) };
      res.json({ ...summary(c), manifest: publicManifest({ ...c.manifest, model, params, ...store }, Boolean(ctx.serveOriginals)), disk: c.diskSizes() });
    }),
  );

  r.get(
    '/collections/:c/random',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json({ key: c.randomKey() });
    }),
  );

  r.get(
    '/collections/:c/map',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json(projectCodes(c));
    }),
  );

  r.get(
    '/collections/:c/items/:key',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const row = c.item(req.params.key!);
      res.json({ key: row.key, label: row.label, uri: publicPath(row.uri, c.sourceRoots, Boolean(ctx.serveOriginals)), group: row.grp, text: row.text, ...engine.thumbnail(c, row.key), code: Array.from(c.codeOf(row.id)) });
    }),
  );

  r.get(
    '/collections/:c/items/:key/preview',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const b = c.preview(req.params.key!);
      const i = c.model.manifest.input;
      if (b === null && i.type === 'pixels') {
        // an image item stored without a preview (added through the library) is drawn from its pixels
        const row = c.item(req.params.key!);
        res.type('png').set('cache-control', 'private, max-age=60').send(imagePng(c.pixelsOf(row.id), i.width, i.height, i.channels));
        return;
      }
      if (b === null) throw fail('NOT_FOUND', `item '${req.params.key}' has no preview (text items have snippets)`);
      res.type(previewType(b)).set('cache-control', 'private, max-age=60').send(b);
    }),
  );

  r.get(
    '/collections/:c/items/:key/thumbnail.png',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const i = c.model.manifest.input;
      if (i.type !== 'pixels') throw fail('NOT_FOUND', `collection '${c.name}' holds text; its items have snippets, not images`);
      const row = c.item(req.params.key!);
      res.type('png').set('cache-control', 'private, max-age=60').send(imagePng(c.pixelsOf(row.id), i.width, i.height, i.channels));
    }),
  );

  r.get(
    '/collections/:c/items/:key/original',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      if (!ctx.serveOriginals) throw fail('NOT_FOUND', 'original files are not served; start the server with --serve-originals to allow it');
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

  r.get(
    '/collections/:c/items/:key/reconstruction.png',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const i = c.model.manifest.input;
      if (i.type !== 'pixels') throw fail('NOT_FOUND', `collection '${c.name}' holds text; its items have no image reconstruction`);
      const row = c.item(req.params.key!);
      const rec = c.model.decode(c.codeOf(row.id), 1, { like: c.pixelsOf(row.id) });
      res.type('png').send(imagePng(rec, i.width, i.height, i.channels));
    }),
  );

  r.get(
    '/collections/:c/labels',
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      res.json({ labels: c.valueCounts('label'), groups: c.valueCounts('group') });
    }),
  );
  return r;
}
