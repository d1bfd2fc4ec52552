import Database from 'better-sqlite3';
import { fail, messageOf } from '../errors.js';
import type { HnswParams, Space } from './hnsw.js';

export const COLLECTION_FORMAT_VERSION = 1;

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
  /** elements in the HNSW graph, deleted ones included */
  hnswCount: number;
  /** 'writing' while a change is in flight: found on open, it means a crash, and the graph is rebuilt */
  state: 'ready' | 'writing';
  rawDim: number;
  rawType: 'u8' | 'f32';
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
  hnsw_count INTEGER NOT NULL,
  state TEXT NOT NULL,
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
  bits BLOB
);
`;

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
  hnsw_count: number;
  state: string;
  raw_dim: number;
  raw_type: string;
  model_json: string;
  params_json: string;
  created_at: string;
  updated_at: string;
}

/** The SQLite catalogue of a collection: its manifest and one row per item (WAL, prepared statements). */
export class Catalogue {
  readonly db: Database.Database;
  private readonly st;

  constructor(file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(SCHEMA);
    } catch (e) {
      throw fail('CORRUPT_COLLECTION', `catalogue '${file}' cannot be opened (${messageOf(e)}); rebuild the collection`, e);
    }
    this.st = {
      manifest: this.db.prepare<[], ManifestRow>('SELECT * FROM collections LIMIT 1'),
      insert: this.db.prepare('INSERT INTO items (key, label, uri, grp, text, raw, thumb, code, bits) VALUES (@key, @label, @uri, @grp, @text, @raw, @thumb, @code, @bits)'),
      byKey: this.db.prepare<[string], ItemRow>('SELECT id, key, label, uri, grp, text FROM items WHERE key = ?'),
      byId: this.db.prepare<[number], ItemRow>('SELECT id, key, label, uri, grp, text FROM items WHERE id = ?'),
      idByKey: this.db.prepare<[string], { id: number }>('SELECT id FROM items WHERE key = ?'),
      deleteId: this.db.prepare<[number]>('DELETE FROM items WHERE id = ?'),
      count: this.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM items'),
      thumb: this.db.prepare<[string], { thumb: Buffer | null }>('SELECT thumb FROM items WHERE key = ?'),
      raw: this.db.prepare<[number], { raw: Buffer }>('SELECT raw FROM items WHERE id = ?'),
      code: this.db.prepare<[number], { code: Buffer }>('SELECT code FROM items WHERE id = ?'),
      allCodes: this.db.prepare<[], { id: number; code: Buffer }>('SELECT id, code FROM items ORDER BY id'),
      allRaw: this.db.prepare<[], { id: number; raw: Buffer }>('SELECT id, raw FROM items ORDER BY id'),
      allBits: this.db.prepare<[], { id: number; bits: Buffer | null }>('SELECT id, bits FROM items ORDER BY id'),
      allMeta: this.db.prepare<[], ItemRow>('SELECT id, key, label, uri, grp, text FROM items ORDER BY id'),
      setState: this.db.prepare<[string, number, number, string]>('UPDATE collections SET state = ?, count = ?, hnsw_count = ?, updated_at = ?'),
    };
  }

  writeManifest(m: CollectionManifest): void {
    this.db.prepare('DELETE FROM collections').run();
    this.db
      .prepare(
        `INSERT INTO collections VALUES (@name, @kind, @format_version, @code_dim, @space, @m, @ef_construction, @ef, @seed, @count, @hnsw_count, @state, @raw_dim, @raw_type, @model_json, @params_json, @created_at, @updated_at)`,
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
        hnsw_count: m.hnswCount,
        state: m.state,
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
      hnswCount: r.hnsw_count,
      state: r.state as CollectionManifest['state'],
      rawDim: r.raw_dim,
      rawType: r.raw_type as CollectionManifest['rawType'],
      model: JSON.parse(r.model_json) as Record<string, unknown>,
      params: JSON.parse(r.params_json) as Record<string, unknown>,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  /** Runs `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  updateParams(params: Record<string, unknown>): void {
    this.db.prepare('UPDATE collections SET params_json = ?').run(JSON.stringify(params));
  }

  setState(state: CollectionManifest['state'], count: number, hnswCount: number): void {
    this.st.setState.run(state, count, hnswCount, new Date().toISOString());
  }

  /** Deletes `removeIds` and inserts `items` in one transaction; returns the new rowids in order. */
  write(removeIds: number[], items: NewItem[]): number[] {
    const run = this.db.transaction(() => {
      for (const id of removeIds) this.st.deleteId.run(id);
      return items.map((it) => Number(this.st.insert.run({ grp: null, text: null, ...it }).lastInsertRowid));
    });
    return run();
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
  allMeta(): ItemRow[] {
    return this.st.allMeta.all();
  }

  close(): void {
    if (this.db.open) {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }
}
