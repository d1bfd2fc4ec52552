import fs from 'node:fs';
import { packBits } from '../encoder/binary.js';
import type { Pixels, SkippedFile } from '../../data/images.js';
import { TrainedModel } from '../encoder/model.js';
import { fail } from '../errors.js';
import { toBytes, toFloats } from '../../data/images.js';
import { log, progress } from '../progress.js';
import { Catalogue, COLLECTION_FORMAT_VERSION, type CollectionManifest, type ItemRow, type NewItem } from './catalogue.js';
import { HnswIndex, HNSW_DEFAULTS, type HnswParams, type Neighbor, type Space } from './hnsw.js';
import { collectionPaths, pathsIn, type CollectionPaths } from './paths.js';

/** An item to add: what the model takes, what the exact baseline compares, and what the catalogue shows. */
export interface ItemInput {
  key: string;
  label: string | null;
  uri: string | null;
  grp?: string | null;
  text?: string | null;
  /** the model's input vector (bytes are read as v/255) */
  input: Pixels;
  /** the vector the exact baseline compares (pixel bytes, TF-IDF) */
  raw: Pixels;
  /** what the page shows for the item: a colour preview (WebP/PNG); null for texts */
  thumb: Buffer | null;
}

/** Items to add in batches, so that a large source never sits in memory as items; with what its reader skipped. */
export interface ItemStream {
  total: number;
  /** every key the batches hold, checked before any item is encoded */
  keys: readonly string[];
  batches(): Iterable<ItemInput[]>;
  /** files of the source that could not be used, recorded in the manifest */
  skipped?: SkippedFile[];
  /** folders the items came from, recorded in the manifest (the only places originals may be served from) */
  roots?: string[];
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

function f32(buf: Buffer): Float32Array {
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function rawBuffer(v: Pixels, type: CollectionManifest['rawType']): Buffer {
  if (type === 'u8') return Buffer.from(toBytes(v));
  const f = toFloats(v);
  return Buffer.from(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
}

/** A stored raw vector as the baseline compares it: bytes for pixel collections, floats for texts. */
export function decodeRaw(buf: Buffer, type: CollectionManifest['rawType']): Pixels {
  return type === 'f32' ? f32(buf) : new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
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

function modelSummary(model: TrainedModel): Record<string, unknown> {
  const m = model.manifest;
  return { arch: m.architecture.arch, codeDim: m.codeDim, inputDim: m.inputDim, loss: m.loss, regularisers: m.regularisers, source: m.source, training: m.training };
}

/** A searchable collection: trained model + HNSW graph of codes + SQLite catalogue, checked against its manifest. */
export class Collection {
  private rawCache: { ids: Int32Array; data: Pixels } | undefined;

  private constructor(
    readonly paths: CollectionPaths,
    readonly model: TrainedModel,
    readonly catalogue: Catalogue,
    private index: HnswIndex,
    public manifest: CollectionManifest,
  ) {}

  get name(): string {
    return this.manifest.name;
  }
  get kind(): CollectionManifest['kind'] {
    return this.manifest.kind;
  }
  get count(): number {
    return this.manifest.count;
  }
  get binaryBits(): number | undefined {
    return this.model.manifest.regularisers.binaryBits;
  }

  /** Creates an empty collection in `dir`, whose `model/` subfolder already holds the saved model. */
  static create(dir: string, model: TrainedModel, o: CreateOptions): Collection {
    const paths = pathsIn(dir);
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
      hnswCount: 0,
      state: 'ready',
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
    index.save(paths.index);
    return new Collection(paths, model, catalogue, index, manifest);
  }

  /** Opens a collection, checking manifest, model and index against each other; recovers an interrupted write. */
  static async open(dataDir: string, name: string, o: { quiet?: boolean } = {}): Promise<Collection> {
    const paths = collectionPaths(dataDir, name);
    if (!fs.existsSync(paths.catalogue)) {
      throw fail('COLLECTION_NOT_FOUND', `collection '${name}' not found in ${dataDir}; run \`latentdex build --collection ${name} --source SRC\``);
    }
    const catalogue = new Catalogue(paths.catalogue);
    try {
      const manifest = catalogue.readManifest();
      if (!manifest) throw fail('CORRUPT_COLLECTION', `collection '${name}' has no manifest (its build never finished); rebuild it with \`latentdex build --collection ${name} --replace\``);
      if (manifest.formatVersion !== COLLECTION_FORMAT_VERSION) {
        throw fail('MANIFEST_MISMATCH', `collection '${name}' has format ${manifest.formatVersion}; this latentdex reads ${COLLECTION_FORMAT_VERSION}: rebuild it`);
      }
      const model = await TrainedModel.load(paths.model);
      if (model.codeDim !== manifest.codeDim) {
        model.dispose();
        throw fail('MANIFEST_MISMATCH', `collection '${name}' stores ${manifest.codeDim}-d codes but its model gives ${model.codeDim}-d codes; rebuild the collection`);
      }
      const rows = catalogue.count();
      let index: HnswIndex | undefined;
      let reason: string | undefined;
      if (manifest.state !== 'ready') reason = 'a write was interrupted';
      else if (rows !== manifest.count) reason = `catalogue holds ${rows} items, manifest says ${manifest.count}`;
      else if (!fs.existsSync(paths.index)) reason = 'the index file is missing';
      else {
        index = HnswIndex.load(paths.index, manifest.codeDim, manifest.space, manifest.hnsw.ef);
        if (index.size !== manifest.hnswCount) reason = `index holds ${index.size} elements, manifest says ${manifest.hnswCount}`;
      }
      const c = new Collection(paths, model, catalogue, index ?? HnswIndex.create(manifest.codeDim, manifest.space, 16, manifest.hnsw), manifest);
      if (reason) {
        log(`collection '${name}': ${reason}; rebuilding the HNSW graph from the catalogue's ${rows} codes`, o.quiet);
        c.rebuildIndex(o.quiet);
      }
      return c;
    } catch (e) {
      catalogue.close();
      throw e;
    }
  }

  /** Rebuilds the graph from the codes in the catalogue (the source of truth) and saves it. */
  rebuildIndex(quiet = true): void {
    const n = this.catalogue.count();
    const index = HnswIndex.create(this.manifest.codeDim, this.manifest.space, n + 16, this.manifest.hnsw);
    const bar = progress({ title: 'reindex', total: n, quiet });
    let i = 0;
    for (const r of this.catalogue.allCodes()) {
      index.add(f32(r.code), r.id);
      if (++i % 500 === 0) bar.update(i);
    }
    bar.update(i);
    bar.stop();
    index.save(this.paths.index);
    this.index = index;
    this.catalogue.setState('ready', n, index.size);
    this.refreshManifest();
  }

  private refreshManifest(): void {
    this.manifest = this.catalogue.readManifest()!;
    this.rawCache = undefined;
  }

  /**
   * The write protocol: mark the manifest 'writing', change catalogue (one transaction) and graph, save the graph
   * atomically, mark 'ready'. A crash in between leaves 'writing', which the next open repairs from the catalogue.
   */
  private commit(change: () => void, o: { atomic?: boolean } = {}): void {
    this.catalogue.setState('writing', this.manifest.count, this.manifest.hnswCount);
    let saved = false;
    try {
      change();
      this.index.save(this.paths.index);
      saved = true;
      this.catalogue.setState('ready', this.catalogue.count(), this.index.size);
    } catch (e) {
      if (o.atomic && !saved) {
        // The change was one catalogue transaction, rolled back: the graph file on disk still matches it.
        this.index = HnswIndex.load(this.paths.index, this.manifest.codeDim, this.manifest.space, this.manifest.hnsw.ef);
        this.catalogue.setState('ready', this.catalogue.count(), this.index.size);
        this.refreshManifest();
      } else this.rebuildIndex();
      throw e;
    }
    this.refreshManifest();
  }

  /** Encodes and adds items; the catalogue write is one transaction and the graph file is replaced atomically. */
  add(items: ItemInput[], o: AddOptions = {}): { added: number; replaced: number } {
    return this.addAll({ total: items.length, keys: items.map((it) => it.key), batches: () => [items] }, o);
  }

  /** Refuses repeated keys and (without `replace`) keys already stored, before any work is done. */
  private checkKeys(keys: readonly string[], o: AddOptions): void {
    const seen = new Set<string>();
    for (const key of keys) {
      if (seen.has(key)) throw fail('DUPLICATE_KEY', `key '${key}' appears twice in the input; keys must be unique`);
      seen.add(key);
      if (!o.replace && this.catalogue.idOf(key) !== undefined) throw fail('DUPLICATE_KEY', `key '${key}' is already in collection '${this.name}'; pass --replace to overwrite it`);
    }
  }

  /**
   * Encodes and adds a stream of item batches: memory holds one batch at a time, the catalogue takes all of them
   * in one transaction (all or nothing) and the graph file is replaced once at the end. What the source skipped
   * and the folders it read are recorded in the manifest in the same transaction.
   */
  addAll(stream: ItemStream, o: AddOptions = {}): { added: number; replaced: number } {
    const cd = this.manifest.codeDim;
    const dim = this.model.inputDim;
    const bits = this.binaryBits;
    this.checkKeys(stream.keys, o);
    let added = 0;
    let replaced = 0;
    const bar = progress({ title: 'encode+index', total: stream.total, quiet: o.quiet });
    this.commit(
      () =>
      this.catalogue.transaction(() => {
        this.index.reserve(stream.total);
        for (const items of stream.batches()) {
          const removeIds: number[] = [];
          for (const it of items) {
            if (it.raw.length !== this.manifest.rawDim) throw fail('INVALID_DIM', `item '${it.key}' has ${it.raw.length} values; this collection takes ${this.manifest.rawDim}`);
            const id = this.catalogue.idOf(it.key);
            if (id !== undefined) removeIds.push(id);
          }
          if (items.length === 0) continue;
          const codes = this.model.encode(stackInputs(items, dim), items.length);
          const rows: NewItem[] = items.map((it, i) => {
            const code = codes.subarray(i * cd, (i + 1) * cd);
            return {
              key: it.key,
              label: it.label,
              uri: it.uri,
              grp: it.grp ?? null,
              text: it.text ?? null,
              raw: rawBuffer(it.raw, this.manifest.rawType),
              thumb: it.thumb,
              code: Buffer.from(code.slice().buffer),
              bits: bits ? Buffer.from(packBits(code)) : null,
            };
          });
          const ids = this.catalogue.write(removeIds, rows);
          for (const id of removeIds) this.index.remove(id);
          ids.forEach((id, i) => this.index.add(codes.subarray(i * cd, (i + 1) * cd), id));
          added += items.length - removeIds.length;
          replaced += removeIds.length;
          bar.update(added + replaced);
        }
        if (stream.skipped?.length || stream.roots?.length) this.catalogue.updateParams(this.ingestParams(stream));
      }),
      { atomic: true },
    );
    bar.stop();
    return { added, replaced };
  }

  /** The manifest's params with a source's folders and skipped files added to what earlier builds and adds recorded. */
  private ingestParams(stream: ItemStream): Record<string, unknown> {
    const p = this.manifest.params;
    const roots = new Set([...((p.roots as string[] | undefined) ?? []), ...(stream.roots ?? [])]);
    const before = (p.skipped as { count: number; files: SkippedFile[] } | undefined) ?? { count: 0, files: [] };
    const files = [...before.files, ...(stream.skipped ?? [])].slice(0, MAX_SKIPPED_LISTED);
    return { ...p, roots: [...roots], skipped: { count: before.count + (stream.skipped?.length ?? 0), files } };
  }

  /** Folders this collection's items were read from (absolute): the only places originals are served from. */
  get sourceRoots(): string[] {
    return (this.manifest.params.roots as string[] | undefined) ?? [];
  }

  /** The stored preview of an item (WebP or PNG), null for texts; ITEM_NOT_FOUND for an unknown key. */
  preview(key: string): Buffer | null {
    const b = this.catalogue.thumb(key);
    if (b === undefined) throw fail('ITEM_NOT_FOUND', `no item '${key}' in collection '${this.name}'`);
    return b;
  }

  /** Removes items by key (catalogue row deleted, graph element marked deleted); unknown keys fail before any change. */
  remove(keys: string[]): number {
    const ids = keys.map((k) => {
      const id = this.catalogue.idOf(k);
      if (id === undefined) throw fail('ITEM_NOT_FOUND', `key '${k}' is not in collection '${this.name}'; nothing was removed`);
      return id;
    });
    if (ids.length === 0) return 0;
    this.commit(() => {
      this.catalogue.write(ids, []);
      for (const id of ids) this.index.remove(id);
    });
    return ids.length;
  }

  search(code: ArrayLike<number>, k: number, ef?: number): Neighbor[] {
    return this.index.search(code, k, this.manifest.count, ef);
  }

  item(key: string): ItemRow {
    const r = this.catalogue.byKey(key);
    if (!r) throw fail('ITEM_NOT_FOUND', `no item '${key}' in collection '${this.name}'`);
    return r;
  }

  itemById(id: number): ItemRow {
    const r = this.catalogue.byId(id);
    if (!r) throw fail('CORRUPT_COLLECTION', `graph element ${id} has no catalogue row in '${this.name}'; reopen to rebuild the index`);
    return r;
  }

  codeOf(id: number): Float32Array {
    return f32(this.catalogue.code(id)!);
  }

  rawOf(id: number): Pixels {
    return decodeRaw(this.catalogue.raw(id)!, this.manifest.rawType);
  }

  /** Every item's raw vector in rowid order (cached until the next write): bytes for pixels, floats for texts. */
  rawMatrix(): { ids: Int32Array; data: Pixels } {
    if (!this.rawCache) {
      const d = this.manifest.rawDim;
      if (this.manifest.rawType === 'u8') {
        const n = this.catalogue.count();
        const ids = new Int32Array(n);
        const data = new Uint8Array(n * d);
        let i = 0;
        for (const r of this.catalogue.allRaw()) {
          ids[i] = r.id;
          data.set(r.raw, i++ * d);
        }
        this.rawCache = { ids, data };
      } else this.rawCache = this.matrix(this.catalogue.allRaw(), d, (r) => f32(r.raw));
    }
    return this.rawCache;
  }

  /** Every item's code in rowid order. */
  codeMatrix(): { ids: Int32Array; data: Float32Array } {
    return this.matrix(this.catalogue.allCodes(), this.manifest.codeDim, (r) => f32(r.code));
  }

  private matrix<R extends { id: number }>(rows: Iterable<R>, d: number, vec: (r: R) => Float32Array): { ids: Int32Array; data: Float32Array } {
    const n = this.catalogue.count();
    const ids = new Int32Array(n);
    const data = new Float32Array(n * d);
    let i = 0;
    for (const r of rows) {
      ids[i] = r.id;
      data.set(vec(r), i * d);
      i++;
    }
    return { ids, data };
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
    return {
      index: size(this.paths.index),
      catalogue: size(this.paths.catalogue) + size(`${this.paths.catalogue}-wal`),
      model: size(this.paths.model),
    };
  }

  close(): void {
    this.catalogue.close();
    this.model.dispose();
  }
}
