import express from 'express';
import { OpenAPIRegistry, OpenApiGeneratorV3, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { batchBody, codeBody, duplicatesQuery, imageItemFields, itemsQuery, outliersQuery, schemas, searchQuery, searchResponse, textBody, textItemBody } from '../schemas.js';
import { THRESHOLD_SOURCES } from '../duplicates.js';
import { noQuery } from './http.js';

const json = <T extends z.ZodTypeAny>(schema: T) => ({ content: { 'application/json': { schema } } });
const errors = {
  400: { description: 'bad input (code INVALID_ARGUMENT, K_OUT_OF_RANGE, INVALID_DIM, EMPTY_TEXT, …)', ...json(schemas.error) },
  404: { description: 'no such collection or item', ...json(schemas.error) },
  405: { description: 'a method the path is not served with (METHOD_NOT_ALLOWED); the Allow header lists those it is', ...json(schemas.error) },
  409: { description: 'STALE_CURSOR and other conflicts', ...json(schemas.error) },
  413: { description: 'a body over the limit (PAYLOAD_TOO_LARGE)', ...json(schemas.error) },
  415: { description: 'an image format latentdex does not read, or a body that is neither JSON nor multipart (UNSUPPORTED_IMAGE, UNSUPPORTED_MEDIA)', ...json(schemas.error) },
  429: { description: 'too many bodies in flight (TOO_MANY_REQUESTS); retry after the Retry-After seconds', ...json(schemas.error) },
};
const collection = z.object({ c: z.string().openapi({ description: 'collection name' }) });
const item = collection.extend({ key: z.string().openapi({ description: 'item key' }) });
const image = z.object({ image: z.string().openapi({ format: 'binary', description: 'PNG, JPEG, WebP, GIF, TIFF or AVIF; SVG is refused' }) });

/** The OpenAPI 3 description of the HTTP API, generated from the zod schemas the routes validate with. */
export function openapiDocument(version = '0.1.0'): ReturnType<OpenApiGeneratorV3['generateDocument']> {
  const r = new OpenAPIRegistry();
  const route = (c: Omit<RouteConfig, 'responses'> & { ok: RouteConfig['responses'][string]; created?: RouteConfig['responses'][string] }) => {
    const { ok, created, ...rest } = c;
    r.registerPath({ ...rest, responses: { ...(created ? { 201: created } : {}), 200: ok, ...errors } });
  };
  const collectionList = z.object({ collections: z.array(z.record(z.unknown())) });
  const hits = { description: 'hits of the codes (and of the exact baseline with compare)', ...json(searchResponse) };
  route({ method: 'get', path: '/api/health', summary: 'server status', ok: { description: 'status, backend, version, maxK (the most hits one request answers), maxDepth (offset + k at most), maxRerank (the longest re-ranking shortlist)', ...json(z.record(z.unknown())) } });
  route({ method: 'get', path: '/api/collections', summary: 'every collection, with those that cannot be opened and why', ok: { description: 'collections', ...json(collectionList) } });
  route({ method: 'get', path: '/api/collections/{c}', summary: 'a collection’s manifest and disk sizes', request: { params: collection }, ok: { description: 'manifest', ...json(z.record(z.unknown())) } });
  route({
    method: 'get',
    path: '/api/collections/{c}/labels',
    summary: 'labels and groups with their item counts (for filters)',
    request: { params: collection },
    ok: { description: 'counts', ...json(z.object({ labels: z.array(z.object({ value: z.string(), count: z.number() })), groups: z.array(z.object({ value: z.string(), count: z.number() })) })) },
  });
  route({ method: 'get', path: '/api/collections/{c}/items/{key}', summary: 'an item: label, group, text, code', request: { params: item }, ok: { description: 'item', ...json(z.record(z.unknown())) } });
  const png = (description: string) => ({ description, content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) } } });
  route({ method: 'get', path: '/api/collections/{c}/random', summary: 'the key of an item drawn at random', request: { params: collection }, ok: { description: 'a key', ...json(z.object({ key: z.string() })) } });
  route({
    method: 'get',
    path: '/api/collections/{c}/map',
    summary: 'a 2-d map of the codes (PCA of a sample of items) for plotting',
    request: { params: collection },
    ok: { description: 'points with their keys and labels', ...json(z.record(z.unknown())) },
  });
  route({
    method: 'get',
    path: '/api/collections/{c}/items/{key}/preview',
    summary: 'an image item’s stored colour preview (WebP or PNG); 404 for text items',
    request: { params: item },
    ok: { description: 'the preview', content: { 'image/webp': { schema: z.string().openapi({ format: 'binary' }) }, 'image/png': { schema: z.string().openapi({ format: 'binary' }) } } },
  });
  route({ method: 'get', path: '/api/collections/{c}/items/{key}/thumbnail.png', summary: 'an image item as the model sees it (its size and channels); 404 for text items', request: { params: item }, ok: png('the item’s model input') });
  route({ method: 'get', path: '/api/collections/{c}/items/{key}/reconstruction.png', summary: 'an image item decoded from its code; 404 for text items', request: { params: item }, ok: png('the reconstruction') });
  route({
    method: 'get',
    path: '/api/collections/{c}/items/{key}/original',
    summary: 'the original file of an item read from a dir: source; 404 unless the server runs with --serve-originals',
    request: { params: item },
    ok: { description: 'the file as it is on disk, with its image type', content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } } },
  });
  route({ method: 'get', path: '/api/collections/{c}/items/{key}/neighbors', summary: 'nearest items to an item of the collection', request: { params: item, query: searchQuery }, ok: hits });
  route({
    method: 'post',
    path: '/api/collections/{c}/search',
    summary: 'search by an uploaded image (multipart field `image`), a text (multipart field `text`, or JSON) or a code (JSON)',
    request: {
      params: collection,
      query: searchQuery,
      body: { content: { 'multipart/form-data': { schema: z.union([image, textBody]) }, 'application/json': { schema: z.union([codeBody, textBody]) } } },
    },
    ok: hits,
  });
  route({
    method: 'post',
    path: '/api/collections/{c}/search/batch',
    summary: 'many queries (keys, codes, texts) answered together, each as it would be alone',
    request: { params: collection, query: searchQuery, body: json(batchBody) },
    ok: { description: 'one answer per query, in order', ...json(z.object({ collection: z.string(), results: z.array(searchResponse) })) },
  });
  route({
    method: 'post',
    path: '/api/collections/{c}/items',
    summary: 'add (or with replace=true replace) an item; needs Authorization: Bearer <LATENTDEX_API_KEY>',
    request: {
      params: collection,
      query: itemsQuery,
      body: { content: { 'multipart/form-data': { schema: image.merge(imageItemFields) }, 'application/json': { schema: textItemBody } } },
    },
    created: { description: 'added: the key and the collection\'s new count', ...json(z.object({ key: z.string(), count: z.number(), replaced: z.literal(false) })) },
    ok: { description: 'replaced (replace=true and the key was there)', ...json(z.object({ key: z.string(), count: z.number(), replaced: z.literal(true) })) },
  });
  route({
    method: 'get',
    path: '/api/collections/{c}/outliers',
    summary: 'the most unusual items (labels are not read), worst first, with scores, percentile, thumbnail and reconstructionImage',
    request: { params: collection, query: outliersQuery },
    ok: { description: 'ranked items', ...json(z.object({ collection: z.string(), score: z.string(), count: z.number(), offset: z.number(), generation: z.number(), items: z.array(z.record(z.unknown())) })) },
  });
  route({
    method: 'get',
    path: '/api/collections/{c}/duplicates',
    summary: 'groups of near-duplicate items (graph neighbours within code and raw thresholds); exact copies always group',
    request: { params: collection, query: duplicatesQuery },
    ok: { description: 'groups, largest first', ...json(z.object({ threshold: z.number(), rawThreshold: z.number(), thresholds: z.object({ code: z.enum(THRESHOLD_SOURCES), raw: z.enum(THRESHOLD_SOURCES) }), count: z.number(), items: z.number(), groups: z.array(z.object({ exact: z.boolean(), maxDistance: z.number(), items: z.array(z.record(z.unknown())) })) })) },
  });
  route({
    method: 'post',
    path: '/api/collections/{c}/denoise',
    summary: "an image as the collection's model reconstructs it (a model trained with --denoise removes noise)",
    request: { params: collection, body: { content: { 'multipart/form-data': { schema: image } } } },
    ok: png('PNG at the collection’s size; header x-latentdex-denoising-model says whether the model was trained to denoise'),
  });
  route({ method: 'delete', path: '/api/collections/{c}/items/{key}', summary: 'remove an item (API key)', request: { params: item }, ok: { description: 'removed', ...json(z.object({ removed: z.string(), count: z.number() })) } });
  return new OpenApiGeneratorV3(r.definitions).generateDocument({
    openapi: '3.0.3',
    info: { title: 'latentdex', version, description: 'Search images and documents by example over autoencoder codes, with the exact baseline beside.' },
  });
}

/** GET /api/openapi.json. */
export function openapiRoutes(version?: string): express.Router {
  const r = express.Router();
  let doc: unknown;
  r.get('/openapi.json', noQuery, (_req, res) => {
    doc ??= openapiDocument(version);
    res.json(doc);
  });
  return r;
}
