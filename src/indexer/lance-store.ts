import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type * as Lance from '@lancedb/lancedb';
import type * as Arrow from 'apache-arrow';
import { pausePoint } from '../crash.js';
import { fail, isLatentdexError, messageOf } from '../errors.js';
import { progress } from '../progress.js';
import type { CollectionManifest, NewItem } from './catalogue.js';
import type { Collection } from './collection.js';
import { probeConditionalWrites } from './conditional-writes.js';
import { validateName } from './paths.js';
import { refuseKeys } from './key-check.js';
import { storeLabel, type StoreSpec } from './store-spec.js';

/** The table listing the collections of a store: one row each, the only row a write changes in place. */
const HEADS = 'latentdex.collections';
/** How long connecting (listing the store's collections) may take before the store counts as unreachable. */
const CONNECT_DEADLINE_MS = 15_000;
/** Rows written per LanceDB append (one dataset version each). */
const WRITE_BATCH = 8192;
/** Keys per `key IN (...)` condition. */
const KEYS_PER_QUERY = 512;
/** A writer's lease: another writer may take the collection over once it ran out (a writer that died). */
const LEASE_MS = 60_000;
/** A live writer renews its lease this often, so a long write keeps it and a dead one loses it within LEASE_MS. */
const RENEW_MS = 10_000;
/** A writer changes nothing once less than this is left of its lease (its renewals failed): it stops well before another can take over. */
const LEASE_MARGIN_MS = 2 * RENEW_MS;
/** Another process's lease counts as held this long past its end (the clocks of two machines differ). */
const CLOCK_GRACE_MS = 10_000;
/** Writes between compactions of a collection's tables (LanceDB suggests one every ~20 changes). */
export const COMPACT_EVERY = 20;
/** Old table versions stay readable this long (a replica still copying one), then compaction prunes them. */
const KEEP_VERSIONS_MS = 60 * 60_000;
/** Collections of at least this many items get an ANN index (IVF_PQ); smaller ones are scanned exactly. */
export const ANN_MIN_ROWS = 50_000;

const manifestSchema = z.object({
  name: z.string(),
  kind: z.enum(['image', 'text']),
  formatVersion: z.number().int(),
  codeDim: z.number().int().positive(),
  space: z.enum(['l2', 'cosine']),
  hnsw: z.object({ M: z.number().int(), efConstruction: z.number().int(), ef: z.number().int(), seed: z.number().int() }),
  count: z.number().int().nonnegative(),
  generation: z.number().int(),
  rawDim: z.number().int().nonnegative(),
  rawType: z.enum(['u8', 'f32', 'sparse']),
  model: z.record(z.unknown()),
  params: z.record(z.unknown()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const headSchema = z.object({
  name: z.string(),
  build: z.string(),
  seq: z.number().int(),
  manifest: z.string(),
  items_version: z.number().int(),
  log_version: z.number().int(),
  model_version: z.number().int(),
  lease_holder: z.string(),
  lease_until: z.number(),
});
type HeadRow = z.infer<typeof headSchema>;

/** A collection as the store last committed it: which build, how many writes since, and the table versions. */
export interface Head {
  name: string;
  /** changes when the collection is built again (a replica copies it afresh) */
  build: string;
  /** committed writes since the build; -1 while the first build is being written */
  seq: number;
  manifest: CollectionManifest;
  itemsVersion: number;
  logVersion: number;
  modelVersion: number;
}

/** One committed change of a collection: a key added (or replaced) or removed, by the write numbered `seq`. */
export interface LogEntry {
  seq: number;
  op: 'add' | 'remove';
  key: string;
}

/** A collection's lease as one write of this process holds it, renewed every RENEW_MS until it commits or ends. */
interface Lease {
  /** the committed head row, with this lease in it */
  row: HeadRow;
  until: number;
  holder: string;
  timer: NodeJS.Timeout | undefined;
  /** the renewal in flight (commit and release wait for it) */
  renewing: Promise<void>;
  /** another writer took the collection over (a renewal found the lease gone), or this process was interrupted */
  lost: boolean;
}

export interface WriteOptions {
  /** replace stored items of the same keys instead of DUPLICATE_KEY */
  replace?: boolean;
  /** how long to wait for another writer before COLLECTION_BUSY (default 10 minutes) */
  timeoutMs?: number;
  /** the build the rows were encoded for: COLLECTION_REPLACED if the collection was built again since */
  build?: string;
  /** told once when another writer holds the collection and this write waits */
  onWait?: (holder: string) => void;
  /** the manifest's params after this write, from those of the last commit (an add's folders and skipped files) */
  params?: (params: Record<string, unknown>) => Record<string, unknown>;
}

/** What a store copies in as a collection's build: its manifest, its model's folder, and its items in order. */
export interface Publishable {
  manifest: CollectionManifest;
  modelDir: string;
  items(): Iterable<NewItem>;
}

/** A local collection as a store copies it. */
export function publishable(c: Collection): Publishable {
  return { manifest: c.manifest, modelDir: c.paths.model, items: () => c.storedItems() };
}

export interface PublishOptions {
  /** rebuild a collection the store holds */
  replace?: boolean;
  quiet?: boolean;
  /** told once when another writer holds the collection and this build waits */
  onWait?: (holder: string) => void;
}

export interface ValueCount {
  value: string;
  count: number;
}

export interface AnnHit {
  key: string;
  label: string | null;
  distance: number;
}

/** k-NN queries of one committed build's items. */
export type Searcher = (code: ArrayLike<number>, k: number, o?: AnnOptions) => Promise<AnnHit[]>;

export interface AnnOptions {
  /** only items with one of these labels */
  labels?: readonly string[];
  /** IVF partitions probed (default 20) */
  nprobes?: number;
  /** candidates re-ranked on the full codes, as a multiple of k (default 10) */
  refineFactor?: number;
  /** scan every code instead of the index (exact) */
  exact?: boolean;
}

function headOf(r: HeadRow): Head {
  let manifest: CollectionManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(r.manifest));
  } catch (e) {
    throw fail('CORRUPT_COLLECTION', `the store's entry of collection '${r.name}' has a manifest latentdex cannot read (${messageOf(e).slice(0, 200)}); build it again with --replace`, e);
  }
  return { name: r.name, build: r.build, seq: r.seq, manifest, itemsVersion: r.items_version, logVersion: r.log_version, modelVersion: r.model_version };
}

/** A string literal of LanceDB's SQL filters. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function keysIn(keys: readonly string[]): string {
  return `key IN (${keys.map(sqlString).join(', ')})`;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** What went wrong in a LanceDB error, in a few words (its messages carry the object store's XML and a Rust trace). */
function shortError(e: unknown): string {
  const m = messageOf(e);
  const code = /<Code>([A-Za-z]+)<\/Code>/.exec(m)?.[1];
  if (code === 'NoSuchBucket') return 'the bucket does not exist';
  if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'AccessDenied') return `the object store refused the credentials (${code})`;
  if (code) return `the object store answered ${code}`;
  const status = /Status \{ status: (\d+)/.exec(m)?.[1];
  if (status) return `the endpoint answered HTTP ${status} (is it an S3-compatible server?)`;
  if (/error sending request|connection refused|dns error|timed out|RetryError|does not answer/i.test(m)) return 'the endpoint does not answer';
  if (/Failed to get AWS credentials/.test(m)) return 'no AWS credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)';
  if (/NotADirectory/.test(m)) return 'the path is a file, not a folder';
  if (/PermissionDenied/.test(m)) return 'permission denied';
  const first = m.split('\n')[0]!.replace(/,? ?location: Location.*$/, '').replace(/\s+Caused by:.*$/, '');
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}

type LanceModule = typeof Lance;
type ArrowModule = typeof Arrow;

async function loadLance(): Promise<{ lancedb: LanceModule; arrow: ArrowModule }> {
  // LanceDB logs warnings to stderr from Rust (a table created, a request retried); latentdex reports its own errors.
  process.env.LANCEDB_LOG ??= 'error';
  const [lancedb, arrow] = await Promise.all([import('@lancedb/lancedb'), import('apache-arrow')]);
  return { lancedb, arrow };
}

/**
 * A store of collections on LanceDB (a folder or an S3 prefix): per collection a table of items (codes, packed bits,
 * raw vectors, previews), a change log and the model's files, and one row in `latentdex.collections` naming the
 * table versions the last committed write left. Readers read those versions, so a write being made is never seen
 * half done; a write holds the collection's lease (a conditional update of that row), so there is one writer at a
 * time, and undoes what a writer that died left past the committed versions.
 */
export class LanceStore {
  readonly #db: Lance.Connection;
  readonly #lance: LanceModule;
  readonly #arrow: ArrowModule;
  /** who this process is; each lease it takes adds a token of its own, so two writes of one process exclude each other */
  readonly #process = `${os.hostname()}:${process.pid}`;
  /** writes of this process, one after another per collection (the lease excludes other processes) */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** the leases this process holds now (released by `abandon` when it is interrupted) */
  readonly #leases = new Set<Lease>();
  /** whether the object store keeps two writers apart, asked once before this process's first write */
  #writable: Promise<void> | undefined;

  private constructor(
    readonly spec: StoreSpec,
    db: Lance.Connection,
    mods: { lancedb: LanceModule; arrow: ArrowModule },
  ) {
    this.#db = db;
    this.#lance = mods.lancedb;
    this.#arrow = mods.arrow;
  }

  /**
   * Connects and reads the list of collections once, so a wrong endpoint or bucket is an error here. A folder store
   * that does not exist is NOT_FOUND unless `create` (a build): reading never creates one.
   */
  static async connect(spec: StoreSpec, o: { create?: boolean } = {}): Promise<LanceStore> {
    if (!o.create && !spec.uri.startsWith('s3://') && !fsSync.existsSync(spec.uri)) {
      throw fail('NOT_FOUND', `there is no store at ${storeLabel(spec)}: the folder does not exist; check the path, or create the store with \`latentdex build --store lancedb:${spec.uri} --collection NAME --source ...\``);
    }
    const mods = await loadLance();
    // an endpoint that takes connections but never answers would keep the client retrying for minutes
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unreachable(spec, new Error(`the endpoint does not answer (nothing within ${CONNECT_DEADLINE_MS / 1000} s)`))), CONNECT_DEADLINE_MS);
    });
    const open = async () => {
      let db: Lance.Connection;
      try {
        db = await mods.lancedb.connect(spec.uri, { storageOptions: spec.storageOptions, readConsistencyInterval: 0 });
      } catch (e) {
        throw unreachable(spec, e);
      }
      const store = new LanceStore(spec, db, mods);
      try {
        await store.findHeadsTable();
      } catch (e) {
        store.close();
        throw e;
      }
      return store;
    };
    const opening = open();
    try {
      return await Promise.race([opening, silent]);
    } catch (e) {
      // a connection that comes after the deadline is closed, not leaked
      opening.then((s) => s.close(), () => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  get label(): string {
    return storeLabel(this.spec);
  }

  /** Every collection the store holds, as last committed (one being built for the first time is left out). */
  async list(): Promise<Head[]> {
    return (await this.headRows()).filter((r) => r.seq >= 0).map(headOf);
  }

  /** A collection as last committed, or COLLECTION_NOT_FOUND saying how to build it there. */
  async requireHead(name: string): Promise<Head> {
    const h = await this.head(name);
    if (!h) throw this.notFound(name);
    return h;
  }

  /** COLLECTION_EXISTS for a build of a name the store holds, saying what to do instead. */
  exists(name: string): Error {
    return fail('COLLECTION_EXISTS', `collection '${name}' already exists in ${this.label}; pass --replace to rebuild it or use \`latentdex add --store\``);
  }

  private notFound(name: string): Error {
    return fail('COLLECTION_NOT_FOUND', `collection '${name}' is not in ${this.label}; build it there with \`latentdex build --store lancedb:${this.spec.uri} --collection ${name} --source ...\``);
  }

  /** Runs one write of a collection after this process's earlier ones. */
  private queued<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(name) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#queues.set(name, tail);
    void tail.then(() => {
      if (this.#queues.get(name) === tail) this.#queues.delete(name);
    });
    return run;
  }

  /** A collection as last committed; undefined when the store does not hold it. */
  async head(name: string): Promise<Head | undefined> {
    return (await this.list()).find((h) => h.name === name);
  }

  /** Copies a collection (model, items, codes, previews) into the store as its new build. */
  async publish(c: Publishable, o: PublishOptions = {}): Promise<Head> {
    const name = c.manifest.name;
    return this.queued(name, () => this.publishLocked(c, name, o));
  }

  private async publishLocked(c: Publishable, name: string, o: PublishOptions): Promise<Head> {
    let lease: Lease | undefined;
    try {
      lease = await this.takeLease(name, { create: true, replace: o.replace, onWait: o.onWait });
      const cd = c.manifest.codeDim;
      this.holding(lease);
      const model = await this.overwrite(`${name}.model`, await modelRows(c.modelDir), this.modelSchema());
      // a new version of the table, of this build's schema (a rebuild may change the code size); readers of the
      // last committed build still read its version
      this.holding(lease);
      const items = await this.#db.createEmptyTable(`${name}.items`, this.itemSchema(cd), { mode: 'overwrite' });
      const bar = progress({ title: 'upload', total: c.manifest.count, quiet: o.quiet });
      let batch: NewItem[] = [];
      let n = 0;
      const flush = async () => {
        this.holding(lease!);
        await this.append(items, batch, cd);
        n += batch.length;
        batch = [];
        bar.update(n);
      };
      for (const it of c.items()) {
        batch.push(it);
        if (batch.length === WRITE_BATCH) await flush();
      }
      if (batch.length) await flush();
      bar.stop();
      if (n !== c.manifest.count) throw fail('INTERNAL', `collection '${name}' gave ${n} items, not the ${c.manifest.count} of its manifest`);
      await this.index(items, n, c.manifest.space, () => this.holding(lease!));
      this.holding(lease);
      const log = await this.overwrite(`${name}.log`, [], this.logSchema());
      const head: HeadRow = {
        name,
        build: crypto.randomUUID(),
        seq: 0,
        manifest: JSON.stringify(c.manifest),
        items_version: await items.version(),
        log_version: await log.version(),
        model_version: await model.version(),
        lease_holder: '',
        lease_until: 0,
      };
      await this.commit(lease, head);
      return headOf(head);
    } catch (e) {
      if (lease) await this.releaseLease(lease);
      throw storeFailed(this.spec, e, `copying '${name}' into`);
    }
  }

  /**
   * One write: removes `removeKeys` (each must be stored) and adds `rows` (a stored key is DUPLICATE_KEY unless
   * `replace`), then commits both as the collection's next change. Waits up to `timeoutMs` for another writer.
   */
  async write(name: string, rows: readonly NewItem[], removeKeys: readonly string[], o: WriteOptions = {}): Promise<{ added: number; replaced: number; removed: number; head: Head }> {
    return this.queued(name, () => this.writeLocked(name, rows, removeKeys, o));
  }

  private async writeLocked(name: string, rows: readonly NewItem[], removeKeys: readonly string[], o: WriteOptions): Promise<{ added: number; replaced: number; removed: number; head: Head }> {
    let lease: Lease | undefined;
    try {
      lease = await this.takeLease(name, { timeoutMs: o.timeoutMs, onWait: o.onWait });
      const head = headOf(lease.row);
      if (o.build !== undefined && head.build !== o.build) throw fail('COLLECTION_REPLACED', `collection '${name}' was built again while these items were encoded with its old model; run the write again`);
      const cd = head.manifest.codeDim;
      for (const r of rows) {
        if (r.code.byteLength !== cd * 4) throw fail('INVALID_DIM', `item '${r.key}' has a ${r.code.byteLength / 4}-d code; collection '${name}' holds ${cd}-d codes`);
      }
      const items = await this.#db.openTable(`${name}.items`);
      const log = await this.#db.openTable(`${name}.log`);
      const stored = await this.storedKeys(items, [...rows.map((r) => r.key), ...removeKeys]);
      const missing = removeKeys.find((k) => !stored.has(k));
      if (missing !== undefined) throw fail('ITEM_NOT_FOUND', `key '${missing}' is not in collection '${name}'; nothing was removed`);
      refuseKeys(rows.map((r) => r.key), { collection: name, stored: (k) => stored.has(k), replace: o.replace });
      const gone = [...new Set([...removeKeys, ...rows.map((r) => r.key).filter((k) => stored.has(k))])];
      for (const part of chunks(gone, KEYS_PER_QUERY)) {
        this.holding(lease);
        await items.delete(keysIn(part));
      }
      for (const part of chunks(rows, WRITE_BATCH)) {
        this.holding(lease);
        await this.append(items, part, cd);
      }
      const seq = head.seq + 1;
      const entries = [...removeKeys.map((key) => ({ seq, op: 'remove', key })), ...rows.map((r) => ({ seq, op: 'add', key: r.key }))];
      this.holding(lease);
      if (entries.length) await log.add(this.#lance.makeArrowTable(entries, { schema: this.logSchema() }));
      const removed = new Set(removeKeys).size;
      const replaced = rows.filter((r) => stored.has(r.key)).length;
      const manifest: CollectionManifest = { ...head.manifest, params: o.params ? o.params(head.manifest.params) : head.manifest.params, count: head.manifest.count - removed + rows.length - replaced, generation: head.manifest.generation + 1, updatedAt: new Date().toISOString() };
      if (seq % COMPACT_EVERY === 0) {
        // a collection that grew past ANN_MIN_ROWS by adds gets its ANN index now
        if (manifest.count >= ANN_MIN_ROWS && !(await items.listIndices()).some((i) => i.columns.includes('vector'))) await this.annIndex(items, manifest.count, manifest.space, () => this.holding(lease!));
        this.holding(lease);
        await this.compact(items, head.itemsVersion);
        this.holding(lease);
        await this.compact(log, head.logVersion);
      }
      const next: HeadRow = { ...lease.row, seq, manifest: JSON.stringify(manifest), items_version: await items.version(), log_version: await log.version(), lease_holder: '', lease_until: 0 };
      await pausePoint('store:before-commit');
      await this.commit(lease, next);
      return { added: rows.length - replaced, replaced, removed, head: headOf(next) };
    } catch (e) {
      if (lease) await this.releaseLease(lease);
      throw storeFailed(this.spec, e, `writing to '${name}' in`);
    }
  }

  /** Writes the model of a committed build into `dir` (a folder TrainedModel.load reads). */
  async readModel(head: Head, dir: string): Promise<void> {
    const t = await this.tableAt(`${head.name}.model`, head.modelVersion);
    const rows = (await t.query().toArray()) as { file: string; data: Uint8Array }[];
    for (const r of rows) {
      const rel = path.posix.normalize(r.file);
      if (rel.startsWith('..') || path.posix.isAbsolute(rel)) throw fail('CORRUPT_COLLECTION', `the store's model of '${head.name}' names a file outside its folder ('${r.file}'); build it again with --replace`);
      const file = path.join(dir, ...rel.split('/'));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, r.data);
    }
  }

  /** The items of a committed build (all, or those with the given keys), in batches. */
  async *rows(head: Head, o: { keys?: readonly string[] } = {}): AsyncGenerator<NewItem[]> {
    const t = await this.tableAt(`${head.name}.items`, head.itemsVersion);
    const queries = o.keys ? chunks(o.keys, KEYS_PER_QUERY).map((k) => t.query().where(keysIn(k))) : [t.query()];
    for (const q of queries) {
      const it = q[Symbol.asyncIterator]();
      for (;;) {
        let r: IteratorResult<unknown>;
        try {
          r = await it.next();
        } catch (e) {
          throw fail('STORE_UNREACHABLE', `reading '${head.name}' from the store ${this.label} failed: ${shortError(e)}`, e);
        }
        if (r.done) break;
        yield itemsOf(r.value as Arrow.RecordBatch);
      }
    }
  }

  /** The key of the item at `offset` of a committed build (for a random item: a random offset). */
  async keyAt(head: Head, offset: number): Promise<string | undefined> {
    const t = await this.tableAt(`${head.name}.items`, head.itemsVersion);
    const rows = (await t.query().select(['key']).offset(offset).limit(1).toArray()) as { key: string }[];
    return rows[0]?.key;
  }

  /** How many items of a committed build carry each label and group, most frequent first. */
  async valueCounts(head: Head): Promise<{ labels: ValueCount[]; groups: ValueCount[] }> {
    const t = await this.tableAt(`${head.name}.items`, head.itemsVersion);
    const labels = new Map<string, number>();
    const groups = new Map<string, number>();
    for await (const b of t.query().select(['label', 'grp'])) {
      const batch = b as Arrow.RecordBatch;
      const [l, g] = [batch.getChild('label'), batch.getChild('grp')];
      for (let i = 0; i < batch.numRows; i++) {
        const lv = l?.get(i) as string | null;
        const gv = g?.get(i) as string | null;
        if (lv !== null && lv !== undefined) labels.set(lv, (labels.get(lv) ?? 0) + 1);
        if (gv !== null && gv !== undefined) groups.set(gv, (groups.get(gv) ?? 0) + 1);
      }
    }
    const sorted = (m: Map<string, number>) => [...m].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count || a.value.localeCompare(b.value));
    return { labels: sorted(labels), groups: sorted(groups) };
  }

  /** The changes committed after write `since`, up to the head, in order. */
  async changes(head: Head, since: number): Promise<LogEntry[]> {
    const t = await this.tableAt(`${head.name}.log`, head.logVersion);
    const rows = (await t.query().where(`seq > ${since}`).toArray()) as { seq: number; op: string; key: string }[];
    return rows.map((r): LogEntry => ({ seq: Number(r.seq), op: r.op === 'remove' ? 'remove' : 'add', key: r.key })).sort((a, b) => a.seq - b.seq);
  }

  /** The k nearest items of a code by the store's own index (IVF_PQ with re-ranking; an exact scan below ANN_MIN_ROWS). */
  async search(head: Head, code: ArrayLike<number>, k: number, o: AnnOptions = {}): Promise<AnnHit[]> {
    const t = await this.tableAt(`${head.name}.items`, head.itemsVersion);
    return this.searchTable(t, head, code, k, o);
  }

  /** A reader of one committed build's items for many searches (bench, replicas serving beyond memory). */
  async searcher(head: Head): Promise<Searcher> {
    const t = await this.tableAt(`${head.name}.items`, head.itemsVersion);
    return (code, k, o = {}) => this.searchTable(t, head, code, k, o);
  }

  private async searchTable(t: Lance.Table, head: Head, code: ArrayLike<number>, k: number, o: AnnOptions): Promise<AnnHit[]> {
    let q = t
      .vectorSearch(Array.from(code))
      .distanceType(head.manifest.space === 'cosine' ? 'cosine' : 'l2')
      .limit(k)
      .nprobes(o.nprobes ?? 20)
      .refineFactor(o.refineFactor ?? 10)
      .select(['key', 'label']);
    if (o.labels?.length) q = q.where(`label IN (${o.labels.map(sqlString).join(', ')})`);
    if (o.exact) q = q.bypassVectorIndex();
    let rows: { key: string; label: string | null; _distance: number }[];
    try {
      rows = (await q.toArray()) as typeof rows;
      // the index probes the partitions nearest the query, and a rare label may have fewer than k items in them:
      // then the items of those labels are scanned exactly (through the label index), which finds every one
      if (o.labels?.length && !o.exact && rows.length < k) rows = (await q.bypassVectorIndex().toArray()) as typeof rows;
    } catch (e) {
      throw fail('STORE_UNREACHABLE', `searching '${head.name}' in the store ${this.label} failed: ${shortError(e)}`, e);
    }
    // LanceDB's l2 is squared; latentdex reports the Euclidean distance, as its local search does
    const l2 = head.manifest.space !== 'cosine';
    return rows.map((r) => ({ key: r.key, label: r.label, distance: l2 ? Math.sqrt(Math.max(0, r._distance)) : r._distance }));
  }

  close(): void {
    this.#db.close();
  }

  private async tableAt(name: string, version: number): Promise<Lance.Table> {
    try {
      const t = await this.#db.openTable(name);
      await t.checkout(version);
      return t;
    } catch (e) {
      throw fail('STORE_UNREACHABLE', `cannot read table '${name}' (version ${version}) of the store ${this.label}: ${shortError(e)}`, e);
    }
  }

  /** The table of collections; undefined while nothing was ever written to the store (reading creates nothing). */
  private async findHeadsTable(): Promise<Lance.Table | undefined> {
    try {
      return await this.#db.openTable(HEADS);
    } catch (e) {
      if (!/not found/i.test(messageOf(e))) throw unreachable(this.spec, e);
      return undefined;
    }
  }

  /** The table of collections, created (with the store's folder) by the first write. */
  private async headsTable(): Promise<Lance.Table> {
    const found = await this.findHeadsTable();
    if (found) return found;
    try {
      if (!this.spec.uri.startsWith('s3://')) await fs.mkdir(this.spec.uri, { recursive: true });
      return await this.#db.createEmptyTable(HEADS, this.headSchema(), { existOk: true });
    } catch (e) {
      throw unreachable(this.spec, e);
    }
  }

  private async headRows(name?: string): Promise<HeadRow[]> {
    const t = await this.findHeadsTable();
    if (!t) return [];
    try {
      const q = name === undefined ? t.query() : t.query().where(`name = ${sqlString(name)}`);
      const rows = (await q.toArray()) as Record<string, unknown>[];
      return rows.map((r) => {
        const p = headSchema.safeParse({ ...r, seq: Number(r.seq), items_version: Number(r.items_version), log_version: Number(r.log_version), model_version: Number(r.model_version), lease_until: Number(r.lease_until) });
        if (!p.success) throw fail('CORRUPT_COLLECTION', `the store's table '${HEADS}' has a row latentdex cannot read (${p.error.issues[0]?.message}); was it written by another program?`);
        return p.data;
      });
    } catch (e) {
      if (isLatentdexError(e)) throw e;
      throw unreachable(this.spec, e);
    }
  }

  /**
   * Takes a collection's lease: a conditional update of its row that succeeds only if nobody else holds a live
   * lease and no write committed since the row was read. Undoes what a writer that died left in the tables.
   */
  private async takeLease(name: string, o: { create?: boolean; replace?: boolean; timeoutMs?: number; onWait?: (holder: string) => void }): Promise<Lease> {
    validateName(name);
    const holder = `${this.#process}:${crypto.randomUUID().slice(0, 8)}`;
    let told = false;
    const deadline = Date.now() + (o.timeoutMs ?? 10 * 60_000);
    for (;;) {
      const now = Date.now();
      // two first builds racing may both insert a row: the committed one counts, else the first
      const found = await this.headRows(name);
      const row = found.find((r) => r.seq >= 0) ?? found[0];
      if (!row && !o.create) throw this.notFound(name);
      if (row && row.seq >= 0 && o.create && !o.replace) throw this.exists(name);
      const held = row && row.lease_holder !== '' && row.lease_until + CLOCK_GRACE_MS > now;
      if (held) {
        if (now > deadline) throw fail('COLLECTION_BUSY', `collection '${name}' in ${this.label} is being written by ${row.lease_holder}; try again when that write is done (a writer that died holds it at most ${(LEASE_MS + CLOCK_GRACE_MS) / 1000} s)`);
        if (!told) o.onWait?.(row.lease_holder);
        told = true;
        await sleep(250);
        continue;
      }
      const until = now + LEASE_MS;
      const mine: HeadRow = row
        ? { ...row, lease_holder: holder, lease_until: until }
        : { name, build: '', seq: -1, manifest: '{}', items_version: 0, log_version: 0, model_version: 0, lease_holder: holder, lease_until: until };
      const cond = row ? `target.seq = ${row.seq} AND target.lease_holder = ${sqlString(row.lease_holder)} AND target.lease_until = ${row.lease_until}` : undefined;
      await this.checkWritable();
      const r = await this.upsert(await this.headsTable(), mine, cond).catch((e: unknown) => {
        if (isConflict(e)) return 0;
        throw e;
      });
      if (r === 0) {
        // another writer took it between the read and the update: wait a little and read again
        await sleep(50 + Math.random() * 100);
        continue;
      }
      const lease: Lease = { row: mine, until, holder, timer: undefined, renewing: Promise.resolve(), lost: false };
      this.#leases.add(lease);
      lease.timer = setInterval(() => {
        lease.renewing = lease.renewing.then(() => this.renew(lease));
      }, RENEW_MS);
      lease.timer.unref();
      try {
        if (row && row.seq >= 0) await this.undoUncommitted(headOf(row));
      } catch (e) {
        await this.releaseLease(lease);
        throw e;
      }
      return lease;
    }
  }

  /** Refuses writes to an object store that ignores conditional writes (two writers' commits would overwrite each other). */
  checkWritable(): Promise<void> {
    this.#writable ??= probeConditionalWrites(this.spec).then(
      (w) => {
        if (w === 'ignored' && !this.spec.singleWriter) {
          throw fail(
            'STORE_UNSAFE',
            `the object store of ${this.label} ignores conditional writes (PUT If-None-Match), so two writers could overwrite each other's commits and lose items; latentdex only reads it. Use an object store that enforces them (AWS S3, MinIO, Cloudflare R2, Ceph), or set LATENTDEX_STORE_SINGLE_WRITER=1 if only one process ever writes`,
          );
        }
      },
      (e: unknown) => {
        this.#writable = undefined;
        throw e;
      },
    );
    return this.#writable;
  }

  /** Moves a held lease's end forward; marks it lost when another writer has taken the collection over. */
  private async renew(lease: Lease): Promise<void> {
    if (lease.lost) return;
    try {
      const until = Date.now() + LEASE_MS;
      const next = { ...lease.row, lease_until: until };
      if ((await this.upsertHead(next, leaseCond(lease))) === 0) lease.lost = true;
      else {
        lease.until = until;
        lease.row = next;
      }
    } catch {
      // the store did not answer: the next renewal tries again, and the commit checks the lease
    }
  }

  /** Stops renewing a lease (after the renewal in flight). */
  private async stopRenewing(lease: Lease): Promise<void> {
    clearInterval(lease.timer);
    await lease.renewing;
  }

  /** Throws unless the write still safely holds its lease: checked before every change to a table. */
  private holding(lease: Lease): void {
    if (lease.lost || Date.now() > lease.until - LEASE_MARGIN_MS) {
      throw fail('COLLECTION_BUSY', `the write to '${lease.row.name}' lost its lease (interrupted, or the store did not answer its renewals); nothing was committed, run it again`);
    }
  }

  /**
   * Gives up the leases this process holds, for a process interrupted mid-write: its writes change nothing more and
   * stay uncommitted (a commit already on its way lands or not, as the store decides). Waits at most `ms`; returns
   * how many writes were given up.
   */
  async abandon(ms = 5000): Promise<number> {
    const leases = [...this.#leases];
    for (const l of leases) l.lost = true;
    await Promise.race([Promise.all(leases.map((l) => this.releaseLease(l))), sleep(ms)]);
    return leases.length;
  }

  /**
   * Merges a table's small fragments (one per write), adds new rows to its indexes and prunes versions older than
   * KEEP_VERSIONS_MS, never the committed one: a writer that dies before its commit is still undone to it.
   */
  private async compact(t: Lance.Table, committed: number): Promise<void> {
    const at = (await t.listVersions()).find((v) => v.version === committed)?.timestamp.getTime() ?? 0;
    // LanceDB turns the date into an age measured when pruning starts, after compacting: an hour before the committed
    // version keeps it whatever the compaction takes
    await t.optimize({ cleanupOlderThan: new Date(Math.min(Date.now(), at) - KEEP_VERSIONS_MS) });
  }

  /** Rolls a collection's tables back to the versions its head names (a writer that died may have left more). */
  private async undoUncommitted(head: Head): Promise<void> {
    for (const [table, v] of [
      [`${head.name}.items`, head.itemsVersion],
      [`${head.name}.log`, head.logVersion],
      [`${head.name}.model`, head.modelVersion],
    ] as const) {
      const t = await this.#db.openTable(table);
      if ((await t.version()) === v) continue;
      await t.checkout(v);
      await t.restore();
    }
  }

  /** Commits a write: the head row moves to `next` only while this process still holds the lease. */
  private async commit(lease: Lease, next: HeadRow): Promise<void> {
    await this.stopRenewing(lease);
    this.holding(lease);
    if ((await this.upsertHead(next, leaseCond(lease))) === 0) {
      throw fail('COLLECTION_BUSY', `the write to '${next.name}' lost its lease to another writer (it could not be renewed within ${LEASE_MS / 1000} s); nothing was committed, run it again`);
    }
    this.#leases.delete(lease);
    if (next.seq > 0 && next.seq % COMPACT_EVERY === 0) {
      // the table of collections gains a version with every lease: pruned like the collections' tables
      await (await this.headsTable()).optimize({ cleanupOlderThan: new Date(Date.now() - KEEP_VERSIONS_MS) }).catch(() => undefined);
    }
  }

  private async releaseLease(lease: Lease): Promise<void> {
    try {
      await this.stopRenewing(lease);
      this.#leases.delete(lease);
      const cur = (await this.headRows(lease.row.name)).find((r) => r.lease_holder === lease.holder);
      if (!cur) return;
      if (cur.seq < 0) await (await this.headsTable()).delete(`name = ${sqlString(cur.name)} AND lease_holder = ${sqlString(lease.holder)}`);
      else await this.upsertHead({ ...cur, lease_holder: '', lease_until: 0 }, leaseCond(lease));
    } catch {
      // the lease runs out on its own
    }
  }

  /**
   * Updates a head row where `cond` holds of the stored one, retrying when a write to another collection's row
   * committed first (all rows share one table); the number of rows changed.
   */
  private async upsertHead(row: HeadRow, cond: string): Promise<number> {
    const t = await this.headsTable();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.upsert(t, row, cond);
      } catch (e) {
        if (!isConflict(e) || attempt >= 20) throw e;
        await sleep(20 + Math.random() * 80);
      }
    }
  }

  /** Inserts a head row, or updates it where `cond` holds of the stored one; the number of rows changed. */
  private async upsert(t: Lance.Table, row: HeadRow, cond: string | undefined): Promise<number> {
    const data = this.#lance.makeArrowTable([row], { schema: this.headSchema() });
    const b = t.mergeInsert('name');
    const r = await (cond ? b.whenMatchedUpdateAll({ where: cond }) : b).whenNotMatchedInsertAll().execute(data);
    return r.numInsertedRows + r.numUpdatedRows;
  }

  private async storedKeys(items: Lance.Table, keys: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks([...new Set(keys)], KEYS_PER_QUERY)) {
      const rows = (await items.query().where(keysIn(part)).select(['key']).toArray()) as { key: string }[];
      for (const r of rows) out.add(r.key);
    }
    return out;
  }

  private async openOrCreate(name: string, schema: Arrow.Schema): Promise<Lance.Table> {
    return this.#db.createEmptyTable(name, schema, { existOk: true });
  }

  private async overwrite(name: string, rows: Record<string, unknown>[], schema: Arrow.Schema): Promise<Lance.Table> {
    const t = await this.openOrCreate(name, schema);
    if (rows.length) await t.add(this.#lance.makeArrowTable(rows, { schema }), { mode: 'overwrite' });
    else if ((await t.countRows()) > 0) await t.delete('true');
    return t;
  }

  private async append(t: Lance.Table, rows: readonly NewItem[], cd: number): Promise<void> {
    await t.add(this.itemTable(rows, cd), { mode: 'append' });
  }

  /** An ANN index on the codes once there are enough of them, and scalar indexes for key lookups and label filters. */
  private async index(t: Lance.Table, count: number, space: 'l2' | 'cosine', holding: () => void): Promise<void> {
    const { Index } = this.#lance;
    if (count >= ANN_MIN_ROWS) await this.annIndex(t, count, space, holding);
    holding();
    await t.createIndex('key', { config: Index.btree(), replace: true });
    holding();
    await t.createIndex('label', { config: Index.bitmap(), replace: true });
  }

  /** The IVF_PQ index on the codes, in the collection's own distance. */
  private async annIndex(t: Lance.Table, count: number, space: 'l2' | 'cosine', holding: () => void): Promise<void> {
    const cd = ((await t.schema()).fields.find((f) => f.name === 'vector')?.type as Arrow.FixedSizeList | undefined)?.listSize ?? 0;
    // ~√n partitions of a few thousand codes each; sub-vectors of 2 dimensions keep PQ's error small for short codes
    const subs = cd % 2 === 0 ? cd / 2 : cd;
    holding();
    await t.createIndex('vector', { config: this.#lance.Index.ivfPq({ numPartitions: Math.max(1, Math.round(Math.sqrt(count))), numSubVectors: subs, distanceType: space }), replace: true });
  }

  private itemTable(rows: readonly NewItem[], cd: number): Arrow.Table {
    const A = this.#arrow;
    const n = rows.length;
    const codes = new Float32Array(n * cd);
    rows.forEach((r, i) => codes.set(new Float32Array(r.code.buffer, r.code.byteOffset, cd), i * cd));
    const schema = this.itemSchema(cd);
    const col = <T extends Arrow.DataType>(type: T, values: unknown[]) => A.vectorFromArray(values, type);
    const vector = A.makeVector(
      A.makeData({ type: schema.fields[6]!.type as Arrow.FixedSizeList<Arrow.Float32>, length: n, nullCount: 0, child: A.makeData({ type: new A.Float32(), length: n * cd, data: codes }) }),
    );
    return new A.Table(schema, {
      key: col(new A.Utf8(), rows.map((r) => r.key)),
      label: col(new A.Utf8(), rows.map((r) => r.label)),
      uri: col(new A.Utf8(), rows.map((r) => r.uri)),
      grp: col(new A.Utf8(), rows.map((r) => r.grp ?? null)),
      text: col(new A.Utf8(), rows.map((r) => r.text ?? null)),
      raw: col(new A.Binary(), rows.map((r) => new Uint8Array(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength))),
      vector,
      thumb: col(new A.Binary(), rows.map((r) => (r.thumb ? new Uint8Array(r.thumb.buffer, r.thumb.byteOffset, r.thumb.byteLength) : null))),
      bits: col(new A.Binary(), rows.map((r) => (r.bits ? new Uint8Array(r.bits.buffer, r.bits.byteOffset, r.bits.byteLength) : null))),
      recon: col(new A.Float32(), rows.map((r) => r.recon ?? null)),
    });
  }

  private itemSchema(cd: number): Arrow.Schema {
    const A = this.#arrow;
    return new A.Schema([
      new A.Field('key', new A.Utf8(), false),
      new A.Field('label', new A.Utf8(), true),
      new A.Field('uri', new A.Utf8(), true),
      new A.Field('grp', new A.Utf8(), true),
      new A.Field('text', new A.Utf8(), true),
      new A.Field('raw', new A.Binary(), false),
      new A.Field('vector', new A.FixedSizeList(cd, new A.Field('item', new A.Float32(), true)), false),
      new A.Field('thumb', new A.Binary(), true),
      new A.Field('bits', new A.Binary(), true),
      new A.Field('recon', new A.Float32(), true),
    ]);
  }

  private logSchema(): Arrow.Schema {
    const A = this.#arrow;
    return new A.Schema([new A.Field('seq', new A.Float64(), false), new A.Field('op', new A.Utf8(), false), new A.Field('key', new A.Utf8(), false)]);
  }

  private modelSchema(): Arrow.Schema {
    const A = this.#arrow;
    return new A.Schema([new A.Field('file', new A.Utf8(), false), new A.Field('data', new A.Binary(), false)]);
  }

  private headSchema(): Arrow.Schema {
    const A = this.#arrow;
    return new A.Schema([
      new A.Field('name', new A.Utf8(), false),
      new A.Field('build', new A.Utf8(), false),
      new A.Field('seq', new A.Float64(), false),
      new A.Field('manifest', new A.Utf8(), false),
      new A.Field('items_version', new A.Float64(), false),
      new A.Field('log_version', new A.Float64(), false),
      new A.Field('model_version', new A.Float64(), false),
      new A.Field('lease_holder', new A.Utf8(), false),
      new A.Field('lease_until', new A.Float64(), false),
    ]);
  }
}

/** The condition on a collection's row that this lease still holds it (its holder token is unique). */
function leaseCond(lease: Lease): string {
  return `target.lease_holder = ${sqlString(lease.holder)}`;
}

/** LanceDB's answer when another writer committed first. */
function isConflict(e: unknown): boolean {
  return /commit conflict|retryable/i.test(messageOf(e));
}

function unreachable(spec: StoreSpec, e: unknown): Error {
  if (isLatentdexError(e)) return e;
  const check = spec.uri.startsWith('s3://') ? 'check the URI, AWS_ENDPOINT_URL and the credentials' : 'check that this process may read and write the folder';
  return fail('STORE_UNREACHABLE', `cannot open the store ${storeLabel(spec)}: ${shortError(e)}; ${check}`, e);
}

/** A LanceDB error met while writing, as a one-line error (what was written stays uncommitted). */
function storeFailed(spec: StoreSpec, e: unknown, what: string): Error {
  if (isLatentdexError(e)) return e;
  if (isConflict(e)) return fail('COLLECTION_BUSY', `${what} the store ${storeLabel(spec)} met another writer's commit; nothing was committed, run it again`, e);
  return fail('STORE_UNREACHABLE', `${what} the store ${storeLabel(spec)} failed: ${shortError(e)}; nothing was committed, run it again`, e);
}

/** The files of a saved model folder as rows (path relative to the folder, with '/'). */
async function modelRows(dir: string): Promise<{ file: string; data: Uint8Array }[]> {
  const out: { file: string; data: Uint8Array }[] = [];
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    out.push({ file: path.relative(dir, abs).split(path.sep).join('/'), data: await fs.readFile(abs) });
  }
  return out;
}

function bytes(v: unknown): Buffer | null {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null;
}

/** Catalogue rows of a batch read from an items table. */
function itemsOf(batch: Arrow.RecordBatch): NewItem[] {
  const get = (name: string) => batch.getChild(name);
  const [key, label, uri, grp, text, raw, vector, thumb, bits, recon] = ['key', 'label', 'uri', 'grp', 'text', 'raw', 'vector', 'thumb', 'bits', 'recon'].map(get);
  const out: NewItem[] = [];
  for (let i = 0; i < batch.numRows; i++) {
    const code = (vector!.get(i) as Arrow.Vector<Arrow.Float32>).toArray() as Float32Array;
    out.push({
      key: key!.get(i) as string,
      label: (label!.get(i) as string | null) ?? null,
      uri: (uri!.get(i) as string | null) ?? null,
      grp: (grp!.get(i) as string | null) ?? null,
      text: (text!.get(i) as string | null) ?? null,
      raw: bytes(raw!.get(i)) ?? Buffer.alloc(0),
      thumb: bytes(thumb!.get(i)),
      code: Buffer.from(code.slice().buffer),
      bits: bytes(bits!.get(i)),
      recon: (recon!.get(i) as number | null) ?? null,
    });
  }
  return out;
}
