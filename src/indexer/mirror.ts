import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TrainedModel } from '../encoder/model.js';
import { fail, messageOf } from '../errors.js';
import { log } from '../progress.js';
import { buildFromRows } from './build.js';
import { BuildLock } from './build-lock.js';
import { writeFileAtomic } from './layout.js';
import { Collection, encodeItems, type ItemInput, type Origin } from './collection.js';
import type { Head, LanceStore } from './lance-store.js';
import { StoreIndexedCollection } from './store-indexed.js';

export interface MirrorOptions {
  /** the local copies (a data directory of their own; its collections are replaced from the store) */
  cacheDir: string;
  /** how often the store is asked for new writes (default 1 s): the longest a write takes to reach this replica */
  intervalMs?: number;
  /** collections of more items than this are not copied (a replica's disk and memory hold whole rows) but searched
   * through the store's index; default 5,000,000 */
  hotLimit?: number;
  /** how long a write through this replica waits for another writer (default 5 s) */
  lockTimeoutMs?: number;
  quiet?: boolean;
}

export const DEFAULT_SYNC_MS = 1000;
/** The file that marks a folder as a replica's cache. */
const CACHE_MARKER = '.latentdex-replica-cache';
export const DEFAULT_HOT_LIMIT = 5_000_000;
/** A collection served from the store's index is closed this long after it was replaced (longer than any request). */
const RETIRE_INDEXED_MS = 60_000;
/** The lock file a running replica holds in its cache. */
const REPLICA_LOCK = '.latentdex-replica.lock';

/** A copy's params: the store's, with the store state the copy holds (what its cursors and answers name, alike on every replica). */
function paramsOf(h: Head): Record<string, unknown> {
  const origin: Origin = { version: h.build, generation: h.manifest.generation, createdAt: h.manifest.createdAt, updatedAt: h.manifest.updatedAt };
  return { ...h.manifest.params, origin };
}

/** The prefix of the temporary caches `serve --store` makes when it is given no --cache-dir. */
export const TEMP_CACHE_PREFIX = 'latentdex-replica-';
/** A temporary cache younger than this is never swept: its replica may be starting. */
const SWEEP_AFTER_MS = 10 * 60_000;

/**
 * Removes the temporary caches of replicas that were killed outright (SIGKILL, power loss) and could not remove their
 * own: those whose replica lock no process holds, older than SWEEP_AFTER_MS. Returns how many were removed.
 */
export function sweepTempCaches(parent: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = fsSync.readdirSync(parent).filter((n) => n.startsWith(TEMP_CACHE_PREFIX));
  } catch {
    return 0;
  }
  for (const n of names) {
    const dir = path.join(parent, n);
    try {
      const st = fsSync.statSync(dir);
      const lockFile = path.join(dir, REPLICA_LOCK);
      if (!st.isDirectory() || Date.now() - st.mtimeMs < SWEEP_AFTER_MS || !fsSync.existsSync(lockFile)) continue;
      const lock = BuildLock.tryFile(lockFile, 'replica', 0);
      if (!lock) continue;
      // moved aside while the lock is held: a replica starting on this folder now finds it gone, never half removed
      const doomed = `${dir}.removing-${process.pid}`;
      try {
        fsSync.renameSync(dir, doomed);
      } finally {
        lock.release();
      }
      fsSync.rmSync(doomed, { recursive: true, force: true });
      removed++;
    } catch {
      // another process's folder it cannot read or remove: left alone
    }
  }
  return removed;
}

/** How far a local copy has followed a collection of the store. */
interface Followed {
  build: string;
  seq: number;
  copy: Collection;
}

/**
 * A replica's local copies of a store's collections: each is copied once (model, codes, previews) into a cache data
 * directory the search engine serves, and then follows the store's change log, write by write. The store stays the
 * only owner of the data: the cache can be deleted at any time and is copied again.
 */
export class StoreMirror {
  readonly #followed = new Map<string, Followed>();
  /** collections over the hot limit, searched through the store's own index */
  readonly #indexed = new Map<string, StoreIndexedCollection>();
  #timer: NodeJS.Timeout | undefined;
  /** syncs run one after another */
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #lock: BuildLock | undefined;
  readonly #failing = new Set<string>();

  constructor(
    readonly store: LanceStore,
    private readonly o: MirrorOptions,
  ) {}

  /**
   * Copies every collection of the store, then follows them every `intervalMs`. The cache folder must be empty or a
   * replica's cache already (it holds a marker file): its collections are replaced, so it is never a data directory.
   */
  async start(): Promise<void> {
    const dir = this.o.cacheDir;
    const marker = path.join(dir, CACHE_MARKER);
    // the marker names the store: a cache serves one store's collections, never another's
    const mark = `${this.store.label}\n`;
    let entries: string[];
    try {
      await fs.mkdir(dir, { recursive: true });
      entries = await fs.readdir(dir);
    } catch (e) {
      throw fail('INVALID_ARGUMENT', `--cache-dir '${dir}' cannot be used as a folder (${messageOf(e)}); give an empty or new folder`, e);
    }
    if (entries.length && !entries.includes(CACHE_MARKER)) {
      throw fail('INVALID_ARGUMENT', `--cache-dir '${dir}' is not empty and not a replica's cache; its collections would be replaced by the store's. Give an empty or new folder`);
    }
    if (entries.length) {
      const was = await fs.readFile(marker, 'utf8').catch(() => '');
      if (was !== mark) throw fail('INVALID_ARGUMENT', `--cache-dir '${dir}' is the cache of another store (${was.trim() || 'unknown'}), not of ${this.store.label}; give each store a cache folder of its own`);
    }
    writeFileAtomic(marker, mark);
    // one replica per cache: a second would replace the first one's copies under it (the lock goes with the process)
    this.#lock = BuildLock.tryFile(path.join(dir, REPLICA_LOCK), 'replica', 0);
    if (!this.#lock) throw fail('INVALID_ARGUMENT', `--cache-dir '${dir}' is in use by another running replica; give each replica a cache folder of its own`);
    await this.sync();
    this.#timer = setInterval(() => void this.sync(), this.o.intervalMs ?? DEFAULT_SYNC_MS);
    this.#timer.unref();
  }

  /** Brings every local copy up to the store's last committed write (after those already queued). */
  sync(): Promise<void> {
    const run = this.#chain.then(() => (this.#closed ? undefined : this.syncOnce()));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Encodes items with the collection's model and writes them to the store, then shows them here at once. */
  async add(c: Collection, items: ItemInput[], o: { replace?: boolean } = {}): Promise<{ count: number; replaced: number }> {
    const rows = encodeItems(c.model, items, c.manifest.rawType);
    const r = await this.store.write(c.name, rows, [], { replace: o.replace, timeoutMs: this.o.lockTimeoutMs ?? 5000, build: this.#followed.get(c.name)?.build });
    await this.sync();
    return { count: r.head.manifest.count, replaced: r.replaced };
  }

  /** Removes items in the store, then here. */
  async remove(c: Collection, keys: string[]): Promise<number> {
    const r = await this.store.write(c.name, [], keys, { timeoutMs: this.o.lockTimeoutMs ?? 5000 });
    await this.sync();
    return r.head.manifest.count;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#chain;
    for (const f of this.#followed.values()) f.copy.close();
    this.#followed.clear();
    for (const c of this.#indexed.values()) c.close();
    this.#indexed.clear();
    this.#lock?.release();
  }

  /** A collection this replica serves from the store's index (over its hot limit), if `name` is one. */
  indexed(name: string): StoreIndexedCollection | undefined {
    return this.#indexed.get(name);
  }

  /** The collections served from the store's index. */
  indexedNames(): string[] {
    return [...this.#indexed.keys()];
  }

  private async syncOnce(): Promise<void> {
    let heads: Head[];
    try {
      heads = await this.store.list();
    } catch (e) {
      this.report('*', `the store ${this.store.label} cannot be read (${messageOf(e)}); serving the last copies`);
      return;
    }
    this.#failing.delete('*');
    for (const name of this.indexedNames()) if (!heads.some((h) => h.name === name)) this.retireIndexed(name);
    for (const h of heads) {
      try {
        await this.follow(h);
        this.#failing.delete(h.name);
      } catch (e) {
        this.report(h.name, `collection '${h.name}' could not be brought up to date from the store (${messageOf(e)}); trying again`);
      }
    }
  }

  /** Logs a failure once until it clears (a sync runs every second). */
  private report(key: string, msg: string): void {
    if (this.#failing.has(key)) return;
    this.#failing.add(key);
    log(msg, this.o.quiet);
  }

  private async follow(h: Head): Promise<void> {
    const limit = this.o.hotLimit ?? DEFAULT_HOT_LIMIT;
    if (h.manifest.count > limit && !this.#followed.has(h.name)) return this.followIndexed(h, limit);
    this.retireIndexed(h.name);
    const f = this.#followed.get(h.name);
    if (!f || f.build !== h.build) return this.copy(h, f);
    if (h.seq === f.seq) return;
    // the net effect of the writes since: the last change of each key counts
    const last = new Map<string, 'add' | 'remove'>();
    for (const c of await this.store.changes(h, f.seq)) last.set(c.key, c.op);
    const added = [...last].filter(([, op]) => op === 'add').map(([k]) => k);
    const removed = [...last].filter(([, op]) => op === 'remove').map(([k]) => k);
    const rows = [];
    for await (const b of this.store.rows(h, { keys: added })) rows.push(...b);
    if (rows.length !== added.length || new Set(rows.map((r) => r.key)).size !== rows.length) {
      throw fail('CORRUPT_COLLECTION', `the store's log of '${h.name}' names ${added.length} added keys, its items table holds ${rows.length} rows of them; was it written where conditional writes are ignored? Build it again with \`latentdex build --store ... --replace\``);
    }
    await f.copy.putRows(rows, removed, { params: paramsOf(h) });
    f.seq = h.seq;
  }

  /** Serves a collection too large to copy from the store's index: opens its build, then follows its commits. */
  private async followIndexed(h: Head, limit: number): Promise<void> {
    const open = this.#indexed.get(h.name);
    if (open && open.head.build === h.build) return open.follow(h);
    const modelDir = path.join(this.o.cacheDir, '.models', `${h.build}-indexed`);
    await fs.rm(modelDir, { recursive: true, force: true });
    try {
      const c = await StoreIndexedCollection.open(this.store, h, modelDir);
      this.retireIndexed(h.name);
      this.#indexed.set(h.name, c);
      log(`serving '${h.name}' (${h.manifest.count} items, over --hot-limit ${limit}) from the store's index: search, neighbours and items only`, this.o.quiet);
    } finally {
      await fs.rm(modelDir, { recursive: true, force: true });
    }
  }

  /** Stops serving a collection from the store's index; its model goes once requests still using it are done. */
  private retireIndexed(name: string): void {
    const c = this.#indexed.get(name);
    if (!c) return;
    this.#indexed.delete(name);
    setTimeout(() => c.close(), RETIRE_INDEXED_MS).unref();
  }

  /** Copies a collection's build from the store, replacing the local copy of an older build. */
  private async copy(h: Head, old: Followed | undefined): Promise<void> {
    const modelDir = path.join(this.o.cacheDir, '.models', h.build);
    await fs.rm(modelDir, { recursive: true, force: true });
    await this.store.readModel(h, modelDir);
    const model = await TrainedModel.load(modelDir);
    try {
      const m = h.manifest;
      const copy = await buildFromRows(model, this.store.rows(h), {
        dataDir: this.o.cacheDir,
        name: h.name,
        kind: m.kind,
        space: m.space,
        hnsw: m.hnsw,
        rawDim: m.rawDim,
        rawType: m.rawType,
        params: paramsOf(h),
        replace: true,
        quiet: true,
      });
      old?.copy.close();
      this.#followed.set(h.name, { build: h.build, seq: h.seq, copy });
      log(`copied '${h.name}' from ${this.store.label}: ${copy.count} items, write ${h.seq}`, this.o.quiet);
    } finally {
      model.dispose();
      await fs.rm(modelDir, { recursive: true, force: true });
    }
  }
}
