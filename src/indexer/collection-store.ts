import type { TrainedModel } from '../encoder/model.js';
import { listCollections } from './build.js';
import type { CollectionManifest } from './catalogue.js';
import { Collection, type ItemStream } from './collection.js';

/** What a write did, and how many items the collection holds after it. */
export interface WriteSummary {
  added: number;
  replaced: number;
  removed: number;
  count: number;
}

/** Reads the items of an add with the collection's model and params; `refuse` throws for keys the write would refuse. */
export type AddLoader = (model: TrainedModel, params: Readonly<Record<string, unknown>>, refuse: (keys: readonly string[]) => void) => Promise<ItemStream>;

export interface StoreWriteOptions {
  /** replace stored items of the same keys instead of DUPLICATE_KEY */
  replace?: boolean;
  /** told once when another writer holds the collection and this write waits (`holder` names it) */
  onWait?: (holder: string) => void;
}

export interface StoreOptions {
  quiet: boolean;
  /** starts the tensor backend: called before the first model is loaded, never for what needs none */
  ready: () => Promise<void>;
}

/** A collection as a listing names it; a store that keeps manifests apart from the data says more. */
export interface CollectionEntry {
  name: string;
  manifest?: CollectionManifest;
  /** writes since the collection was built */
  writes?: number;
}

/** A collection as `info` shows it: its manifest, where it is kept, and what only some stores know. */
export interface CollectionDetails {
  manifest: CollectionManifest;
  /** the folder, or the store and the build in it */
  where: string;
  /** bytes on disk by part (a local collection) */
  disk?: Record<string, number>;
  /** graph elements, deleted slots not reused yet included (a local collection) */
  graphSize?: number;
  /** how the model reads images (a local collection) */
  input?: TrainedModel['manifest']['input'];
  /** writes since the collection was built (a store's collection) */
  writes?: number;
}

/** Codes of every item of a collection, row for row. */
export interface Codes {
  keys: string[];
  labels: (string | null)[];
  dim: number;
  data: Float32Array;
}

/** Where a build is made, and what makes the built collection the store's. */
export interface BuildTarget {
  /** the data directory the collection is built in (resumable there) */
  dataDir: string;
  /** whether a build there replaces what it finds (a staging folder) */
  replaces: boolean;
  /** Makes the built collection the store's, closes it, and says where it is kept now. */
  finish(c: Collection, o: Pick<StoreWriteOptions, 'onWait'>): Promise<string>;
}

/**
 * Where collections are kept: the data directory of one machine (SQLite catalogue + HNSW graph), or a LanceDB store
 * shared by many servers. The commands that build, add, remove, describe and export go through this, whichever it is.
 */
export interface CollectionStore {
  /** where, as a user is told */
  readonly label: string;
  /** The collections held, by name. */
  list(): Promise<CollectionEntry[]>;
  /** NOT_FOUND for a collection the store does not hold. */
  describe(name: string): Promise<CollectionDetails>;
  /** Where a build of `name` is made; COLLECTION_EXISTS (unless `replace`) and refusals come before any training. */
  startBuild(name: string, o: { replace?: boolean; dataDir: string }): Promise<BuildTarget>;
  /**
   * Reads items with the collection's model (given to `load`), encodes them, and stores them in one write. `load`
   * reads the items with the collection's model and manifest params (the build's --group-by, say); `refuse` throws
   * for keys the write would refuse (stored ones, without `replace`), so that a loader can ask before decoding.
   */
  add(name: string, load: AddLoader, o: StoreWriteOptions): Promise<WriteSummary>;
  /** Removes items by key in one write (an unknown key is ITEM_NOT_FOUND, and nothing is removed). */
  remove(name: string, keys: readonly string[], o: StoreWriteOptions): Promise<WriteSummary>;
  codes(name: string): Promise<Codes>;
  close(): void;
}

/** The collections of a data directory on this machine. */
export class LocalCollections implements CollectionStore {
  constructor(
    private readonly dataDir: string,
    private readonly o: StoreOptions,
  ) {}

  get label(): string {
    return this.dataDir;
  }

  list(): Promise<CollectionEntry[]> {
    return Promise.resolve(listCollections(this.dataDir).map((name) => ({ name })));
  }

  describe(name: string): Promise<CollectionDetails> {
    return this.with(name, (c) => ({ manifest: c.manifest, where: `${c.paths.home} (version ${c.paths.version})`, disk: c.diskSizes(), graphSize: c.graphSize, input: c.model.manifest.input }));
  }

  startBuild(_name: string, o: { dataDir: string }): Promise<BuildTarget> {
    return Promise.resolve({
      dataDir: o.dataDir,
      replaces: false,
      finish: (c: Collection) => {
        c.close();
        return Promise.resolve(c.paths.home);
      },
    });
  }

  add(name: string, load: AddLoader, o: StoreWriteOptions): Promise<WriteSummary> {
    return this.with(name, async (c) => {
      const r = await c.addAll(await load(c.model, c.manifest.params, (keys) => c.checkKeys(keys, { replace: o.replace })), { replace: o.replace, quiet: this.o.quiet });
      return { ...r, removed: 0, count: c.count };
    });
  }

  remove(name: string, keys: readonly string[]): Promise<WriteSummary> {
    return this.with(name, async (c) => ({ added: 0, replaced: 0, removed: await c.remove([...keys]), count: c.count }));
  }

  codes(name: string): Promise<Codes> {
    return this.with(name, (c) => {
      const { rows, data } = c.itemsWithCodes();
      return { keys: rows.map((r) => r.key), labels: rows.map((r) => r.label), dim: c.manifest.codeDim, data };
    });
  }

  close(): void {}

  private async with<T>(name: string, fn: (c: Collection) => T | Promise<T>): Promise<T> {
    await this.o.ready();
    const c = await Collection.open(this.dataDir, name, { quiet: this.o.quiet });
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }
}
