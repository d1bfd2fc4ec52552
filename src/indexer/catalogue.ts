import Database from 'better-sqlite3';
import { fail, isLatentdexError, messageOf } from '../errors.js';
import type { HnswParams, Space } from './hnsw.js';
import { filterSql, type ItemFilter } from './filter.js';

/** 2: versioned folders under a CURRENT pointer, a generation counter and a change log in the catalogue. */
/** 3: text collections store their baseline as sparse TF-IDF over the full vocabulary (2 stored 2,000 dense floats). */
export const COLLECTION_FORMAT_VERSION = 3;

/** The manifest of a collection, held in the `collections` table of its catalogue. */
export interface CollectionManifest {
  name: string;
  kind: 'image' | 'text';
  formatVersion: number;
  codeDim: number;
  space: Space;
  hnsw: HnswParams;
  /** live items */
  count: number;
  /** bumped by every committed write; what derived state (graph, caches) is checked against */
  generation: number;
  rawDim: number;
  /** u8: pixel bytes; f32: floats; sparse: TF-IDF weights of a vocabulary of rawDim words (see sparse-rows.ts) */
  rawType: 'u8' | 'f32' | 'sparse';
  /** a summary of the model (arch, source, training figures) */
  model: Record<string, unknown>;
  /** kind-specific parameters (image size, text weighting) */
  params: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface ItemRow {
  id: number;
  key: string;
  label: string | null;
  uri: string | null;
  grp: string | null;
  text: string | null;
}

export interface NewItem {
  key: string;
  label: string | null;
  uri: string | null;
  grp?: string | null;
  text?: string | null;
  raw: Buffer;
  thumb: Buffer | null;
  code: Buffer;
  bits: Buffer | null;
  /** the model's reconstruction error of the item (null: not scored) */
  recon?: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS collections (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  format_version INTEGER NOT NULL,
  code_dim INTEGER NOT NULL,
  space TEXT NOT NULL,
  m INTEGER NOT NULL,
  ef_construction INTEGER NOT NULL,
  ef INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  count INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  raw_dim INTEGER NOT NULL,
  raw_type TEXT NOT NULL,
  model_json TEXT NOT NULL,
  params_json TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  label TEXT,
  uri TEXT,
  grp TEXT,
  text TEXT,
  raw BLOB NOT NULL,
  thumb BLOB,
  code BLOB NOT NULL,
  bits BLOB,
  recon REAL
);
CREATE TABLE IF NOT EXISTS changes (
  gen INTEGER NOT NULL,
  op INTEGER NOT NULL,
  id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_gen ON changes (gen);
`;

/** Indexes for filters: made when the catalogue can be written, else filters scan (a read-only or busy catalogue still opens). */
const FILTER_INDEXES = `
CREATE INDEX IF NOT EXISTS items_label ON items (label);
CREATE INDEX IF NOT EXISTS items_grp ON items (grp);
`;

/** Columns added after a format was released: added to older catalogues when they open (like the indexes). */
const ADDED_COLUMNS: readonly [string, string][] = [['recon', 'REAL']];

function columnsOf(db: Database.Database): Set<string> {
  return new Set((db.pragma('table_info(items)') as { name: string }[]).map((c) => c.name));
}

/** One entry of the change log: an item added (with its code, unless removed since) or removed, at generation `gen`. */
export interface Change {
  gen: number;
  op: 'add' | 'remove';
  id: number;
  code: Buffer | null;
}

/** The stored vectors of one item, as a write's replay brings caches forward with them. */
export interface StoredRow {
  id: number;
  raw: Buffer;
  bits: Buffer | null;
  code: Buffer;
  recon: number | null;
}

/** SQLite's answer when another connection holds the write lock. */
export function isBusy(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'code' in e && /^SQLITE_BUSY/.test(String((e as { code: unknown }).code));
}

interface ManifestRow {
  name: string;
  kind: string;
  format_version: number;
  code_dim: number;
  space: string;
  m: number;
  ef_construction: number;
  ef: number;
  seed: number;
  count: number;
  generation: number;
  raw_dim: number;
  raw_type: string;
  model_json: string;
  params_json: string;
  created_at: string;
  updated_at: string;
}

/**
 * The SQLite catalogue of a collection version: its manifest, one row per item, and the change log that lets every
 * process bring its graph and caches up to the latest generation. SQLite's write lock (BEGIN IMMEDIATE) is the
 * collection's writer lock: it is released by COMMIT, ROLLBACK or the death of the process that held it.
 */
export class Catalogue {
  readonly #db: Database.Database;
  private readonly st;
  /** prepared filter queries by the shape of their condition (at most 7 shapes) */
  private readonly filters = new Map<string, Database.Statement<[Record<string, string>], number>>();
  /** the generation a write in progress will commit, undefined outside writes */
  private pending: number | undefined;

  constructor(file: string) {
    let db: Database.Database | undefined;
    try {
      // Reads wait out a checkpoint or a recovery; the write lock is tried without waiting (see tryBeginWrite).
      db = new Database(file, { fileMustExist: false, timeout: 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
      try {
        db.exec(FILTER_INDEXES);
      } catch {
        // another process holds the write lock, or the file is read-only: filters work without the indexes
      }
      for (const [name, type] of ADDED_COLUMNS) {
        try {
          if (!columnsOf(db).has(name)) db.exec(`ALTER TABLE items ADD COLUMN ${name} ${type}`);
        } catch {
          // another process added it meanwhile, holds the write lock, or the file is read-only: checked below
        }
      }
    } catch (e) {
      db?.close();
      if (isLatentdexError(e)) throw e;
      throw fail('CORRUPT_COLLECTION', `catalogue '${file}' cannot be opened (${messageOf(e)}); rebuild the collection`, e);
    }
    this.#db = db;
    // A catalogue that could not take the column (read-only, busy) still opens: its items read as unscored.
    const recon = columnsOf(db).has('recon');
    const reconCol = recon ? 'recon' : 'NULL AS recon';
    this.st = {
      manifest: this.#db.prepare<[], ManifestRow>('SELECT * FROM collections LIMIT 1'),
      insert: this.#db.prepare(
        recon
          ? 'INSERT INTO items (key, label, uri, grp, text, raw, thumb, code, bits, recon) VALUES (@key, @label, @uri, @grp, @text, @raw, @thumb, @code, @bits, @recon)'
          : 'INSERT INTO items (key, label, uri, grp, text, raw, thumb, code, bits) VALUES (@key, @label, @uri, @grp, @text, @raw, @thumb, @code, @bits)',
      ),
      byKey: this.#db.prepare<[string], ItemRow>('SELECT id, key, label, uri, grp, text FROM items WHERE key = ?'),
      byId: this.#db.prepare<[number], ItemRow>('SELECT id, key, label, uri, grp, text FROM items WHERE id = ?'),
      idByKey: this.#db.prepare<[string], { id: number }>('SELECT id FROM items WHERE key = ?'),
      deleteId: this.#db.prepare<[number]>('DELETE FROM items WHERE id = ?'),
      count: this.#db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM items'),
      thumb: this.#db.prepare<[string], { thumb: Buffer | null }>('SELECT thumb FROM items WHERE key = ?'),
      raw: this.#db.prepare<[number], { raw: Buffer }>('SELECT raw FROM items WHERE id = ?'),
      code: this.#db.prepare<[number], { code: Buffer }>('SELECT code FROM items WHERE id = ?'),
      allCodes: this.#db.prepare<[], { id: number; code: Buffer }>('SELECT id, code FROM items ORDER BY id'),
      allRaw: this.#db.prepare<[], { id: number; raw: Buffer }>('SELECT id, raw FROM items ORDER BY id'),
      allBits: this.#db.prepare<[], { id: number; bits: Buffer | null }>('SELECT id, bits FROM items ORDER BY id'),
      allRecon: this.#db.prepare<[], { id: number; recon: number | null }>(`SELECT id, ${reconCol} FROM items ORDER BY id`),
      allMeta: this.#db.prepare<[], ItemRow>('SELECT id, key, label, uri, grp, text FROM items ORDER BY id'),
      allItems: this.#db.prepare<[], NewItem>(`SELECT key, label, uri, grp, text, raw, thumb, code, bits, ${reconCol} FROM items ORDER BY id`),
      sharedGroup: this.#db.prepare<[], { grp: string }>('SELECT grp FROM items WHERE grp IS NOT NULL GROUP BY grp HAVING COUNT(*) > 1 LIMIT 1'),
      generation: this.#db.prepare<[], { g: number }>('SELECT generation AS g FROM collections LIMIT 1'),
      bump: this.#db.prepare<[number, string]>('UPDATE collections SET generation = ?, count = (SELECT COUNT(*) FROM items), updated_at = ?'),
      log: this.#db.prepare<[number, number, number]>('INSERT INTO changes (gen, op, id) VALUES (?, ?, ?)'),
      oldestChange: this.#db.prepare<[], { g: number | null }>('SELECT MIN(gen) AS g FROM changes'),
      changesSince: this.#db.prepare<[number], { gen: number; op: number; id: number; code: Buffer | null }>(
        'SELECT c.gen, c.op, c.id, i.code FROM changes c LEFT JOIN items i ON i.id = c.id WHERE c.gen > ? ORDER BY c.rowid',
      ),
      truncate: this.#db.prepare<[number]>('DELETE FROM changes WHERE gen <= ?'),
      rowsByIds: this.#db.prepare<[string], StoredRow>(`SELECT id, raw, bits, code, ${reconCol} FROM items WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`),
      labelCounts: this.#db.prepare<[number], { value: string; count: number }>('SELECT label AS value, COUNT(*) AS count FROM items WHERE label IS NOT NULL GROUP BY label ORDER BY count DESC, label LIMIT ?'),
      groupCounts: this.#db.prepare<[number], { value: string; count: number }>('SELECT grp AS value, COUNT(*) AS count FROM items WHERE grp IS NOT NULL GROUP BY grp ORDER BY count DESC, grp LIMIT ?'),
      randomKey: this.#db.prepare<[number], { key: string }>('SELECT key FROM items ORDER BY id LIMIT 1 OFFSET ?'),
    };
  }

  writeManifest(m: CollectionManifest): void {
    this.#db.prepare('DELETE FROM collections').run();
    this.#db
      .prepare(
        `INSERT INTO collections VALUES (@name, @kind, @format_version, @code_dim, @space, @m, @ef_construction, @ef, @seed, @count, @generation, @raw_dim, @raw_type, @model_json, @params_json, @created_at, @updated_at)`,
      )
      .run({
        name: m.name,
        kind: m.kind,
        format_version: m.formatVersion,
        code_dim: m.codeDim,
        space: m.space,
        m: m.hnsw.M,
        ef_construction: m.hnsw.efConstruction,
        ef: m.hnsw.ef,
        seed: m.hnsw.seed,
        count: m.count,
        generation: m.generation,
        raw_dim: m.rawDim,
        raw_type: m.rawType,
        model_json: JSON.stringify(m.model),
        params_json: JSON.stringify(m.params),
        created_at: m.createdAt,
        updated_at: m.updatedAt,
      });
  }

  readManifest(): CollectionManifest | undefined {
    const r = this.st.manifest.get();
    if (!r) return undefined;
    return {
      name: r.name,
      kind: r.kind as CollectionManifest['kind'],
      formatVersion: r.format_version,
      codeDim: r.code_dim,
      space: r.space as Space,
      hnsw: { M: r.m, efConstruction: r.ef_construction, ef: r.ef, seed: r.seed },
      count: r.count,
      generation: r.generation,
      rawDim: r.raw_dim,
      rawType: r.raw_type as CollectionManifest['rawType'],
      model: JSON.parse(r.model_json) as Record<string, unknown>,
      params: JSON.parse(r.params_json) as Record<string, unknown>,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  /**
   * Takes the write lock (BEGIN IMMEDIATE) without waiting: false when another connection holds it. Every change
   * made until commit() belongs to the next generation.
   */
  tryBeginWrite(): boolean {
    if (this.#db.inTransaction) return false;
    this.#db.pragma('busy_timeout = 0');
    try {
      this.#db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      if (isBusy(e)) return false;
      throw e;
    } finally {
      this.#db.pragma('busy_timeout = 5000');
    }
    this.pending = this.generation() + 1;
    return true;
  }

  /**
   * Takes the write lock, polling so that the event loop keeps serving reads meanwhile; COLLECTION_BUSY after
   * `timeoutMs`. `onWait` is called once when the wait gets noticeable.
   */
  async beginWrite(o: { timeoutMs: number; name: string; onWait?: () => void }): Promise<void> {
    const t0 = Date.now();
    let wait = 5;
    let told = false;
    while (!this.tryBeginWrite()) {
      if (Date.now() - t0 >= o.timeoutMs) {
        throw fail('COLLECTION_BUSY', `collection '${o.name}' is being written by another process (an add, remove or build); retry when it is done`);
      }
      if (!told && Date.now() - t0 > 500) {
        o.onWait?.();
        told = true;
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(100, wait * 2);
    }
  }

  /** Bumps the generation (with count and time) and commits the write; returns the committed generation. */
  commitWrite(o: { bump?: boolean } = {}): number {
    let g = this.writing();
    if (o.bump === false) g -= 1;
    else this.st.bump.run(g, new Date().toISOString());
    this.#db.exec('COMMIT');
    this.pending = undefined;
    return g;
  }

  rollbackWrite(): void {
    if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    this.pending = undefined;
  }

  private writing(): number {
    if (this.pending === undefined) throw fail('INTERNAL', 'catalogue change outside a write');
    return this.pending;
  }

  updateParams(params: Record<string, unknown>): void {
    this.writing();
    this.#db.prepare('UPDATE collections SET params_json = ?').run(JSON.stringify(params));
  }

  /** Deletes `removeIds` and inserts `items`, logging both; returns the new rowids in order. Only inside a write. */
  write(removeIds: number[], items: NewItem[]): number[] {
    const g = this.writing();
    for (const id of removeIds) {
      this.st.deleteId.run(id);
      this.st.log.run(g, 0, id);
    }
    return items.map((it) => {
      const id = Number(this.st.insert.run({ grp: null, text: null, recon: null, ...it }).lastInsertRowid);
      this.st.log.run(g, 1, id);
      return id;
    });
  }

  /** Runs `fn` on one snapshot of the catalogue (a read transaction): no other process's commit shows midway. */
  snapshot<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn)();
  }

  /** The committed generation (what another process's write bumps). */
  generation(): number {
    return this.st.generation.get()?.g ?? 0;
  }

  /** Whether the log still holds every change after generation `gen`. */
  reaches(gen: number): boolean {
    return this.snapshot(() => {
      const oldest = this.st.oldestChange.get()?.g ?? null;
      return oldest === null ? this.generation() <= gen : oldest <= gen + 1;
    });
  }

  /** The changes after generation `gen` in commit order, or undefined when the log no longer reaches back that far. */
  changesSince(gen: number): Change[] | undefined {
    return this.snapshot(() => {
      if (!this.reaches(gen)) return undefined;
      return this.st.changesSince.all(gen).map((r) => ({ gen: r.gen, op: r.op === 1 ? 'add' : 'remove', id: r.id, code: r.code }));
    });
  }

  /** Forgets the log up to `gen` (a graph file of that generation is saved). Only inside a write. */
  truncateChanges(gen: number): void {
    this.writing();
    this.st.truncate.run(gen);
  }

  /** Raw vectors, packed bits and codes of the given rows (those still present), in id order. */
  rowsOf(ids: readonly number[]): StoredRow[] {
    return ids.length === 0 ? [] : this.st.rowsByIds.all(JSON.stringify(ids));
  }

  /** The key of the item at position `i` in id order. */
  keyAt(i: number): string | undefined {
    return this.st.randomKey.get(i)?.key;
  }

  count(): number {
    return this.st.count.get()!.n;
  }
  byKey(key: string): ItemRow | undefined {
    return this.st.byKey.get(key);
  }
  byId(id: number): ItemRow | undefined {
    return this.st.byId.get(id);
  }
  idOf(key: string): number | undefined {
    return this.st.idByKey.get(key)?.id;
  }
  thumb(key: string): Buffer | null | undefined {
    return this.st.thumb.get(key)?.thumb;
  }
  raw(id: number): Buffer | undefined {
    return this.st.raw.get(id)?.raw;
  }
  code(id: number): Buffer | undefined {
    return this.st.code.get(id)?.code;
  }
  allCodes(): IterableIterator<{ id: number; code: Buffer }> {
    return this.st.allCodes.iterate();
  }
  allRaw(): IterableIterator<{ id: number; raw: Buffer }> {
    return this.st.allRaw.iterate();
  }
  allBits(): IterableIterator<{ id: number; bits: Buffer | null }> {
    return this.st.allBits.iterate();
  }
  allRecon(): IterableIterator<{ id: number; recon: number | null }> {
    return this.st.allRecon.iterate();
  }
  /** Whether some group holds two or more items. */
  hasSharedGroups(): boolean {
    return this.st.sharedGroup.get() !== undefined;
  }

  /** Every item as it was added (what a copy of the collection stores), in id order. */
  allItems(): IterableIterator<NewItem> {
    return this.st.allItems.iterate();
  }

  allMeta(): ItemRow[] {
    return this.st.allMeta.all();
  }

  /** Ids of the items a filter lets through, in increasing order. */
  matchingIds(f: ItemFilter): Int32Array {
    const { where, params } = filterSql(f);
    let st = this.filters.get(where);
    if (!st) {
      st = this.#db.prepare<[Record<string, string>], number>(`SELECT id FROM items WHERE ${where} ORDER BY id`).pluck();
      this.filters.set(where, st);
    }
    return Int32Array.from(st.all(params));
  }

  /** Labels (or groups) with their item counts, most frequent first, at most `limit`. */
  valueCounts(column: 'label' | 'grp', limit: number): { value: string; count: number }[] {
    const st = column === 'label' ? this.st.labelCounts : this.st.groupCounts;
    return st.all(limit);
  }

  close(): void {
    if (!this.#db.open) return;
    this.rollbackWrite();
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // another connection is busy with the file: it checkpoints later
    }
    this.#db.close();
  }
}
