import express from 'express';
import { fail } from '../../errors.js';
import type { Collection } from '../../indexer/collection.js';
import type { SearchEngine } from '../engine.js';
import { denoiseImage } from '../denoise.js';
import { DUPLICATE_LIMIT, findDuplicates } from '../duplicates.js';
import { outliers } from '../outliers.js';
import { duplicatesQuery, outliersQuery } from '../schemas.js';
import { noQuery, parse, type RouteContext } from './http.js';

/** How an item is shown in an analysis answer: key, label, and its picture (or the start of its text). */
function shown(engine: SearchEngine, c: Collection, key: string): { key: string; label: string | null; thumbnail?: string; reconstructionImage?: string; snippet?: string } {
  const row = c.item(key);
  const base = { key: row.key, label: row.label, ...engine.thumbnail(c, row.key) };
  if (c.kind === 'text') return { ...base, snippet: (row.text ?? '').slice(0, 240) };
  return { ...base, reconstructionImage: `/api/collections/${encodeURIComponent(c.name)}/items/${encodeURIComponent(row.key)}/reconstruction.png` };
}

/** Looking into a collection: its most unusual items, its near-duplicate groups, and denoising by its model. */
export function analysisRoutes(ctx: RouteContext): express.Router {
  const { engine, wrap, upload } = ctx;
  const r = express.Router();

  r.get(
    '/collections/:c/outliers',
    wrap(async (req, res) => {
      const q = parse(outliersQuery, req.query, 'query string');
      const c = await engine.collection(req.params.c!);
      const list = c.consistent(() => {
        const l = outliers(c, { score: q.score, top: q.top, offset: q.offset });
        return { ...l, items: l.items.map((it) => ({ ...it, ...shown(engine, c, it.key) })) };
      });
      res.json(list);
    }),
  );

  r.get(
    '/collections/:c/duplicates',
    wrap(async (req, res) => {
      const q = parse(duplicatesQuery, req.query, 'query string');
      const c = await engine.collection(req.params.c!);
      const answer = c.consistent(() => {
        const d = findDuplicates(c, { threshold: q.threshold, rawThreshold: q.raw_threshold, limit: q.limit ?? DUPLICATE_LIMIT.default });
        const groups = d.groups.map((g) => ({
          exact: g.exact,
          maxDistance: g.maxDistance,
          items: g.ids.flatMap((id) => {
            const row = c.rowOf(id);
            return row ? [shown(engine, c, row.key)] : [];
          }),
        }));
        return { collection: c.name, ...d, groups };
      });
      res.json(answer);
    }),
  );

  r.post(
    '/collections/:c/denoise',
    noQuery,
    upload,
    wrap(async (req, res) => {
      const c = await engine.collection(req.params.c!);
      if (c.kind !== 'image') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; denoise takes an image collection`);
      if (!req.file) throw fail('INVALID_ARGUMENT', 'send the image to denoise as multipart field `image`');
      const out = await denoiseImage(c, req.file.buffer);
      res.type('png').set('x-latentdex-denoising-model', String(out.denoising)).send(out.png);
    }),
  );
  return r;
}
