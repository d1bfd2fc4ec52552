import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { packBits } from '../encoder/binary.js';
import type { Pixels, SkippedFile } from '../../data/images.js';
import { TrainedModel } from '../encoder/model.js';
import { baselineVectorizerOf } from '../encoder/text.js';
import { fail, isLatentdexError } from '../errors.js';
import { toBytes, toFloats } from '../../data/images.js';
import { refuseKeys } from './key-check.js';
import { crashPoint } from '../crash.js';
import { log, progress } from '../progress.js';
import { Catalogue, COLLECTION_FORMAT_VERSION, type Change, type CollectionManifest, type ItemRow, type NewItem, type StoredRow } from './catalogue.js';
import { filterKey, type ItemFilter } from './filter.js';
import { HnswIndex, HNSW_DEFAULTS, type HnswParams, type Neighbor, type Space } from './hnsw.js';
import { graphFile, isLegacy, readPointer, savedGraphs, sweepGraphs, sweepHome, orphanVersions } from './layout.js';
import { homeOf, notFound, versionPaths, type CollectionPaths } from './paths.js';
import { RowMatrix } from './rows.js';
import type { IdFilter } from './retrieval.js';
import { normaliseRows } from './exact.js';
import { isSparse, type SparseVector } from '../encoder/sparse.js';
import { decodeSparse, encodeSparse, SparseRows } from './sparse-rows.js';

/** What the exact baseline compares: pixel bytes or floats (images), a sparse TF-IDF vector (texts). */
export type RawVector = Pixels | SparseVector;

/** Raw vectors of n items: an n × dim matrix (images) or one sparse vector per item (texts). */
export type RawVectors = Pixels | readonly SparseVector[];

/** An item to add: what the model takes, what the exact baseline compares, and what the catalogue shows. */
export interface ItemInput {
  key: string;
  label: string | null;
  uri: string | null;
  grp?: string | null;
  text?: string | null;
  /** the model's input vector (bytes are read as v/255) */
  input: Pixels;
  /** the vector the exact baseline compares (pixel bytes, sparse TF-IDF) */
  raw: RawVector;
  /** what the page shows for the item: a colour preview (WebP/PNG); null for texts */
  thumb: Buffer | null;
}

/** Items to add in batches, so that a large source never sits in memory as items; with what its reader skipped. */
export interface ItemStream {
  total: number;
  /** every key the batches hold, checked before any item is encoded */
  keys: readonly string[];
  /**
   * The items in batches, from item `from` on (default 0); may be called more than once, each call yields the same
   * items in the same order. A source that decodes or reads as it goes yields asynchronously.
   */
  batches(from?: number): Iterable<ItemInput[]> | AsyncIterable<ItemInput[]>;
  /** files of the source that could not be used, recorded in the manifest */
  skipped?: SkippedFile[];
  /** folders the items came from, recorded in the manifest (the only places originals may be served from) */
  roots?: string[];
}

export interface IngestOptions {
  /** items of the stream already stored (a resumed build) */
  from?: number;
  /** how often the graph is saved while a build runs (default one minute) */
  checkpointMs?: number;
  quiet?: boolean;
}

/** How often a build saves its graph: a resumed build replays at most this much of the change log. */
const CHECKPOINT_MS = 60_000;

/** Items held in memory as a stream of one batch. */
export function arrayStream(items: ItemInput[]): ItemStream {
  return { total: items.length, keys: items.map((it) => it.key), batches: (from = 0) => [items.slice(from)] };
}

/** The first item a stream yields from `from` on. */
async function itemAt(stream: ItemStream, from: number): Promise<ItemInput | undefined> {
  for await (const b of stream.batches(from)) if (b.length) return b[0];
  return undefined;
}

/** Every batch of a stream, read into memory. */
async function collect(batches: AsyncIterable<ItemInput[]>): Promise<ItemInput[][]> {
  const out: ItemInput[][] = [];
  for await (const b of batches) out.push(b);
  return out;
}

/** Most skipped files listed in a manifest (the count is always kept). */
const MAX_SKIPPED_LISTED = 1000;

export interface CreateOptions {
  name: string;
  kind: CollectionManifest['kind'];
  space: Space;
  hnsw?: Partial<HnswParams>;
  rawDim: number;
  rawType: CollectionManifest['rawType'];
  params: Record<string, unknown>;
}

export interface AddOptions {
  /** replace items whose key exists instead of failing with DUPLICATE_KEY */
  replace?: boolean;
  quiet?: boolean;
}

/** How a process that opened a collection writes to it. */
export interface OpenOptions {
  quiet?: boolean;
  /** how long a write waits for another process's write to finish before COLLECTION_BUSY (default 10 minutes) */
  lockTimeoutMs?: number;
  /** save the graph file this long after a write (a server batches writes); default: at once */
  persistDelayMs?: number;
}

/** What one or more committed writes changed: ids removed, ids added (and still present). */
interface Delta {
  removed: Set<number>;
  added: Change[];
}

/** A value derived from the items, valid for one generation, optionally brought forward by a delta. */
interface Derived {
  gen: number;
  value: unknown;
  apply?: (d: Delta, added: () => RowSource[]) => void;
}

type RowSource = StoredRow;
export type Column = 'raw' | 'bits' | 'code';

/** Deleted graph slots tolerated before the graph is compacted (and at least a quarter of the live items). */
const COMPACT_MIN = 256;

/** Generations of change log kept behind the newest saved graph, for readers that are behind. */
const LOG_RETAINED = 1000;

/** How long a write waits for another process's write by default. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10 * 60_000;

function f32(buf: Buffer): Float32Array {
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function rawBuffer(v: RawVector, type: CollectionManifest['rawType']): Buffer {
  if (isSparse(v)) return encodeSparse(v);
  if (type === 'u8') return Buffer.from(toBytes(v));
  const f = toFloats(v);
  return Buffer.from(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
}

/** A stored dense raw vector as the baseline compares it: bytes for pixel collections, floats otherwise. */
export function decodeRaw(buf: Buffer, type: CollectionManifest['rawType']): Pixels {
  return type === 'f32' ? f32(buf) : new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Why an item's raw vector does not fit a collection, or null when it does. */
function rawMismatch(v: RawVector, m: CollectionManifest): string | null {
  if (m.rawType === 'sparse') {
    if (!isSparse(v)) return 'a dense raw vector; this collection stores sparse TF-IDF vectors';
    for (let i = 0; i < v.index.length; i++) {
      if (v.index[i]! >= m.rawDim || (i > 0 && v.index[i]! <= v.index[i - 1]!)) return `a sparse vector whose indices are not increasing below ${m.rawDim}`;
    }
    return null;
  }
  if (isSparse(v)) return 'a sparse raw vector; this collection stores dense ones';
  return v.length === m.rawDim ? null : `${v.length} values; this collection takes ${m.rawDim}`;
}

/** The model inputs of a batch of items as one float matrix. */
function stackInputs(items: ItemInput[], dim: number): Float32Array {
  const out = new Float32Array(items.length * dim);
  items.forEach((it, i) => {
    if (it.input.length !== dim) throw fail('INVALID_DIM', `item '${it.key}' has ${it.input.length} input values; this model takes ${dim}`);
    out.set(toFloats(it.input), i * dim);
  });
  return out;
}

/** The catalogue row of an item with its code and reconstruction error. */
function storedItem(it: ItemInput, code: Float32Array, error: number, rawType: CollectionManifest['rawType'], bits: boolean): NewItem {
  return {
    key: it.key,
    label: it.label,
    uri: it.uri,
    grp: it.grp ?? null,
    text: it.text ?? null,
    raw: rawBuffer(it.raw, rawType),
    thumb: it.thumb,
    code: Buffer.from(code.buffer, code.byteOffset, code.byteLength),
    bits: bits ? Buffer.from(packBits(code)) : null,
    recon: Number.isFinite(error) ? error : null,
  };
}

/** Encodes a batch of items into the rows a collection stores (codes, packed bits, reconstruction errors). */
export function encodeItems(model: TrainedModel, items: ItemInput[], rawType: CollectionManifest['rawType']): NewItem[] {
  const cd = model.codeDim;
  const scored = model.encodeScored(stackInputs(items, model.inputDim), items.length);
  return items.map((it, j) => storedItem(it, scored.codes.subarray(j * cd, (j + 1) * cd), scored.errors[j]!, rawType, Boolean(model.manifest.regularisers.binaryBits)));
}

function modelSummary(model: TrainedModel): Record<string, unknown> {
  const m = model.manifest;
  return { arch: m.architecture.arch, codeDim: m.codeDim, inputDim: m.inputDim, loss: m.loss, regularisers: m.regularisers, source: m.source, training: m.training };
}

/**
 * The state a copy of a store's collection mirrors (kept in its params as `origin`): the store's build, generation
 * and times, the same on every replica whatever local writes brought the copy there.
 */
const originSchema = z.object({ version: z.string().min(1).max(64), generation: z.number().int().min(0), createdAt: z.string(), updatedAt: z.string() }).strict();
export type Origin = z.infer<typeof originSchema>;

/** What names one state of a collection in cursors and answers. */
export interface Stamp {
  version: string;
  generation: number;
}

/** `a.jsonl#9` before `a.jsonl#10`: skipped files and records listed in their source's order. */
export function inSourceOrder(files: readonly SkippedFile[]): SkippedFile[] {
  const order = new Intl.Collator('en', { numeric: true });
  return [...files].sort((a, b) => order.compare(a.path, b.path));
}

/**
 * A manifest's params after an add: the source's folders added, and its skipped files merged into the list in source
 * order (a file listed again replaces its old entry; a file `indexed` now leaves the list).
 */
export function ingestParams(params: Record<string, unknown>, stream: Pick<ItemStream, 'roots' | 'skipped'>, indexed: ReadonlySet<string>): Record<string, unknown> {
  const roots = new Set([...((params.roots as string[] | undefined) ?? []), ...(stream.roots ?? [])]);
  const before = (params.skipped as { count: number; files: SkippedFile[] } | undefined) ?? { count: 0, files: [] };
  const fresh = stream.skipped ?? [];
  const again = new Set(fresh.map((f) => f.path));
  const kept = before.files.filter((f) => !indexed.has(f.path) && !again.has(f.path));
  const files = inSourceOrder([...kept, ...fresh]).slice(0, MAX_SKIPPED_LISTED);
  return { ...params, roots: [...roots], skipped: { count: before.count - (before.files.length - kept.length) + fresh.length, files } };
}

/** The net effect of a run of changes (ids are never reused, so an id added then removed is simply gone). */
function netDelta(changes: Change[]): Delta {
  const removed = new Set<number>();
  const added = new Map<number, Change>();
  for (const c of changes) {
    if (c.op === 'add') added.set(c.id, c);
    else if (!added.delete(c.id)) removed.add(c.id);
  }
  return { removed, added: [...added.values()].filter((c) => c.code !== null) };
}

/**
 * A searchable collection: trained model + HNSW graph of codes + SQLite catalogue, checked against its manifest.
 * It owns the graph and every cache derived from the items; all of them follow the catalogue's generation, so a
 * write by this or any other process is seen before the next query (`sync`).
 */
export class Collection {
  readonly #cat: Catalogue;
  #index: HnswIndex;
  /** the generation the graph and caches reflect */
  #gen: number;
  /** the generation of the newest graph file this process knows is saved */
  #savedGen: number;
  /** false for a version being built: it is not live yet, and no other process can see it */
  #published = true;
  readonly #derived = new Map<string, Derived>();
  #persistTimer: NodeJS.Timeout | undefined;
  /** the generation up to which this process last forgot the change log */
  #truncatedTo = 0;
  #closed = false;
  /** a collection opened from disk loaded its model and frees it; one created around a caller's model does not */
  #ownsModel = true;

  private constructor(
    readonly paths: CollectionPaths,
    readonly model: TrainedModel,
    catalogue: Catalogue,
    index: HnswIndex,
    gen: number,
    public manifest: CollectionManifest,
    private readonly o: OpenOptions,
  ) {
    this.#cat = catalogue;
    this.#index = index;
    this.#gen = gen;
    this.#savedGen = gen;
  }

  get name(): string {
    return this.manifest.name;
  }
  get kind(): CollectionManifest['kind'] {
    return this.manifest.kind;
  }
  get count(): number {
    return this.manifest.count;
  }
  /** bumped by every committed write of any process; what callers key their own derived data on */
  get generation(): number {
    return this.#gen;
  }
  get binaryBits(): number | undefined {
    return this.model.manifest.regularisers.binaryBits;
  }
  /**
   * What page cursors and answers name as the state searched: the build (its creation time) and generation, or for
   * a replica's copy of a store's collection the store's build and generation, so a cursor made by one replica pages
   * on another that has followed the store as far.
   */
  get stamp(): Stamp {
    const o = this.origin;
    return o ? { version: o.version, generation: o.generation } : { version: this.manifest.createdAt, generation: this.#gen };
  }
  /** For a replica's copy of a store's collection, the store's state it holds. */
  get origin(): Origin | undefined {
    const origin = this.manifest.params.origin;
    const o = origin === undefined ? undefined : originSchema.safeParse(origin);
    return o?.success ? o.data : undefined;
  }
  /** elements in the graph, deleted ones whose slot is not reused yet included */
  get graphSize(): number {
    return this.#index.size;
  }

  /** Creates an empty collection version in `paths.dir`, whose `model/` subfolder already holds the saved model. */
  static create(paths: CollectionPaths, model: TrainedModel, o: CreateOptions, open: OpenOptions = {}): Collection {
    const hnsw = { ...HNSW_DEFAULTS, ...o.hnsw };
    const now = new Date().toISOString();
    const manifest: CollectionManifest = {
      name: o.name,
      kind: o.kind,
      formatVersion: COLLECTION_FORMAT_VERSION,
      codeDim: model.codeDim,
      space: o.space,
      hnsw,
      count: 0,
      generation: 0,
      rawDim: o.rawDim,
      rawType: o.rawType,
      model: modelSummary(model),
      params: o.params,
      createdAt: now,
      updatedAt: now,
    };
    const catalogue = new Catalogue(paths.catalogue);
    catalogue.writeManifest(manifest);
    const index = HnswIndex.create(model.codeDim, o.space, 1024, hnsw);
    index.save(graphFile(paths.dir, 0));
    const c = new Collection(paths, model, catalogue, index, 0, manifest, open);
    c.#ownsModel = false;
    c.#published = false;
    return c;
  }

  /** Opens the live version of a collection, checks it, brings its graph up to date and sweeps what crashes left. */
  static async open(dataDir: string, name: string, o: OpenOptions = {}): Promise<Collection> {
    for (let attempt = 0; ; attempt++) {
      const home = homeOf(dataDir, name);
      const version = fs.existsSync(home) ? readPointer(home) : undefined;
      try {
        return await Collection.openVersion(dataDir, name, version, o);
      } catch (e) {
        // A replace made another version live while this one was being opened (and removed it): open that one.
        const now = fs.existsSync(home) ? readPointer(home) : undefined;
        if (attempt >= 2 || now === version) throw e;
      }
    }
  }

  private static async openVersion(dataDir: string, name: string, version: string | undefined, o: OpenOptions): Promise<Collection> {
    const home = homeOf(dataDir, name);
    if (!version) {
      const orphans = orphanVersions(home);
      if (orphans.length) {
        throw fail('CORRUPT_COLLECTION', `collection '${name}' has versions but its CURRENT pointer is missing; restore it (\`echo ${orphans[orphans.length - 1]} > ${name}/CURRENT\` in the data directory names the newest) or rebuild with --replace`);
      }
      if (fs.existsSync(home) && isLegacy(home)) {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' was written by an older latentdex (format 1); rebuild it with \`latentdex build --collection ${name} --source SRC --replace\``);
      }
      throw notFound(dataDir, name);
    }
    const c = await Collection.load(versionPaths(home, version), name, o);
    try {
      const swept = sweepHome(home);
      if (swept.length) log(`collection '${name}': removed leftovers of interrupted or replaced writes: ${swept.join(', ')}`, o.quiet);
    } catch {
      // another process is sweeping the same folder
    }
    return c;
  }

  /**
   * Opens a version that an interrupted build left (not live: no other process reads it), with its graph brought up
   * to the last committed batch, so that the build can go on from there.
   */
  static async resume(paths: CollectionPaths, name: string, o: OpenOptions = {}): Promise<Collection> {
    const c = await Collection.load(paths, name, o);
    c.#published = false;
    return c;
  }

  /** Opens one version folder: checks its manifest against this latentdex and its model, loads and replays the graph. */
  private static async load(paths: CollectionPaths, name: string, o: OpenOptions): Promise<Collection> {
    const version = paths.version;
    if (!fs.existsSync(paths.catalogue)) throw fail('CORRUPT_COLLECTION', `collection '${name}': its version ${version} has no catalogue; rebuild it with --replace`);
    const catalogue = new Catalogue(paths.catalogue);
    let model: TrainedModel | undefined;
    try {
      const manifest = catalogue.readManifest();
      if (!manifest) throw fail('CORRUPT_COLLECTION', `collection '${name}' has no manifest; rebuild it with \`latentdex build --collection ${name} --replace\``);
      // Format 2 differs from 3 only in how texts store their baseline: its image collections read as they are.
      if (manifest.formatVersion !== COLLECTION_FORMAT_VERSION && !(manifest.formatVersion === 2 && manifest.kind === 'image')) {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' has format ${manifest.formatVersion}; this latentdex reads ${COLLECTION_FORMAT_VERSION}: rebuild it`);
      }
      if (manifest.kind === 'text' && manifest.rawType !== 'sparse') {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' was built by an older latentdex (its TF-IDF baseline keeps 2,000 words, not the full vocabulary); rebuild it with \`latentdex build --collection ${name} --source SRC --replace\``);
      }
      model = await TrainedModel.load(paths.model);
      if (manifest.kind === 'text' && baselineVectorizerOf(model).dim !== manifest.rawDim) {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' stores TF-IDF over ${manifest.rawDim} words but its model's vocabulary has ${baselineVectorizerOf(model).dim}; rebuild the collection`);
      }
      if (model.codeDim !== manifest.codeDim) {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' stores ${manifest.codeDim}-d codes but its model gives ${model.codeDim}-d codes; rebuild the collection`);
      }
      const c = new Collection(paths, model, catalogue, HnswIndex.create(manifest.codeDim, manifest.space, 16, manifest.hnsw), -1, manifest, o);
      c.loadGraph();
      c.catchUp();
      return c;
    } catch (e) {
      model?.dispose();
      catalogue.close();
      throw e;
    }
  }

  /**
   * Loads the newest saved graph file not ahead of the catalogue; if there is none (or it cannot be read), rebuilds
   * the graph from the catalogue's codes, which are the source of truth.
   */
  private loadGraph(): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      const committed = this.#cat.generation();
      const gen = savedGraphs(this.paths.dir).find((g) => g <= committed);
      if (gen === undefined) break;
      try {
        const index = HnswIndex.load(graphFile(this.paths.dir, gen), this.manifest.codeDim, this.manifest.space, this.manifest.hnsw.ef);
        // The log no longer reaches back to this file: a newer one was saved meanwhile; look again.
        if (!this.#cat.reaches(gen)) continue;
        this.setGraph(index, gen);
        return;
      } catch (e) {
        // A newer file replaced it meanwhile (look again), or it is damaged (rebuild).
        if (isLatentdexError(e) && e.code === 'NOT_FOUND') continue;
        if (isLatentdexError(e) && e.code === 'MANIFEST_MISMATCH') throw e;
        log(`collection '${this.name}': graph file of generation ${gen} is unreadable; rebuilding it from the catalogue`, this.o.quiet);
        fs.rmSync(graphFile(this.paths.dir, gen), { force: true });
        break;
      }
    }
    this.rebuildGraph();
  }

  private setGraph(index: HnswIndex, gen: number): void {
    this.#index = index;
    this.#gen = gen;
    this.#savedGen = gen;
    this.#derived.clear();
  }

  /** Builds the graph from every code in the catalogue, at the committed generation, and saves it. */
  private rebuildGraph(): void {
    const n = this.compact();
    if (n > 0) this.persist();
  }

  /** Builds a graph of the live items only from the catalogue's codes; returns how many it holds. */
  private compact(): number {
    // One snapshot: the generation and the codes read belong together.
    const { gen, index, n } = this.#cat.snapshot(() => {
      const gen = this.#cat.generation();
      const n = this.#cat.count();
      const index = HnswIndex.create(this.manifest.codeDim, this.manifest.space, n + 16, this.manifest.hnsw);
      const bar = progress({ title: 'graph', total: n, quiet: this.o.quiet ?? true });
      let i = 0;
      for (const r of this.#cat.allCodes()) {
        index.add(f32(r.code), r.id);
        if (++i % 1000 === 0) bar.update(i);
      }
      bar.update(i);
      bar.stop();
      this.manifest = this.#cat.readManifest()!;
      return { gen, index, n };
    });
    this.#index = index;
    if (gen !== this.#gen) this.#derived.clear();
    this.#gen = gen;
    this.#savedGen = -1;
    return n;
  }

  /**
   * Brings graph and caches to the committed generation: replays the change log (others' writes and our own), or
   * reloads the newest graph file when the log no longer reaches back to what this process holds.
   */
  private catchUp(): void {
    // One snapshot for the whole replay: the log, the rows it added and the manifest are all of one generation.
    try {
      this.#cat.snapshot(() => this.replay());
    } catch (e) {
      // A replay that failed midway left the graph between generations: start again from the saved files.
      this.#gen = -1;
      this.#derived.clear();
      this.#cat.snapshot(() => {
        this.loadGraph();
        if (this.#gen !== this.#cat.generation()) this.replay();
      });
      if (!isLatentdexError(e)) log(`collection '${this.name}': replaying the change log failed (${String(e)}); reloaded the graph`, this.o.quiet);
    }
  }

  private replay(): void {
    // The generation and the log are read in one snapshot, so a truncation between them cannot hide changes.
    const read = this.#cat.snapshot(() => {
      const committed = this.#cat.generation();
      return { committed, live: this.#cat.count(), changes: committed === this.#gen ? [] : this.#cat.changesSince(this.#gen) };
    });
    const { committed, live, changes } = read;
    if (committed === this.#gen) return;
    if (!changes) {
      this.loadGraph();
      if (this.#gen !== this.#cat.generation()) return this.replay();
      this.manifest = this.#cat.readManifest()!;
      return;
    }
    const delta = netDelta(changes);
    // Many deletions leave an HNSW graph whose new elements hang off deleted ones, and some become unreachable
    // (measured: 54 of 1,000 after replaying one `add --replace` of every item). Past the compaction threshold, the
    // graph is taken from a newer saved file (the writer compacted it) or rebuilt from the catalogue instead.
    const deletedAfter = this.#index.size + delta.added.length - live;
    if (deletedAfter > Math.max(COMPACT_MIN, live / 4)) {
      const newer = savedGraphs(this.paths.dir).find((g) => g > this.#gen && g <= committed);
      if (newer !== undefined) {
        this.loadGraph();
        if (this.#gen !== this.#cat.generation()) return this.replay();
      } else {
        log(`collection '${this.name}': compacting the graph (${deletedAfter} deleted slots)`, this.o.quiet);
        this.compact();
        this.#derived.clear();
        this.#savedGen = -1;
      }
      this.manifest = this.#cat.readManifest()!;
      return;
    }
    for (const id of delta.removed) this.#index.remove(id);
    if (delta.added.length) this.#index.reserve(delta.added.length);
    for (const c of delta.added) this.#index.add(f32(c.code!), c.id);
    const gen = changes.length ? changes[changes.length - 1]!.gen : committed;
    // Every cache is brought forward by the same rows, read once.
    let added: RowSource[] | undefined;
    const addedRows = () => (added ??= this.#cat.rowsOf(delta.added.map((c) => c.id)));
    for (const [name, d] of this.#derived) {
      if (!d.apply) this.#derived.delete(name);
      else {
        d.apply(delta, addedRows);
        d.gen = Math.max(gen, committed);
      }
    }
    this.#gen = Math.max(gen, committed);
    this.manifest = this.#cat.readManifest()!;
  }

  /**
   * Before a query: 'replaced' when another process made a new version live (the caller reopens by name);
   * otherwise catches up with writes committed since and answers 'current'.
   */
  sync(): 'current' | 'replaced' {
    if (this.#closed) return 'replaced';
    if (!this.isLive()) return 'replaced';
    try {
      this.catchUp();
    } catch (e) {
      if (isLatentdexError(e)) throw e;
      throw fail('CORRUPT_COLLECTION', `collection '${this.name}' cannot be read (${String(e)}); rebuild it with --replace`, e);
    }
    return 'current';
  }

  /** Whether this version is the one the collection's pointer names (a version being built counts as live). */
  private isLive(): boolean {
    if (!this.#published) return true;
    try {
      return readPointer(this.paths.home) === this.paths.version;
    } catch {
      return false;
    }
  }

  /** Waits for the writer lock (polling, so a server keeps answering reads meanwhile), or COLLECTION_BUSY. */
  private lock(): Promise<void> {
    const timeoutMs = this.o.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    return this.#cat.beginWrite({
      timeoutMs,
      name: this.name,
      onWait: () => log(`collection '${this.name}' is being written by another process; waiting for it (up to ${Math.round(timeoutMs / 1000)} s)`, this.o.quiet),
    });
  }

  /**
   * One write: takes the writer lock, checks this version is still live, runs `change` against the catalogue,
   * commits it as the next generation, then replays it into graph and caches. A write that throws changes nothing.
   */
  private async write<T>(change: () => T, o: { persist?: boolean } = {}): Promise<T> {
    if (this.#closed) throw fail('INTERNAL', `collection '${this.name}' is closed`);
    await this.lock();
    let out: T;
    try {
      if (!this.isLive()) {
        throw fail('COLLECTION_REPLACED', `collection '${this.name}' was replaced by a new build while this write waited; run it again`);
      }
      out = change();
      crashPoint('write:before-commit');
      this.#cat.commitWrite();
    } catch (e) {
      this.#cat.rollbackWrite();
      throw e;
    }
    crashPoint('write:after-commit');
    // The write is committed: failing to replay or save it now must not report it as failed (a retry would
    // meet DUPLICATE_KEY); the next sync or open replays it from the log.
    try {
      this.catchUp();
      if (o.persist !== false) this.schedulePersist();
    } catch (e) {
      log(`collection '${this.name}': the write is stored, but updating the graph file failed (${String(e)})`, this.o.quiet);
    }
    return out;
  }

  private schedulePersist(): void {
    const delay = this.o.persistDelayMs;
    if (delay === undefined || delay <= 0) return this.persist();
    if (this.#persistTimer) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = undefined;
      try {
        this.persist();
      } catch (e) {
        log(`collection '${this.name}': saving the graph failed (${String(e)}); the change log keeps the writes`, this.o.quiet);
      }
    }, delay);
    this.#persistTimer.unref();
  }

  /**
   * Saves the graph as the file of its generation (temp + fsync + rename), removes older files, and forgets the
   * change log up to it when the writer lock is free. Writes are durable before this: the catalogue holds them.
   */
  persist(): void {
    if (this.#persistTimer) clearTimeout(this.#persistTimer);
    this.#persistTimer = undefined;
    if (this.#closed || this.#gen <= this.#savedGen) return;
    const gen = this.#gen;
    if (!savedGraphs(this.paths.dir).includes(gen)) this.#index.save(graphFile(this.paths.dir, gen));
    this.#savedGen = gen;
    sweepGraphs(this.paths.dir, gen);
    // The log is kept for the last LOG_RETAINED generations, so a reader a few writes behind replays them instead
    // of reloading the graph file (which a fast writer would otherwise make every reader do on every request).
    if (gen - this.#truncatedTo > 2 * LOG_RETAINED && this.#cat.tryBeginWrite()) {
      try {
        this.#truncatedTo = gen - LOG_RETAINED;
        this.#cat.truncateChanges(this.#truncatedTo);
        this.#cat.commitWrite({ bump: false });
      } catch {
        this.#cat.rollbackWrite();
      }
    }
  }

  /** Refuses keys that are no keys (see keyProblem), repeated keys and (without `replace`) keys already stored. */
  checkKeys(keys: readonly string[], o: AddOptions): void {
    refuseKeys(keys, { collection: this.name, stored: (k) => this.#cat.idOf(k) !== undefined, replace: o.replace });
  }

  /** Encodes and adds items (one write: all or nothing). */
  add(items: ItemInput[], o: AddOptions = {}): Promise<{ added: number; replaced: number }> {
    return this.addAll(arrayStream(items), o);
  }

  /**
   * Encodes a stream of item batches, then writes them in one transaction: memory holds one batch of items at a
   * time plus the codes, and the writer lock is held only while rows are inserted, not while the model encodes.
   * What the source skipped and the folders it read are recorded in the manifest in the same transaction.
   */
  async addAll(stream: ItemStream, o: AddOptions = {}): Promise<{ added: number; replaced: number }> {
    const cd = this.manifest.codeDim;
    const dim = this.model.inputDim;
    this.checkKeys(stream.keys, o);
    const codes = new Float32Array(stream.total * cd);
    const errors = new Float32Array(stream.total);
    let n = 0;
    const bar = progress({ title: 'encode', total: stream.total, quiet: o.quiet });
    for await (const items of stream.batches()) {
      this.checkRaw(items);
      if (items.length === 0) continue;
      if (n + items.length > stream.total) throw fail('INTERNAL', `the source gave more items than the ${stream.total} it announced`);
      const scored = this.model.encodeScored(stackInputs(items, dim), items.length);
      codes.set(scored.codes, n * cd);
      errors.set(scored.errors, n);
      n += items.length;
      bar.update(n);
    }
    bar.stop();
    if (n !== stream.total) throw fail('INTERNAL', `the source gave ${n} items, not the ${stream.total} it announced`);
    // The source is read again for the rows (one batch at a time); a source that reads as it goes is read into
    // memory first, since the write below must not wait for files while it holds the lock.
    const again = stream.batches();
    const batches = Symbol.iterator in again ? again : await collect(again);
    return this.write(() => {
      // Checked again under the lock: another process may have added one of these keys since.
      this.checkKeys(stream.keys, o);
      let added = 0;
      let replaced = 0;
      let i = 0;
      // Files listed as skipped by an earlier build or add that are indexed now (fixed, or read differently).
      const listed = new Set(((this.#cat.readManifest()!.params.skipped as { files: SkippedFile[] } | undefined)?.files ?? []).map((f) => f.path));
      const indexed = new Set<string>();
      for (const items of batches) {
        const removeIds: number[] = [];
        const rows: NewItem[] = items.map((it) => {
          if (it.uri !== null && listed.has(it.uri)) indexed.add(it.uri);
          const id = this.#cat.idOf(it.key);
          if (id !== undefined) removeIds.push(id);
          const row = storedItem(it, codes.subarray(i * cd, (i + 1) * cd), errors[i]!, this.manifest.rawType, Boolean(this.binaryBits));
          i++;
          return row;
        });
        this.#cat.write(removeIds, rows);
        added += items.length - removeIds.length;
        replaced += removeIds.length;
      }
      if (stream.skipped?.length || stream.roots?.length || indexed.size) this.#cat.updateParams(ingestParams(this.#cat.readManifest()!.params, stream, indexed));
      return { added, replaced };
    });
  }

  /**
   * Bulk load of a version being built: each batch is encoded and committed as one write, so memory holds one batch
   * (not every code) and a killed build keeps every batch before the one in flight. The graph is saved every
   * `checkpointMs` and at the end; `from` items of the stream are stored already (a resumed build).
   */
  async ingest(stream: ItemStream, o: IngestOptions = {}): Promise<{ added: number }> {
    if (this.#published) throw fail('INTERNAL', `collection '${this.name}' is live; add to it with addAll`);
    const from = o.from ?? 0;
    this.checkKeys(from ? stream.keys.slice(from) : stream.keys, {});
    const bar = progress({ title: 'index', total: stream.total, quiet: o.quiet, start: from });
    bar.update(from);
    let n = from;
    let saved = performance.now();
    for await (const items of stream.batches(from)) {
      this.checkRaw(items);
      if (items.length === 0) continue;
      if (n + items.length > stream.total) throw fail('INTERNAL', `the source gave more items than the ${stream.total} it announced`);
      // the keys were checked up front, and a resume relies on the stored ones being the source's first
      items.forEach((it, j) => {
        if (it.key !== stream.keys[n + j]) throw fail('INTERNAL', `the source gave '${it.key}' where it announced '${stream.keys[n + j]}'; was it changed during the build?`);
      });
      const rows = encodeItems(this.model, items, this.manifest.rawType);
      await this.write(() => this.#cat.write([], rows), { persist: false });
      n += items.length;
      bar.update(n);
      crashPoint('ingest:after-batch');
      if (performance.now() - saved > (o.checkpointMs ?? CHECKPOINT_MS)) {
        this.persist();
        saved = performance.now();
      }
    }
    bar.stop();
    if (n !== stream.total) throw fail('INTERNAL', `the source gave ${n} items, not the ${stream.total} it announced`);
    if (stream.skipped?.length || stream.roots?.length) await this.write(() => this.#cat.updateParams(ingestParams(this.#cat.readManifest()!.params, stream, new Set())), { persist: false });
    this.persist();
    return { added: n - from };
  }

  /**
   * Stores rows encoded elsewhere (a copy of a collection held in a store): into a version being built they are
   * appended, into a live collection they are one write that first removes `removeKeys` and any item a row's key
   * replaces. Keys must be unique among the rows. `params` replace the manifest's (a copy's follow its store's, with
   * the `origin` it reaches).
   */
  async putRows(rows: readonly NewItem[], removeKeys: readonly string[] = [], o: { params?: Record<string, unknown> } = {}): Promise<void> {
    const cd = this.manifest.codeDim;
    for (const r of rows) {
      if (r.code.byteLength !== cd * 4) throw fail('INVALID_DIM', `item '${r.key}' has a ${r.code.byteLength / 4}-d code; collection '${this.name}' holds ${cd}-d codes`);
    }
    await this.write(
      () => {
        const ids = new Set<number>();
        for (const k of [...removeKeys, ...rows.map((r) => r.key)]) {
          const id = this.#cat.idOf(k);
          if (id !== undefined) ids.add(id);
        }
        this.#cat.write([...ids], [...rows]);
        if (o.params) this.#cat.updateParams({ ...o.params, ...(o.params.origin !== undefined ? { origin: originSchema.parse(o.params.origin) } : {}) });
      },
      { persist: this.#published },
    );
  }

  /** Every stored item as it was added, in the order it was added (what a copy of the collection stores). */
  storedItems(): IterableIterator<NewItem> {
    return this.#cat.allItems();
  }

  /**
   * How many items of a source a resumed build stored already: its first `count` keys, all of them, with the first
   * and last of them still holding what was stored (a file rewritten in place keeps its keys); else -1.
   */
  async storedPrefix(stream: ItemStream): Promise<number> {
    const n = this.#cat.count();
    if (n > stream.keys.length) return -1;
    for (let i = 0; i < n; i++) if (this.#cat.idOf(stream.keys[i]!) === undefined) return -1;
    for (const i of n ? [0, n - 1] : []) {
      const it = await itemAt(stream, i);
      const stored = it && this.#cat.byKey(it.key) ? this.#cat.raw(this.#cat.idOf(it.key)!) : undefined;
      if (!it || it.key !== stream.keys[i] || !stored?.equals(rawBuffer(it.raw, this.manifest.rawType))) return -1;
    }
    return n;
  }

  private checkRaw(items: ItemInput[]): void {
    for (const it of items) {
      const bad = rawMismatch(it.raw, this.manifest);
      if (bad) throw fail('INVALID_DIM', `item '${it.key}' has ${bad}`);
    }
  }

  /** Removes items by key (one write); an unknown key fails before any change. */
  remove(keys: string[]): Promise<number> {
    return this.write(() => {
      const ids = keys.map((k) => {
        const id = this.#cat.idOf(k);
        if (id === undefined) throw fail('ITEM_NOT_FOUND', `key '${k}' is not in collection '${this.name}'; nothing was removed`);
        return id;
      });
      this.#cat.write([...new Set(ids)], []);
      return new Set(ids).size;
    });
  }

  /** Folders this collection's items were read from (absolute): the only places originals are served from. */
  get sourceRoots(): string[] {
    return (this.manifest.params.roots as string[] | undefined) ?? [];
  }

  /** The stored preview of an item (WebP or PNG), null for texts; ITEM_NOT_FOUND for an unknown key. */
  preview(key: string): Buffer | null {
    const b = this.#cat.thumb(key);
    if (b === undefined) throw fail('ITEM_NOT_FOUND', `no item '${key}' in collection '${this.name}'`);
    return b;
  }

  /**
   * Nearest graph elements to a code (ids of live items; the caller skips any removed since its sync). With `only`,
   * the graph search itself skips ids it rejects (hnswlib's filter), so a selective filter still finds k.
   */
  search(code: ArrayLike<number>, k: number, ef?: number, only?: IdFilter): Neighbor[] {
    return this.#index.search(code, k, only ? Math.min(only.size, this.manifest.count) : this.manifest.count, ef, only && ((id) => only.has(id)));
  }

  /** Ids of the items a filter lets through, in increasing order; cached for the generation (the last 32 filters). */
  matching(f: ItemFilter): Int32Array {
    const name = `filter:${filterKey(f)}`;
    if (!this.#derived.has(name)) {
      const kept = [...this.#derived.keys()].filter((n) => n.startsWith('filter:'));
      for (const n of kept.slice(0, Math.max(0, kept.length - 31))) this.#derived.delete(n);
    }
    return this.derived(name, () => this.#cat.matchingIds(f));
  }

  /** The collection's labels (or groups) with their item counts, most frequent first. */
  valueCounts(column: 'label' | 'group', limit = 1000): { value: string; count: number }[] {
    return this.#cat.valueCounts(column === 'label' ? 'label' : 'grp', limit);
  }

  item(key: string): ItemRow {
    const r = this.#cat.byKey(key);
    if (!r) {
      const example = this.#cat.keyAt(0);
      throw fail('ITEM_NOT_FOUND', `no item '${key}' in collection '${this.name}'${example === undefined ? ' (it is empty)' : `; its keys look like '${example}'`}`);
    }
    return r;
  }

  /** The catalogue row of an id, undefined when another process removed it after this one's last sync. */
  rowOf(id: number): ItemRow | undefined {
    return this.#cat.byId(id);
  }

  /** A uniformly random item's key; ITEM_NOT_FOUND when the collection is empty. */
  randomKey(): string {
    for (let attempt = 0; attempt < 3; attempt++) {
      const n = this.#cat.count();
      if (n === 0) break;
      const key = this.#cat.keyAt(Math.floor(Math.random() * n));
      if (key !== undefined) return key;
    }
    throw fail('ITEM_NOT_FOUND', `collection '${this.name}' is empty`);
  }

  /** Metadata of every item in id order. */
  itemRows(): ItemRow[] {
    return this.#cat.allMeta();
  }

  codeOf(id: number): Float32Array {
    const b = this.#cat.code(id);
    if (!b) throw fail('ITEM_NOT_FOUND', `item ${id} was removed from '${this.name}'`);
    return f32(b);
  }

  rawOf(id: number): RawVector {
    const b = this.#cat.raw(id);
    if (!b) throw fail('ITEM_NOT_FOUND', `item ${id} was removed from '${this.name}'`);
    return this.manifest.rawType === 'sparse' ? this.decodeSparse(id, b) : decodeRaw(b, this.manifest.rawType);
  }

  private decodeSparse(id: number, b: Buffer): SparseVector {
    const v = decodeSparse(b, this.manifest.rawDim);
    if (!v) throw fail('CORRUPT_COLLECTION', `collection '${this.name}': the TF-IDF vector of item ${id} is damaged; rebuild the collection with --replace`);
    return v;
  }

  /** Whether two items share a group (a source document), i.e. whether evaluation can skip a query's own. */
  hasSharedGroups(): boolean {
    return this.#cat.hasSharedGroups();
  }

  /** The stored pixels of an image item (as the model's input was decoded). */
  pixelsOf(id: number): Pixels {
    const v = this.rawOf(id);
    if (isSparse(v)) throw fail('INVALID_ARGUMENT', `collection '${this.name}' holds text; its items have no pixels`);
    return v;
  }

  /**
   * A value computed from the items, cached until the next committed write (of any process). Without `apply`
   * it is recomputed after a write; with it, it is brought forward by the rows that write changed.
   */
  derived<T>(name: string, make: () => T, apply?: (value: T, removed: ReadonlySet<number>, added: RowSource[]) => void): T {
    const hit = this.#derived.get(name);
    if (hit && hit.gen === this.#gen) return hit.value as T;
    // Built on one snapshot at the generation it is stamped with, so the next write's delta applies exactly once.
    const value = this.#cat.snapshot(() => {
      this.catchUp();
      return make();
    });
    this.#derived.set(name, {
      gen: this.#gen,
      value,
      apply: apply && ((d, added) => apply(value, d.removed, added())),
    });
    return value;
  }

  /** Whether a derived value is cached for the current generation (asking computes nothing). */
  hasCurrent(name: string): boolean {
    return this.#derived.get(name)?.gen === this.#gen;
  }

  /**
   * One stored column of every item as a matrix in id order (bytes for pixels, floats for texts and codes, bytes
   * for packed bits), kept up to date by each write's rows. `transform` changes each row as it enters (e.g. normalise).
   */
  rows<A extends Uint8Array | Float32Array>(column: Column, transform?: { name: string; row: (row: A) => A }): { ids: Int32Array; data: A } {
    if (column === 'raw' && this.manifest.rawType === 'sparse') throw fail('INTERNAL', 'sparse raw vectors are read with sparseRows()');
    const map = transform?.row;
    const decode = (r: RowSource): A => {
      const buf = column === 'raw' ? r.raw : column === 'code' ? r.code : (r.bits ?? Buffer.alloc(0));
      const v = (column === 'bits' ? new Uint8Array(buf) : column === 'code' ? f32(buf) : decodeRaw(buf, this.manifest.rawType)) as A;
      return map ? map(v) : v;
    };
    const bytes = column === 'bits' || (column === 'raw' && this.manifest.rawType === 'u8');
    const dim = column === 'raw' ? this.manifest.rawDim : column === 'code' ? this.manifest.codeDim : Math.ceil((this.binaryBits ?? 0) / 8);
    const m = this.derived(
      `rows:${column}:${transform?.name ?? ''}`,
      () => {
        const mat = new RowMatrix<A>((bytes ? Uint8Array : Float32Array) as unknown as { new (n: number): A }, dim, this.#cat.count());
        const it = column === 'code' ? this.#cat.allCodes() : column === 'bits' ? this.#cat.allBits() : this.#cat.allRaw();
        for (const r of it as Iterable<{ id: number; raw?: Buffer; code?: Buffer; bits?: Buffer | null }>) {
          mat.append(r.id, decode({ id: r.id, raw: r.raw ?? Buffer.alloc(0), code: r.code ?? Buffer.alloc(0), bits: r.bits ?? null, recon: null }));
        }
        return mat;
      },
      (mat, removed, added) => {
        mat.remove(removed);
        for (const r of added) mat.append(r.id, decode(r));
      },
    );
    return m.view();
  }

  /**
   * Every item's reconstruction error, stored when it was added, in id order (NaN for an item added by a latentdex
   * that did not score items); kept up to date by each write's rows.
   */
  reconErrors(): { ids: Int32Array; data: Float32Array } {
    const m = this.derived(
      'rows:recon',
      () => {
        const mat = new RowMatrix(Float32Array, 1, this.#cat.count());
        for (const r of this.#cat.allRecon()) mat.append(r.id, Float32Array.of(r.recon ?? Number.NaN));
        return mat;
      },
      (mat, removed, added) => {
        mat.remove(removed);
        for (const r of added) mat.append(r.id, Float32Array.of(r.recon ?? Number.NaN));
      },
    );
    return m.view();
  }

  /** Groups (two or more ids, increasing) of items whose stored raw vectors are the same bytes; once per generation. */
  exactCopies(): number[][] {
    return this.derived('exact-copies', () => {
      const byDigest = new Map<string, number[]>();
      for (const r of this.#cat.allRaw()) {
        const d = crypto.createHash('sha256').update(r.raw).digest('base64');
        const g = byDigest.get(d);
        if (g) g.push(r.id);
        else byDigest.set(d, [r.id]);
      }
      return [...byDigest.values()].filter((g) => g.length > 1);
    });
  }

  /** Every item's sparse raw vector (TF-IDF) in id order, kept up to date by each write's rows. */
  sparseRows(): SparseRows {
    if (this.manifest.rawType !== 'sparse') throw fail('INTERNAL', `collection '${this.name}' stores dense raw vectors; read them with rawMatrix()`);
    return this.derived(
      'rows:raw:sparse',
      () => {
        const rows = new SparseRows(this.manifest.rawDim);
        for (const r of this.#cat.allRaw()) rows.append(r.id, this.decodeSparse(r.id, r.raw));
        return rows;
      },
      (rows, removed, added) => {
        rows.remove(removed);
        for (const r of added) rows.append(r.id, this.decodeSparse(r.id, r.raw));
      },
    );
  }

  /** Every item's dense raw vector in id order: bytes for pixel collections, floats otherwise. */
  rawMatrix(): { ids: Int32Array; data: Pixels } {
    return this.rows<Uint8Array | Float32Array>('raw');
  }

  /** Every item's code in id order. */
  codeMatrix(): { ids: Int32Array; data: Float32Array } {
    return this.rows<Float32Array>('code');
  }

  /** Every item's code scaled to unit length, in id order (cosine scans and re-ranking). */
  unitCodeMatrix(): { ids: Int32Array; data: Float32Array } {
    const cd = this.manifest.codeDim;
    return this.rows<Float32Array>('code', { name: 'unit', row: (r) => normaliseRows(r, cd) });
  }

  /**
   * Runs `fn` on one consistent state: caught up to a generation, with every catalogue read in `fn` seeing that
   * same generation (another process's commit waits for the next call). Item metadata, codes and raw vectors read
   * inside line up row for row.
   */
  consistent<T>(fn: () => T): T {
    return this.#cat.snapshot(() => {
      this.catchUp();
      return fn();
    });
  }

  /** Item metadata and codes in id order, row for row. */
  itemsWithCodes(): { rows: ItemRow[]; data: Float32Array } {
    return this.consistent(() => ({ rows: this.#cat.allMeta(), data: this.codeMatrix().data }));
  }

  /** Sizes on disk of the collection's files. */
  diskSizes(): Record<string, number> {
    const size = (p: string) => {
      try {
        const st = fs.statSync(p);
        if (!st.isDirectory()) return st.size;
        return fs.readdirSync(p, { recursive: true, withFileTypes: true }).reduce((s, e) => (e.isFile() ? s + fs.statSync(`${e.parentPath}/${e.name}`).size : s), 0);
      } catch {
        return 0;
      }
    };
    const graph = savedGraphs(this.paths.dir)[0];
    return {
      index: graph === undefined ? 0 : size(graphFile(this.paths.dir, graph)),
      catalogue: size(this.paths.catalogue) + size(`${this.paths.catalogue}-wal`),
      model: size(this.paths.model),
    };
  }

  /** Saves a graph that is ahead of its file (unless `save` is false: a replaced version), then closes catalogue and model. */
  close(o: { save?: boolean } = {}): void {
    if (this.#closed) return;
    if (this.#persistTimer) clearTimeout(this.#persistTimer);
    this.#persistTimer = undefined;
    if (o.save !== false) {
      try {
        this.persist();
      } catch (e) {
        log(`collection '${this.name}': saving the graph failed (${String(e)}); the next open replays the change log`, this.o.quiet);
      }
    }
    this.#closed = true;
    this.#derived.clear();
    this.#cat.close();
    if (this.#ownsModel) this.model.dispose();
  }
}
