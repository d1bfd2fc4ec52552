import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { keyProblem, MAX_KEY_LENGTH } from '../../data/keys.js';
import { DECIMAL } from '../decimal.js';
import { MAX_FILTER_VALUES } from '../indexer/filter.js';
import { MAX_FEEDBACK, MAX_SHORTLIST } from './rerank.js';
import { MAX_BATCH, MAX_DEPTH, type SearchOptions } from './engine.js';
import { DUPLICATE_FACTOR, DUPLICATE_LIMIT } from './duplicates.js';
import { DEFAULT_SCORE, OUTLIER_SCORES } from './outliers.js';

// `.openapi()` names schemas in the generated description (/api/openapi.json).
extendZodWithOpenApi(z);

/** A query-string value given once or repeated (`label=a&label=b`), as a list. */
const repeated = (what: string) =>
  z
    .union([z.string().max(512), z.array(z.string().max(512)).max(MAX_FILTER_VALUES)])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .openapi({ description: `${what}; repeat the parameter for several (any of them matches)` });

/** A number in the query string (an empty value is refused, not read as 0), described as a number. */
const num = (o: { int?: boolean; min?: number; max?: number } = {}) => {
  let n = o.int ? z.number().int() : z.number();
  if (o.min !== undefined) n = n.min(o.min);
  if (o.max !== undefined) n = n.max(o.max);
  return z
    .string()
    .regex(DECIMAL, 'is not a decimal number')
    .pipe(z.coerce.number().pipe(n))
    .openapi({ type: o.int ? 'integer' : 'number', minLength: undefined, ...(o.min !== undefined ? { minimum: o.min } : {}), ...(o.max !== undefined ? { maximum: o.max } : {}) });
};

/** The query string of a route that takes no options. */
export const emptyQuery = z.object({}).strict();

/** The options of every search route, in its query string. */
export const searchQuery = z
  .object({
    k: num({ int: true }).optional().openapi({ description: 'hits per page (default 10, at most the server’s max k; with max_distance: the most hits, default and at most 1000)' }),
    offset: num({ int: true, min: 0, max: MAX_DEPTH }).optional().openapi({ description: `hits skipped: pages are offset/k slices of one ranking (offset + k ≤ ${MAX_DEPTH})` }),
    cursor: z.string().min(1).max(300).optional().openapi({ description: 'the `next` of a previous answer: its next page, refused with 409 STALE_CURSOR if the collection changed since' }),
    ef: num({ int: true, min: 1, max: 4096 }).optional().openapi({ description: 'HNSW search breadth (default: the collection’s)' }),
    compare: z.enum(['pixel', 'tfidf', 'none', 'true', 'false']).optional().openapi({ description: 'also answer with the exact baseline over the same filter and page (true; naming it, it must be the collection kind\'s: pixel for images, tfidf for texts)' }),
    rerank: num({ int: true, min: 0, max: MAX_SHORTLIST }).optional().openapi({ description: 'two-stage search: rows the codes shortlist for the exact re-ranking (raised to cover the page when smaller; the hits\' method names the size used); 0 = codes alone' }),
    blend: num({ min: 0, max: 1 }).optional().openapi({ description: 'texts: weight of the code distance in the re-ranking' }),
    feedback: num({ int: true, min: 0, max: MAX_FEEDBACK }).optional().openapi({ description: 'texts: the best re-ranked documents folded into the query (pseudo-relevance feedback) for a second re-ranking of the shortlist (default 3, fewer than rerank; none with max_distance); 0 = none; image collections refuse it' }),
    label: repeated('only items with this label').optional(),
    group: repeated('only items of this group (text source document)').optional(),
    prefix: z.string().min(1).max(512).optional().openapi({ description: 'only items whose key starts with this (for dir: collections, `cats/` is the folder cats)' }),
    max_distance: num({ min: 0 }).optional().openapi({ description: 'every code hit at most this far (the distance hits report), up to k' }),
    baseline_max_distance: num({ min: 0 }).optional().openapi({ description: 'the same for the baseline column, in its own distance' }),
    group_by: z.enum(['label', 'group', 'folder']).optional().openapi({ description: 'at most per_group hits per label, group or folder' }),
    per_group: num({ int: true, min: 1, max: MAX_DEPTH }).optional().openapi({ description: 'hits kept per group (default 1)' }),
  })
  .strict()
  .openapi('SearchOptions');

export type SearchQuery = z.infer<typeof searchQuery>;

/** Search options from a parsed query string. */
export function searchOptionsOf(q: SearchQuery): SearchOptions {
  return {
    k: q.k,
    offset: q.offset,
    cursor: q.cursor,
    ef: q.ef,
    rerank: q.rerank,
    blend: q.blend,
    feedback: q.feedback,
    compare: q.compare === 'pixel' || q.compare === 'tfidf' ? q.compare : q.compare === 'true',
    // empty parts are dropped by the engine (normaliseFilter)
    filter: { labels: q.label, groups: q.group, prefix: q.prefix },
    maxDistance: q.max_distance,
    baselineMaxDistance: q.baseline_max_distance,
    groupBy: q.group_by,
    perGroup: q.per_group,
  };
}

/** Largest magnitude a float32 holds: codes are float32, so 1e308 is no code. */
const FLOAT32_MAX = 3.4028234663852886e38;
const code = z.array(z.number().finite().min(-FLOAT32_MAX).max(FLOAT32_MAX)).min(1).max(65536);

export const codeBody = z.object({ code }).strict().openapi('CodeQuery');
/** Longest query text, in characters (JSON or multipart alike). */
export const MAX_QUERY_TEXT = 100_000;

export const textBody = z.object({ text: z.string().max(MAX_QUERY_TEXT) }).strict().openapi('TextQuery');
/** The form fields of a multipart search beside its file: a text (a query of its own, never with an image). */
export const searchFields = z.object({ text: z.string().max(MAX_QUERY_TEXT).optional() }).strict();
export const batchBody = z
  .object({
    queries: z
      .array(z.union([z.object({ key: z.string().min(1) }).strict(), z.object({ code }).strict(), z.object({ text: z.string().max(MAX_QUERY_TEXT) }).strict()]))
      .min(1)
      .max(MAX_BATCH),
  })
  .strict()
  .openapi('BatchQuery');
/** An item's key: what the CLI's --key-prefix also refuses (control characters) is refused here. */
const itemKey = z
  .string()
  .min(1)
  .max(MAX_KEY_LENGTH)
  .superRefine((key, ctx) => {
    const bad = keyProblem(key);
    if (bad) ctx.addIssue({ code: z.ZodIssueCode.custom, message: bad });
  });

/** A label or group of a JSON item: a string, or a number (kept as its decimal text, as a jsonl: build keeps it). */
const nameOrNumber = (max: number) => z.union([z.string().max(max), z.number().finite().transform(String)]);

export const textItemBody = z
  .object({ key: itemKey, text: z.string(), label: nameOrNumber(256).nullable().optional(), group: nameOrNumber(512).nullable().optional() })
  .strict()
  .openapi('TextItem');
/** POST items' query string: `replace=true` overwrites an item of the same key. */
export const itemsQuery = z.object({ replace: z.enum(['true', 'false']).optional().openapi({ description: 'true: overwrite an item of the same key (200); otherwise such a key is a 409' }) }).strict();

export const imageItemFields = z.object({ key: itemKey, label: z.string().max(256).optional(), group: z.string().max(512).optional() }).strict().openapi('ImageItemFields');

const error = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');

const hit = z
  .object({
    rank: z.number().int(),
    key: z.string(),
    label: z.string().nullable(),
    distance: z.number(),
    thumbnail: z.string().optional(),
    snippet: z.string().optional(),
    group: z.string().nullable().optional(),
  })
  .openapi('Hit');
const hitList = z.object({ method: z.string(), hits: z.array(hit), latencyMs: z.number(), precision: z.number().nullable(), more: z.boolean(), shortlist: z.number().int().optional().openapi({ description: 'a two-stage search whose ranking ended with its full shortlist (not with the items or the filter): the shortlist\'s rows; a larger rerank ranks more' }) }).openapi('HitList');

export const searchResponse = z
  .object({
    collection: z.string(),
    k: z.number().int(),
    offset: z.number().int(),
    generation: z.number().int(),
    next: z.string().nullable(),
    query: z.object({ key: z.string().nullable(), label: z.string().nullable(), snippet: z.string().optional() }),
    filter: z.object({ labels: z.array(z.string()).optional(), groups: z.array(z.string()).optional(), prefix: z.string().optional(), matched: z.number().int() }).optional(),
    codes: hitList,
    baseline: hitList.optional(),
    overlap: z.number().optional(),
    reconstruction: z.string().optional(),
    preview: z.string().optional(),
    novelty: z
      .object({
        score: z.enum(OUTLIER_SCORES),
        value: z.number().nullable(),
        percentile: z.number().nullable(),
        reconstruction: z.object({ value: z.number().nullable(), percentile: z.number().nullable() }),
        neighbors: z.object({ value: z.number().nullable(), percentile: z.number().nullable() }),
        raw: z.object({ value: z.number().nullable(), percentile: z.number().nullable() }),
        reference: z
          .discriminatedUnion('of', [z.object({ of: z.literal('items'), count: z.number().int() }), z.object({ of: z.literal('excerpts'), count: z.number().int(), words: z.number().int() })])
          .openapi({ description: "what the percentiles are among: the collection's items, or (a text query with fewer words than the collection's median item) excerpts of its texts with as many words as the query" }),
      })
      .nullable()
      .optional()
      .openapi({ description: 'searches by upload or text: how unusual the query is for the collection (percentile: share of the reference, its items or excerpts as long as a short text query, less unusual); null on a collection of over 20,000 items until its scores exist (GET /outliers computes them)' }),
  })
  .openapi('SearchResponse');

export const schemas = { error, hit };

/** GET /outliers: which score, how many, from where. */
export const outliersQuery = z
  .object({
    score: z.enum(OUTLIER_SCORES).optional().openapi({ description: `how unusual items are measured (default ${DEFAULT_SCORE}; see the README)` }),
    top: num({ int: true, min: 1, max: MAX_DEPTH }).optional().openapi({ description: 'items returned, most unusual first (default 20)' }),
    offset: num({ int: true, min: 0 }).optional().openapi({ description: 'items skipped (pages)' }),
  })
  .strict()
  .openapi('OutliersOptions');

/** GET /duplicates: thresholds (default: from the collection's distances) and how many groups. */
export const duplicatesQuery = z
  .object({
    threshold: num({ min: 0, max: 1e6 }).optional().openapi({ description: `largest code distance of a pair (default: ${DUPLICATE_FACTOR} × the median distance of an item to its 5th nearest neighbour)` }),
    raw_threshold: num({ min: 0, max: 1e6 }).optional().openapi({ description: `largest raw distance of a pair, pixels in [0, 1] units or 1 − cosine of TF-IDF (default: ${DUPLICATE_FACTOR} × the median, as for codes)` }),
    limit: num({ int: true, min: 1, max: DUPLICATE_LIMIT.max }).optional().openapi({ description: `groups returned, largest first (default ${DUPLICATE_LIMIT.default})` }),
  })
  .strict()
  .openapi('DuplicatesOptions');
