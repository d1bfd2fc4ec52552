import fs from 'node:fs';
import hnswlib from 'hnswlib-node';
import { crashPoint } from '../crash.js';
import { fail, messageOf } from '../errors.js';

export type Space = 'l2' | 'cosine';

export interface HnswParams {
  M: number;
  efConstruction: number;
  ef: number;
  seed: number;
}

export const HNSW_DEFAULTS: HnswParams = { M: 16, efConstruction: 200, ef: 100, seed: 100 };

export interface Neighbor {
  id: number;
  distance: number;
}

/**
 * Reads the vector dimension stored in an hnswlib index file header: the bytes between offsetData_ and
 * label_offset_ are the float32 vector, so dim = (label_offset - offsetData) / 4.
 */
export function hnswFileDim(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(48);
    if (fs.readSync(fd, head, 0, 48, 0) < 48) throw fail('CORRUPT_COLLECTION', `index file '${file}' is truncated`);
    const labelOffset = Number(head.readBigUInt64LE(32));
    const offsetData = Number(head.readBigUInt64LE(40));
    return (labelOffset - offsetData) / 4;
  } finally {
    fs.closeSync(fd);
  }
}

/** An HNSW graph over codes, labelled by catalogue rowid; grows its capacity as items are added. */
export class HnswIndex {
  private constructor(
    private readonly index: hnswlib.HierarchicalNSW,
    readonly dim: number,
    readonly space: Space,
  ) {}

  static create(dim: number, space: Space, capacity: number, p: HnswParams): HnswIndex {
    const index = new hnswlib.HierarchicalNSW(space, dim);
    // hnswlib's in-place reuse of deleted slots (allowReplaceDeleted) was measured to lose items for good (5 of
    // 1,500 unreachable after one `add --replace`); deleted slots are reclaimed by compaction instead.
    index.initIndex({ maxElements: Math.max(16, capacity), m: p.M, efConstruction: p.efConstruction, randomSeed: p.seed, allowReplaceDeleted: false });
    index.setEf(p.ef);
    return new HnswIndex(index, dim, space);
  }

  /** Loads an index file, refusing one whose stored dimension is not `dim`. */
  static load(file: string, dim: number, space: Space, ef: number): HnswIndex {
    let fileDim: number;
    try {
      fileDim = hnswFileDim(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw fail('NOT_FOUND', `index file '${file}' is gone`, e);
      throw e;
    }
    if (fileDim !== dim) {
      throw fail('MANIFEST_MISMATCH', `index file '${file}' holds ${fileDim}-dimensional vectors but the collection's model gives ${dim}; rebuild the collection`);
    }
    const index = new hnswlib.HierarchicalNSW(space, dim);
    try {
      index.readIndexSync(file, false);
    } catch (e) {
      if (!fs.existsSync(file)) throw fail('NOT_FOUND', `index file '${file}' is gone`, e);
      throw fail('CORRUPT_COLLECTION', `index file '${file}' cannot be read (${messageOf(e)}); rebuild the collection`, e);
    }
    index.setEf(ef);
    return new HnswIndex(index, dim, space);
  }

  /** Elements in the graph, deleted ones included. */
  get size(): number {
    return this.index.getCurrentCount();
  }

  add(code: ArrayLike<number>, id: number): void {
    if (code.length !== this.dim) throw fail('INVALID_DIM', `code has ${code.length} values; this index takes ${this.dim}`);
    if (this.index.getCurrentCount() >= this.index.getMaxElements()) this.index.resizeIndex(Math.ceil(this.index.getMaxElements() * 1.5) + 16);
    this.index.addPoint(Array.from(code), id);
  }

  reserve(extra: number): void {
    const need = this.index.getCurrentCount() + extra;
    // grown by half at least: a build replays one batch per write, and a resize copies the whole graph
    if (need > this.index.getMaxElements()) this.index.resizeIndex(Math.max(need, Math.ceil(this.index.getMaxElements() * 1.5)));
  }

  /** Marks an element deleted; false when the graph does not hold it (a replayed change already applied). */
  remove(id: number): boolean {
    try {
      this.index.markDelete(id);
      return true;
    } catch {
      return false;
    }
  }

  /** The k nearest elements (of `live` reachable ones), only among labels `filter` accepts when given. */
  search(code: ArrayLike<number>, k: number, live: number, ef?: number, filter?: (id: number) => boolean): Neighbor[] {
    if (code.length !== this.dim) throw fail('INVALID_DIM', `query code has ${code.length} values; this index takes ${this.dim}`);
    const kk = Math.min(k, live, this.index.getCurrentCount());
    if (kk <= 0) return [];
    const old = this.index.getEf();
    if (ef !== undefined && ef !== old) this.index.setEf(Math.max(ef, kk));
    else if (old < kk) this.index.setEf(kk);
    try {
      const r = filter ? this.index.searchKnn(Array.from(code), kk, filter) : this.index.searchKnn(Array.from(code), kk);
      return r.neighbors.map((id, i) => ({ id, distance: r.distances[i]! }));
    } finally {
      if (this.index.getEf() !== old) this.index.setEf(old);
    }
  }

  /** Writes to `file` atomically: a temp file, fsync, then rename. */
  save(file: string): void {
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    this.index.writeIndexSync(tmp);
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    crashPoint('graph:before-rename');
    fs.renameSync(tmp, file);
  }
}
