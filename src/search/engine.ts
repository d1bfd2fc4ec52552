import path from 'node:path';
import { decodeImage, MAX_UPLOAD_PIXELS, type DecodedImage } from '../../data/decode.js';
import { toBytes, type Pixels } from '../../data/images.js';
import { vectorizerOf, weightingOf } from '../encoder/text.js';
import { PackedCodes, packBits, toWords } from '../encoder/binary.js';
import { fail, isLatentdexError, messageOf, type LatentdexError } from '../errors.js';
import { listCollections } from '../indexer/build.js';
import { validateName } from '../indexer/paths.js';
import { Collection } from '../indexer/collection.js';
import type { ItemRow } from '../indexer/catalogue.js';
import { exactKnn, normaliseRows, type Metric } from '../indexer/exact.js';

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
  /** pixel bytes (image collections) or TF-IDF floats (texts) */
  raw: Pixels | null;
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
      if (c.sync() === 'current') return c;
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

  /** Nearest items by code: HNSW (float codes) or exact Hamming scan re-ranked by the float code (binary codes). */
  codeNeighbors(c: Collection, q: PreparedQuery, k: number, ef?: number): HitList {
    const t0 = now();
    const skip = (row: ItemRow) => row.id === q.id;
    const hits: Hit[] = [];
    if (c.binaryBits) {
      const { codes, ids } = this.packed(c);
      const shortlist = codes.search(toWords(packBits(q.code), codes.words), Math.min(codes.n, Math.max(k * 10, 100)));
      const cand = shortlist
        .map((s) => ({ row: c.rowOf(ids[s.index]!), ham: s.distance, id: ids[s.index]! }))
        .filter((x): x is { row: ItemRow; ham: number; id: number } => x.row !== undefined && !skip(x.row))
        .map((x) => {
          const code = c.codeOf(x.id);
          let d = 0;
          for (let j = 0; j < code.length; j++) d += (code[j]! - q.code[j]!) ** 2;
          return { ...x, d };
        })
        .sort((a, b) => a.ham - b.ham || a.d - b.d)
        .slice(0, k);
      cand.forEach((x, i) => hits.push(this.hit(c, x.row, i + 1, x.ham)));
      return { method: `hamming-${c.binaryBits}`, hits, latencyMs: now() - t0, precision: this.precision(hits, q.label) };
    }
    let want = k + 1;
    for (;;) {
      const res = c.search(q.code, want, ef);
      hits.length = 0;
      for (const r of res) {
        // A row another process removed after this request's sync is skipped like a deleted element.
        const row = c.rowOf(r.id);
        if (!row || skip(row)) continue;
        hits.push(this.hit(c, row, hits.length + 1, c.manifest.space === 'l2' ? Math.sqrt(r.distance) : r.distance));
        if (hits.length === k) break;
      }
      if (hits.length === k || res.length < want || want >= c.count) break;
      want = Math.min(c.count, want * 4);
    }
    return { method: 'hnsw', hits, latencyMs: now() - t0, precision: this.precision(hits, q.label) };
  }

  /** The collection's packed binary codes as 32-bit words, derived (and cached) by the collection. */
  private packed(c: Collection): { codes: PackedCodes; ids: Int32Array } {
    return c.derived('packed-codes', () => {
      const bits = c.binaryBits!;
      const { ids, data } = c.rows<Uint8Array>('bits');
      const bytes = Math.ceil(bits / 8);
      const rows = Array.from({ length: ids.length }, (_, i) => data.subarray(i * bytes, (i + 1) * bytes));
      return { codes: PackedCodes.fromBytes(rows, bits), ids: ids.slice() };
    });
  }

  /** What the exact baseline scans: pixel bytes, or unit-length TF-IDF rows for cosine. */
  private baselineMatrix(c: Collection): { ids: Int32Array; data: Pixels } {
    if (c.kind !== 'text') return c.rawMatrix();
    const d = c.manifest.rawDim;
    return c.rows<Float32Array>('raw', { name: 'unit', row: (r) => normaliseRows(r, d) });
  }

  /** Exact brute-force search over raw vectors: pixel-space L2 (images) or TF-IDF cosine (text). */
  baselineNeighbors(c: Collection, q: PreparedQuery, k: number): HitList {
    if (!q.raw) throw fail('INVALID_ARGUMENT', 'a query by code has no raw vector; the exact baseline needs a key, an image or a text');
    const t0 = now();
    const m = this.baselineMatrix(c);
    const metric: Metric = c.kind === 'text' ? 'cosine' : 'l2';
    const ids = m.ids;
    // Pixel collections compare bytes with bytes: no float copy of the collection, distances scaled back to [0,1] units.
    const bytes = m.data instanceof Uint8Array;
    const res = exactKnn(m.data, c.manifest.rawDim, bytes ? toBytes(q.raw) : q.raw, k, metric, q.id === null ? undefined : (i) => ids[i] === q.id);
    const hits: Hit[] = [];
    for (const r of res) {
      const row = c.rowOf(m.ids[r.index]!);
      if (row) hits.push(this.hit(c, row, hits.length + 1, metric === 'l2' ? Math.sqrt(r.distance) / (bytes ? 255 : 1) : r.distance));
    }
    return { method: c.kind === 'text' ? 'tfidf-exact' : 'pixel-exact', hits, latencyMs: now() - t0, precision: this.precision(hits, q.label) };
  }

  /** Runs a prepared query: codes, and the exact baseline when `compare` is set. */
  run(c: Collection, q: PreparedQuery, o: SearchOptions): SearchResponse {
    const k = this.checkK(o.k);
    if (o.ef !== undefined && (!Number.isInteger(o.ef) || o.ef < 1 || o.ef > 4096)) throw fail('INVALID_ARGUMENT', `ef must be an integer from 1 to 4096, got ${o.ef}`);
    const codes = this.codeNeighbors(c, q, k, o.ef);
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

  /** Opens a collection and loads what its first query would otherwise pay for (baseline matrix, packed bits). */
  async warm(name: string): Promise<void> {
    const c = await this.collection(name);
    this.baselineMatrix(c);
    if (c.binaryBits) this.packed(c);
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

/** Model input and TF-IDF vectors of one free-text query; EMPTY_TEXT when it has no vocabulary word. */
export function textQueryVectors(c: Collection, text: string): { input: Float32Array; raw: Float32Array } {
  if (text.trim() === '') throw fail('EMPTY_TEXT', 'the query text is empty; type some words');
  const v = vectorizerOf(c.model);
  const [input, raw] = v.vectors(text, [weightingOf(c.model), 'tfidf']);
  return { input: input!, raw: raw! };
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
