import express from 'express';
import { imagePng } from '../../encoder/png.js';
import { fail } from '../../errors.js';
import type { Collection } from '../../indexer/collection.js';
import type { DecodedImage } from '../../../data/decode.js';
import { decodeQueryImage, textQueryVectors, type SearchResponse } from '../engine.js';
import { queryNovelty } from '../outliers.js';
import { batchBody, codeBody, searchOptionsOf, searchQuery, textBody } from '../schemas.js';
import { parse, unreadableBody, type RouteContext } from './http.js';

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
      if (req.file) {
        const c = await engine.collection(name);
        const img = await decodeQueryImage(c, req.file.buffer);
        const answer = engine.byPixels(c, img.pixels, o);
        res.json({ ...withPictures(c, answer, img), novelty: queryNovelty(c, img.pixels, img.pixels) });
        return;
      }
      const body: unknown = req.body;
      if (body && typeof body === 'object' && 'code' in body) {
        res.json(await engine.byCode(name, parse(codeBody, body, 'body').code, o));
        return;
      }
      if (body && typeof body === 'object' && 'text' in body) {
        const text = parse(textBody, body, 'body').text;
        const answer = await engine.byText(name, text, o);
        const c = await engine.collection(name);
        const v = textQueryVectors(c, text);
        res.json({ ...answer, novelty: queryNovelty(c, v.input, v.raw) });
        return;
      }
      await engine.collection(name);
      throw unreadableBody(req, 'send an image as multipart field `image`, or JSON {"code": [...]} or {"text": "..."}');
    }),
  );

  r.post(
    '/collections/:c/search/batch',
    wrap(async (req, res) => {
      const o = searchOptions(req);
      const b = parse(batchBody, req.body, 'body');
      res.json({ collection: req.params.c!, results: await engine.batch(req.params.c!, b.queries, o) });
    }),
  );
  return r;
}
