import path from 'node:path';
import { decodeImage, MAX_UPLOAD_PIXELS, type DecodedImage } from '../../data/decode.js';
import { toBytes, toFloats, type Pixels } from '../../data/images.js';
import { textVector } from '../encoder/text.js';
import { isSparse } from '../encoder/sparse.js';
import { fail, isLatentdexError, messageOf, type LatentdexError } from '../errors.js';
import { listCollections } from '../indexer/build.js';
import { validateName } from '../indexer/paths.js';
import { Collection, type RawVector } from '../indexer/collection.js';
import type { ItemRow } from '../indexer/catalogue.js';
import { exactScan, graphScan, hammingScan, sortedIndex, sparseScan, type Retriever } from '../indexer/retrieval.js';
import { collectionTwoStage, rerankOptions, twoStageName } from './rerank.js';

export interface Hit {
  rank: number;
  key: string;
  label: string | null;
  distance: number;
  thumbnail: string;
  snippet?: string;
}

export interface HitList {
  method: string;
  hits: Hit[];
  latencyMs: number;
  /** share of hits whose label equals the query's (when both are known) */
  precision: number | null;
}

export interface SearchResponse {
  collection: string;
  k: number;
  query: { key: string | null; label: string | null; snippet?: string };
  codes: HitList;
  baseline?: HitList;
  /** |codes ∩ baseline| / k */
  overlap?: number;
}

export interface SearchOptions {
  k?: number;
  ef?: number;
  compare?: boolean;
  /** two-stage search: rows the codes shortlist for the exact re-ranking (0: codes alone; default per kind) */
  rerank?: number;
  /** weight of the code distance in the re-ranking (texts) */
  blend?: number;
}

export interface EngineOptions {
  dataDir: string;
  maxK?: number;
  quiet?: boolean;
  /** how long an HTTP write waits for another process's write before COLLECTION_BUSY (default 5 s) */
  lockTimeoutMs?: number;
  /** graph saves are batched: at most one per this many ms (default 1 s) */
  persistDelayMs?: number;
}

/** A collection that could not be opened, with why (serve lists it instead of refusing to start). */
export interface Unavailable {
  name: string;
  available: false;
  error: { code: string; message: string };
}

/** How long a collection that failed to open is reported as failed before the next attempt. */
const RETRY_OPEN_MS = 5000;

/** How long a replaced version stays open for requests that still use it. */
const RETIRE_MS = 60_000;

/** What a query supplies: the query item's code and, for the baseline, its raw vector. */
export interface PreparedQuery {
  code: Float32Array;
  /** pixel bytes (image collections) or sparse TF-IDF (texts); null for a query by code */
  raw: RawVector | null;
  /** catalogue rowid of a query that is an item of the collection (excluded from its own results) */
  id: number | null;
  key: string | null;
  label: string | null;
  snippet?: string;
}

/** The first 240 characters of a text, for hit lists. */
function snippetOf(text: string): string {
  return text.length > 240 ? `${text.slice(0, 240)}…` : text;
}

function now(): number {
  return performance.now();
}

/** The query engine: opens collections lazily, answers by key, image, code or text, with the exact baseline beside. */
export class SearchEngine {
  private readonly open = new Map<string, Promise<Collection>>();
  private readonly failed = new Map<string, { error: LatentdexError; at: number }>();
  /** versions replaced by another process, closed once no request uses them */
  private retired: Collection[] = [];
  readonly maxK: number;
  private readonly active = new Set<Promise<unknown>>();

  constructor(readonly o: EngineOptions) {
    this.maxK = o.maxK ?? 100;
  }

  /** A message as clients may see it: the data directory's absolute path replaced by DATA_DIR. */
  publicMessage(message: string): string {
    const abs = path.resolve(this.o.dataDir);
    return message.split(`${abs}${path.sep}`).join('DATA_DIR/').split(abs).join('DATA_DIR');
  }

  names(): string[] {
    return listCollections(this.o.dataDir);
  }

  /**
   * The collection, up to date: every write committed by any process is in its graph and caches before this
   * resolves; a collection replaced by another process's build is reopened.
   */
  async collection(name: string): Promise<Collection> {
    validateName(name);
    for (let attempt = 0; attempt < 3; attempt++) {
      const p = this.opened(name);
      const c = await p;
      let state: 'current' | 'replaced';
      try {
        state = c.sync();
      } catch (e) {
        // Its files went bad under it: drop it, so that the next request reopens (and reports) it.
        if (this.open.get(name) === p) {
          this.open.delete(name);
          this.retire(c);
        }
        throw e;
      }
      if (state === 'current') return c;
      // Only the request that finds it replaced first retires it; others already hold the new promise.
      if (this.open.get(name) === p) {
        this.open.delete(name);
        this.retire(c);
      }
    }
    throw fail('COLLECTION_UNAVAILABLE', `collection '${name}' keeps being replaced; retry in a moment`);
  }

  private opened(name: string): Promise<Collection> {
    const p = this.open.get(name);
    if (p) return p;
    const f = this.failed.get(name);
    if (f && Date.now() - f.at < RETRY_OPEN_MS) return Promise.reject(f.error);
    const q = Collection.open(this.o.dataDir, name, { quiet: this.o.quiet, lockTimeoutMs: this.o.lockTimeoutMs ?? 5000, persistDelayMs: this.o.persistDelayMs ?? 1000 });
    this.open.set(name, q);
    q.then(
      () => this.failed.delete(name),
      (e: unknown) => {
        if (this.open.get(name) === q) this.open.delete(name);
        // A missing collection is not remembered: it may be built any moment.
        const err = isLatentdexError(e) ? e : fail('CORRUPT_COLLECTION', `collection '${name}' cannot be opened: ${messageOf(e)}`, e);
        if (err.code !== 'COLLECTION_NOT_FOUND' && this.names().includes(name)) this.failed.set(name, { error: err, at: Date.now() });
      },
    );
    return q;
  }

  /**
   * A replaced version is closed once no request can still use it: when the engine is idle, and at the latest
   * after RETIRE_MS (longer than any request may take: uploads are cut off at 30 s).
   */
  private retire(c: Collection): void {
    this.retired.push(c);
    if (this.active.size <= 1) this.closeRetired();
    else setTimeout(() => this.closeRetired(c), RETIRE_MS).unref();
  }

  private closeRetired(only?: Collection): void {
    const closing = only ? this.retired.filter((c) => c === only) : this.retired;
    this.retired = only ? this.retired.filter((c) => c !== only) : [];
    for (const c of closing) c.close({ save: false });
  }

  /** Every collection of the data directory: open ones, and those that cannot be opened with the reason. */
  async status(): Promise<(Collection | Unavailable)[]> {
    const out: (Collection | Unavailable)[] = [];
    for (const n of this.names()) {
      try {
        out.push(await this.collection(n));
      } catch (e) {
        const err = isLatentdexError(e) ? e : fail('INTERNAL', messageOf(e));
        out.push({ name: n, available: false, error: { code: err.code, message: this.publicMessage(err.message) } });
      }
    }
    return out;
  }

  checkK(k: number | undefined): number {
    const kk = k ?? 10;
    if (!Number.isInteger(kk) || kk < 1 || kk > this.maxK) throw fail('K_OUT_OF_RANGE', `k must be an integer from 1 to ${this.maxK}, got ${k}`);
    return kk;
  }

  /** The item's colour preview (the original, scaled down). */
  thumbnailUrl(c: Collection, key: string): string {
    return `/api/collections/${encodeURIComponent(c.name)}/items/${encodeURIComponent(key)}/preview`;
  }

  private hit(c: Collection, row: ItemRow, rank: number, distance: number): Hit {
    const h: Hit = { rank, key: row.key, label: row.label, distance, thumbnail: this.thumbnailUrl(c, row.key) };
    if (row.text !== null) h.snippet = snippetOf(row.text);
    return h;
  }

  private precision(hits: Hit[], label: string | null): number | null {
    if (label === null || hits.length === 0) return null;
    return hits.filter((h) => h.label === label).length / hits.length;
  }

  /**
   * The k nearest items a retriever finds, as hits: the query item itself and rows another process removed since
   * this request's sync are skipped, asking for more until k remain.
   */
  private rank<Q, B>(c: Collection, r: Retriever<Q, B>, ids: Int32Array | null, query: Q, k: number, q: PreparedQuery, distance: (d: number) => number): HitList {
    const t0 = now();
    const hits: Hit[] = [];
    let want = Math.min(k + 1, Math.max(1, c.count));
    for (;;) {
      const res = r.search(query, want);
      hits.length = 0;
      for (const h of res) {
        const id = ids ? ids[h.index]! : h.index;
        const row = id === q.id ? undefined : c.rowOf(id);
        if (!row) continue;
        hits.push(this.hit(c, row, hits.length + 1, distance(h.distance)));
        if (hits.length === k) break;
      }
      if (hits.length === k || res.length < want || want >= c.count) break;
      want = Math.min(c.count, want * 4);
    }
    return { method: r.name, hits, latencyMs: now() - t0, precision: this.precision(hits, q.label) };
  }

  /**
   * Nearest items by code: HNSW (float codes) or the exact Hamming scan (binary codes); with a re-ranking (texts by
   * default), the codes shortlist and the exact baseline orders the shortlist — one Retriever either way.
   */
  codeNeighbors(c: Collection, q: PreparedQuery, k: number, o: Pick<SearchOptions, 'ef' | 'rerank' | 'blend'> = {}): HitList {
    if (!q.raw && (o.rerank || o.blend !== undefined)) throw fail('INVALID_ARGUMENT', 'a query by code has no raw vector to re-rank by; leave out rerank and blend');
    const ro = rerankOptions(c.kind, q.raw ? o : { rerank: 0 });
    let codes: Retriever;
    let ids: Int32Array | null;
    if (c.binaryBits) {
      const bits = c.binaryBits;
      const h = c.derived('retriever:hamming', () => {
        const m = c.codeMatrix();
        return { r: hammingScan(`hamming-${bits}`, m.data.slice(), c.manifest.codeDim, bits), ids: m.ids.slice() };
      });
      codes = h.r;
      ids = h.ids;
    } else if (ro.shortlist > 0) {
      // The re-ranking reads rows of the collection's matrices (id order): graph answers are mapped to rows.
      ids = c.codeMatrix().ids;
      codes = graphScan('hnsw', (v, kk) => c.search(v, kk, o.ef), sortedIndex(ids), 0);
    } else {
      codes = graphScan('hnsw', (v, kk) => c.search(v, kk, o.ef), null, 0);
      ids = null;
    }
    if (ro.shortlist > 0 && q.raw) {
      const two = collectionTwoStage(c, twoStageName(c.kind, c.binaryBits ? `hamming-${c.binaryBits}` : 'hnsw', ro), codes, ro);
      const pixels = c.kind === 'image' && c.manifest.rawType === 'u8';
      return this.rank(c, two, ids, { code: q.code, raw: q.raw }, k, q, (d) => (c.kind === 'image' ? Math.sqrt(d) / (pixels ? 255 : 1) : d));
    }
    return this.rank(c, codes, ids, q.code, k, q, (d) => (!c.binaryBits && c.manifest.space === 'l2' ? Math.sqrt(d) : d));
  }

  /** Exact brute-force search over raw vectors: pixel-space L2 over the stored bytes (images) or TF-IDF cosine over the full vocabulary (texts). */
  baselineNeighbors(c: Collection, q: PreparedQuery, k: number): HitList {
    if (!q.raw) throw fail('INVALID_ARGUMENT', 'a query by code has no raw vector; the exact baseline needs a key, an image or a text');
    if (isSparse(q.raw)) {
      const rows = c.sparseRows();
      return this.rank(c, sparseScan('tfidf-exact', rows), rows.idsView().slice(), q.raw, k, q, (x) => x);
    }
    const d = c.manifest.rawDim;
    const b = c.derived('retriever:baseline', () => {
      const m = c.rawMatrix();
      return { r: exactScan('pixel-exact', m.data, d, 'l2', { unitRows: true }), ids: m.ids.slice() };
    });
    const bytes = c.manifest.rawType === 'u8';
    // Pixel distances are reported in [0, 1] units whether the pixels are stored as bytes or floats.
    return this.rank(c, b.r, b.ids, bytes ? Float32Array.from(toBytes(q.raw)) : toFloats(q.raw), k, q, (x) => Math.sqrt(x) / (bytes ? 255 : 1));
  }

  /** Runs a prepared query: codes, and the exact baseline when `compare` is set. */
  run(c: Collection, q: PreparedQuery, o: SearchOptions): SearchResponse {
    // One generation for the whole answer: the graph, the matrices the re-ranking reads and the rows of the hits.
    return c.consistent(() => this.runNow(c, q, o));
  }

  private runNow(c: Collection, q: PreparedQuery, o: SearchOptions): SearchResponse {
    const k = this.checkK(o.k);
    if (o.ef !== undefined && (!Number.isInteger(o.ef) || o.ef < 1 || o.ef > 4096)) throw fail('INVALID_ARGUMENT', `ef must be an integer from 1 to 4096, got ${o.ef}`);
    const codes = this.codeNeighbors(c, q, k, o);
    const out: SearchResponse = { collection: c.name, k, query: { key: q.key, label: q.label, ...(q.snippet ? { snippet: q.snippet } : {}) }, codes };
    if (o.compare) {
      out.baseline = this.baselineNeighbors(c, q, k);
      const a = new Set(codes.hits.map((h) => h.key));
      out.overlap = out.baseline.hits.filter((h) => a.has(h.key)).length / k;
    }
    return out;
  }

  async byKey(name: string, key: string, o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    const row = c.item(key);
    return this.run(c, { code: c.codeOf(row.id), raw: c.rawOf(row.id), id: row.id, key: row.key, label: row.label, ...(row.text === null ? {} : { snippet: snippetOf(row.text) }) }, o);
  }

  async byImage(name: string, image: Buffer, o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    return this.byPixels(c, (await decodeQueryImage(c, image)).pixels, o);
  }

  /** Searches by an image already decoded to the collection's input size (see decodeQueryImage). */
  byPixels(c: Collection, px: Uint8Array, o: SearchOptions): SearchResponse {
    return this.run(c, { code: c.model.encode(px, 1), raw: px, id: null, key: null, label: null }, o);
  }

  async byCode(name: string, code: number[], o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    if (code.length !== c.manifest.codeDim) throw fail('INVALID_DIM', `code has ${code.length} values; collection '${name}' takes ${c.manifest.codeDim}`);
    if (code.some((v) => !Number.isFinite(Math.fround(v)))) throw fail('INVALID_ARGUMENT', 'code values must be finite float32 numbers (|v| < 3.4e38)');
    return this.run(c, { code: Float32Array.from(code), raw: null, id: null, key: null, label: null }, { ...o, compare: false });
  }

  async byText(name: string, text: string, o: SearchOptions): Promise<SearchResponse> {
    const c = await this.collection(name);
    if (c.kind !== 'text') throw fail('INVALID_ARGUMENT', `collection '${name}' holds images; search it with an image or a key`);
    const v = textQueryVectors(c, text);
    return this.run(c, { code: c.model.encode(v.input, 1), raw: v.raw, id: null, key: null, label: null, snippet: snippetOf(text) }, o);
  }

  /** Opens a collection and builds what its first query would otherwise pay for (baseline matrix, Hamming scan). */
  async warm(name: string): Promise<void> {
    const c = await this.collection(name);
    if (c.count === 0) return;
    const raw = c.kind === 'text' ? { index: new Uint32Array(0), value: new Float32Array(0) } : new Float32Array(c.manifest.rawDim);
    const probe: PreparedQuery = { code: new Float32Array(c.manifest.codeDim), raw, id: null, key: null, label: null };
    this.codeNeighbors(c, probe, 1);
    this.baselineNeighbors(c, probe, 1);
  }

  /** Runs work that uses the collections; close() waits for it, so no request meets a freed model. */
  track<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    this.active.add(p);
    const done = () => {
      this.active.delete(p);
      if (this.active.size === 0 && this.retired.length) this.closeRetired();
    };
    p.then(done, done);
    return p;
  }

  /** Waits for tracked work, then closes every open collection (saving graphs that are ahead of their files). */
  async close(): Promise<void> {
    while (this.active.size > 0) await Promise.allSettled([...this.active]);
    this.closeRetired();
    for (const p of this.open.values()) {
      try {
        (await p).close();
      } catch {
        // failed opens hold nothing
      }
    }
    this.open.clear();
  }
}

/** Model input and sparse TF-IDF vectors of one free-text query; EMPTY_TEXT when it has no vocabulary word. */
export function textQueryVectors(c: Collection, text: string): ReturnType<typeof textVector> {
  if (text.trim() === '') throw fail('EMPTY_TEXT', 'the query text is empty; type some words');
  return textVector(c.model, text);
}

/**
 * Decodes an uploaded image exactly as the collection's images were prepared (size, channels, fit, background),
 * with a colour preview; INVALID_ARGUMENT for text collections.
 */
export async function decodeQueryImage(c: Collection, image: Buffer): Promise<DecodedImage> {
  const i = c.model.manifest.input;
  if (i.type !== 'pixels') throw fail('INVALID_ARGUMENT', `collection '${c.name}' holds text; search it with {text}`);
  return decodeImage(image, { width: i.width, height: i.height, channels: i.channels, fit: i.fit, background: i.background }, 'upload', { preview: true, maxPixels: MAX_UPLOAD_PIXELS });
}
