import express, { type NextFunction, type Request, type Response } from 'express';
import { imagePng } from '../../encoder/png.js';
import { fail } from '../../errors.js';
import { ANN_MIN_ROWS, type AnnHit } from '../../indexer/lance-store.js';
import type { StoreIndexedCollection } from '../../indexer/store-indexed.js';
import { checkBaseline, decodeQueryImage, textQueryVectors, type Hit, type SearchResponse } from '../engine.js';
import { searchOptionsOf, searchQuery } from '../schemas.js';
import { noQuery, parse, previewType, SEARCH_BODY_HELP, searchInput, type RouteContext } from './http.js';
import { indexedSummary, publicManifest } from './read.js';

/** Query-string options a search of the store's index cannot honour (it ranks by its ANN index alone). */
const UNSUPPORTED = ['offset', 'cursor', 'ef', 'rerank', 'blend', 'feedback', 'group', 'prefix', 'max_distance', 'baseline_max_distance', 'group_by', 'per_group'] as const;

/**
 * Routes of the collections a replica serves from its store's index (more items than it copies): the collection,
 * its items and previews, neighbours of an item, search by image, code or text, all through the store's ANN index
 * with label filters pushed down. Other routes of such a collection answer NOT_SUPPORTED; requests for any other
 * collection go on to the local routes.
 */
export function storeIndexRoutes(ctx: RouteContext): express.Router {
  const r = express.Router();
  const served = (req: Request) => (req.params.c === undefined ? undefined : (ctx.indexed?.indexed(req.params.c) ?? undefined));
  /** A handler for collections of the store's index; the next routes handle the others. */
  const when =
    (h: (c: StoreIndexedCollection, req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      const c = (res.locals.indexed as StoreIndexedCollection | undefined) ?? served(req);
      if (!c) return next('route');
      ctx.wrap((rq, rs) => h(c, rq, rs))(req, res, next);
    };

  const options = (c: StoreIndexedCollection, req: Request) => {
    const q = parse(searchQuery, req.query, 'query string');
    const given = UNSUPPORTED.filter((o) => q[o] !== undefined);
    if (given.length) throw fail('INVALID_ARGUMENT', `collection '${req.params.c}' is searched through the store's index on this replica (it holds more items than --hot-limit): ${given.join(', ')} cannot be used; pass k and label (compare is answered without the exact baseline), or serve it from a replica with a larger --hot-limit`);
    checkBaseline({ name: c.name, kind: c.head.manifest.kind }, searchOptionsOf(q).compare);
    return { k: ctx.engine.checkK(q.k), labels: q.label };
  };
  const thumbnailOf = (c: StoreIndexedCollection, key: string) => ctx.engine.thumbnail({ name: c.name, kind: c.head.manifest.kind }, key);
  /** The answer in the shape of a local search's (without the exact baseline: it would scan every item). */
  const answer = (c: StoreIndexedCollection, generation: number, k: number, query: { key: string | null; label: string | null }, hits: AnnHit[], started: number): SearchResponse & { servedFrom: 'store-index' } => {
    const list: Hit[] = hits.map((h, i) => ({ rank: i + 1, key: h.key, label: h.label, distance: h.distance, ...thumbnailOf(c, h.key) }));
    return {
      collection: c.name,
      k,
      offset: 0,
      generation,
      next: null,
      query,
      servedFrom: 'store-index',
      codes: {
        method: c.head.manifest.count >= ANN_MIN_ROWS ? 'codes (store IVF_PQ index, re-ranked)' : 'codes (store, exact scan)',
        hits: list,
        latencyMs: Math.round((performance.now() - started) * 100) / 100,
        precision: query.label === null || !list.length ? null : list.filter((h) => h.label === query.label).length / list.length,
        more: false,
      },
    };
  };
  const codeOf = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

  r.get(
    '/collections/:c',
    noQuery,
    when(async (c, _req, res) => {
      res.json({ ...indexedSummary(c), manifest: publicManifest(c.head.manifest, ctx.serveOriginals) });
    }),
  );
  r.get(
    '/collections/:c/items/:key',
    noQuery,
    when(async (c, req, res) => {
      const it = await c.item(req.params.key!);
      res.json({ key: it.key, label: it.label, uri: null, group: it.grp, text: it.text, ...thumbnailOf(c, it.key), code: Array.from(codeOf(it.code)) });
    }),
  );
  r.get(
    '/collections/:c/items/:key/preview',
    noQuery,
    when(async (c, req, res) => {
      const it = await c.item(req.params.key!);
      if (!it.thumb) throw fail('NOT_FOUND', `item '${it.key}' has no preview in the store`);
      res.type(previewType(it.thumb)).set('cache-control', 'private, max-age=60').send(it.thumb);
    }),
  );
  r.get(
    '/collections/:c/random',
    noQuery,
    when(async (c, _req, res) => {
      res.json({ key: await c.randomKey() });
    }),
  );
  r.get(
    '/collections/:c/labels',
    noQuery,
    when(async (c, _req, res) => {
      res.json(await c.valueCounts());
    }),
  );
  r.get(
    '/collections/:c/items/:key/reconstruction.png',
    noQuery,
    when(async (c, req, res) => {
      const i = c.model.manifest.input;
      if (i.type !== 'pixels') throw fail('NOT_FOUND', `collection '${c.name}' holds text; its items have no image reconstruction`);
      const it = await c.item(req.params.key!);
      res.type('png').send(imagePng(c.model.decode(codeOf(it.code), 1, { like: c.pixelsOf(it) }), i.width, i.height, i.channels));
    }),
  );
  r.get(
    '/collections/:c/items/:key/neighbors',
    when(async (c, req, res) => {
      const o = options(c, req);
      const started = performance.now();
      const { generation } = c.head.manifest;
      const it = await c.item(req.params.key!);
      const hits = await c.nearest(codeOf(it.code), o.k, { labels: o.labels, exclude: it.key });
      res.json(answer(c, generation, o.k, { key: it.key, label: it.label }, hits, started));
    }),
  );
  r.post(
    '/collections/:c/search',
    (req, res, next) => {
      // the collection is looked up once: the upload is read here or by the local routes, never twice
      const c = served(req);
      if (!c) return next('route');
      res.locals.indexed = c;
      ctx.upload(req, res, next);
    },
    when(async (c, req, res) => {
      const o = options(c, req);
      const started = performance.now();
      const { generation } = c.head.manifest;
      const body = searchInput(req);
      let code: Float32Array;
      if (body && 'image' in body) {
        const img = await decodeQueryImage(c, body.image);
        code = c.model.encode(img.pixels, 1);
      } else if (body && 'code' in body) {
        const v = body.code;
        if (v.length !== c.head.manifest.codeDim) throw fail('INVALID_DIM', `code has ${v.length} numbers; collection '${c.name}' holds ${c.head.manifest.codeDim}-d codes`);
        code = Float32Array.from(v);
      } else if (body) {
        if (c.head.manifest.kind !== 'text') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds images; search it with an image or a code`);
        code = c.model.encode(textQueryVectors(c, body.text).input, 1);
      } else throw fail('INVALID_ARGUMENT', SEARCH_BODY_HELP);
      res.json(answer(c, generation, o.k, { key: null, label: null }, await c.nearest(code, o.k, { labels: o.labels }), started));
    }),
  );
  r.all(
    ['/collections/:c/*', '/collections/:c'],
    // a method no router serves on this path is the app's 405 or 404, as for any collection
    (req, _res, next) => (ctx.methodsOn(req.path).includes(req.method) ? next() : next('route')),
    when(async (c, req) => {
      throw fail('NOT_SUPPORTED', `${req.method} ${req.path} is not available for '${c.name}' on this replica: it holds more items than --hot-limit and is searched through the store's index (collection, items, previews, neighbours and search only); write to it with \`latentdex add|remove --store\`, or serve it from a replica with a larger --hot-limit`);
    }),
  );
  return r;
}
