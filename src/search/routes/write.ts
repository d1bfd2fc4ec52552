import express from 'express';
import { imagePng } from '../../encoder/png.js';
import { fail } from '../../errors.js';
import { decodeQueryImage, textQueryVectors } from '../engine.js';
import { imageItemFields, itemsQuery, textItemBody } from '../schemas.js';
import { noQuery, parse, type RouteContext } from './http.js';
import type { Collection, ItemInput } from '../../indexer/collection.js';

/** Writing routes (API key): add or replace an item, remove one. */
export function writeRoutes(ctx: RouteContext): express.Router {
  const { engine, wrap, upload, requireKey, writer } = ctx;
  // a replica writes to its store and shows the write once the store has it; a lone server writes its collection
  const add = async (c: Collection, items: ItemInput[], replace: boolean): Promise<{ count: number; replaced: number }> => {
    if (writer) return writer.add(c, items, { replace });
    const { replaced } = await c.add(items, { replace, quiet: true });
    return { count: c.count, replaced };
  };
  // 201 for a new item, 200 when replace=true replaced one
  const answer = (res: express.Response, key: string, r: { count: number; replaced: number }) => res.status(r.replaced ? 200 : 201).json({ key, count: r.count, replaced: r.replaced > 0 });
  const r = express.Router();
  r.post(
    '/collections/:c/items',
    requireKey,
    upload,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const replace = parse(itemsQuery, req.query, 'query string').replace === 'true';
      if (c.kind === 'image') {
        if (!req.file) throw fail('INVALID_ARGUMENT', 'send the image as multipart field `image` with a `key` field');
        const f = parse(imageItemFields, req.body, 'fields');
        const i = c.model.manifest.input;
        if (i.type !== 'pixels') throw fail('INTERNAL', 'image collection with a text model');
        const img = await decodeQueryImage(c, req.file.buffer);
        answer(res, f.key, await add(c, [{ key: f.key, label: f.label || null, grp: f.group || null, uri: `upload:${f.key}`, input: img.pixels, raw: img.pixels, thumb: img.preview ?? imagePng(img.pixels, i.width, i.height, i.channels) }], replace));
        return;
      }
      // an empty label or group (a form's empty field) is none, never a label of its own
      const b = parse(textItemBody, req.body, 'body');
      const v = textQueryVectors(c, b.text, 'item');
      answer(res, b.key, await add(c, [{ key: b.key, label: b.label || null, grp: b.group || null, uri: `upload:${b.key}`, text: b.text, input: v.input, raw: v.raw, thumb: null }], replace));
    }),
  );

  r.delete(
    '/collections/:c/items/:key',
    requireKey,
    noQuery,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      const count = writer ? await writer.remove(c, [req.params.key!]) : (await c.remove([req.params.key!]), c.count);
      res.json({ removed: req.params.key, count });
    }),
  );
  return r;
}
