import express from 'express';
import { imagePng } from '../../encoder/png.js';
import { fail } from '../../errors.js';
import type { Collection } from '../../indexer/collection.js';
import type { DecodedImage } from '../../../data/decode.js';
import { decodeQueryImage, type SearchResponse } from '../engine.js';
import { batchBody, searchOptionsOf, searchQuery } from '../schemas.js';
import { parse, SEARCH_BODY_HELP, searchInput, type RouteContext } from './http.js';

/** Each query of a batch names one field, key, code or text: said with the query's place (zod's union cannot say it). */
function batchShapes(body: unknown): void {
  const queries = body && typeof body === 'object' ? (body as { queries?: unknown }).queries : undefined;
  if (!Array.isArray(queries)) return;
  queries.forEach((q: unknown, i) => {
    const fields = q && typeof q === 'object' && !Array.isArray(q) ? Object.keys(q) : null;
    if (fields?.length === 1 && ['key', 'code', 'text'].includes(fields[0]!)) return;
    const named = (fs: string[]) => fs.slice(0, 5).map((f) => `'${f.slice(0, 40)}'`).join(', ') + (fs.length > 5 ? ', …' : '');
    const holds = fields === null ? `is ${JSON.stringify(q)?.slice(0, 40) ?? 'nothing'}, not an object` : fields.length ? `holds ${named(fields)}` : 'is empty';
    throw fail('INVALID_ARGUMENT', `queries[${i}] ${holds}; a batch query is one of {"key": "..."}, {"code": [...]} or {"text": "..."}`);
  });
}

/** Search routes: neighbours of an item; search by image, code or text; batches of queries. */
export function searchRoutes(ctx: RouteContext): express.Router {
  const { engine, wrap, upload } = ctx;
  const r = express.Router();
  const searchOptions = (req: express.Request) => searchOptionsOf(parse(searchQuery, req.query, 'query string'));
  r.get(
    '/collections/:c/items/:key/neighbors',
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

  r.post(
    '/collections/:c/search',
    upload,
    wrap(async (req, res) => {
      const o = searchOptions(req);
      const name = req.params.c!;
      const body = searchInput(req);
      if (body && 'image' in body) {
        const c = await engine.collection(name);
        const img = await decodeQueryImage(c, body.image);
        res.json(withPictures(c, engine.byPixels(c, img.pixels, o, 'if-ready'), img));
        return;
      }
      if (body && 'code' in body) {
        res.json(await engine.byCode(name, body.code, o));
        return;
      }
      if (body) {
        res.json(await engine.byText(name, body.text, o, 'if-ready'));
        return;
      }
      await engine.collection(name);
      throw fail('INVALID_ARGUMENT', SEARCH_BODY_HELP);
    }),
  );

  r.post(
    '/collections/:c/search/batch',
    wrap(async (req, res) => {
      const o = searchOptions(req);
      if (req.is('multipart/form-data')) throw fail('UNSUPPORTED_MEDIA', 'a batch is JSON {"queries": [{"key"|"code"|"text": …}, …]}; send images one at a time to /search');
      if (Array.isArray(req.body)) throw fail('INVALID_ARGUMENT', 'the body is a JSON array; wrap it as {"queries": [...]}');
      batchShapes(req.body);
      const b = parse(batchBody, req.body, 'body');
      res.json({ collection: req.params.c!, results: await engine.batch(req.params.c!, b.queries, o) });
    }),
  );
  return r;
}
