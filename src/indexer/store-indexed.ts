import { TrainedModel } from '../encoder/model.js';
import { fail } from '../errors.js';
import type { Pixels } from '../../data/images.js';
import type { NewItem } from './catalogue.js';
import { decodeRaw } from './collection.js';
import type { AnnHit, Head, LanceStore, Searcher, ValueCount } from './lance-store.js';

/**
 * A collection a replica serves from the store's own index rather than a local copy (it holds more items than the
 * replica copies, `--hot-limit`): the collection's model for encoding queries, and the committed version it reads,
 * moved forward by the replica's sync.
 */
export class StoreIndexedCollection {
  #head: Head;
  #search: Searcher;
  /** label and group counts of the head they were counted at (a scan of the column) */
  #counts: { seq: number; value: Promise<{ labels: ValueCount[]; groups: ValueCount[] }> } | undefined;

  private constructor(
    private readonly store: LanceStore,
    head: Head,
    search: Searcher,
    readonly model: TrainedModel,
  ) {
    this.#head = head;
    this.#search = search;
  }

  /** Opens a committed build: reads its model from the store (into `modelDir`, removed by the caller). */
  static async open(store: LanceStore, head: Head, modelDir: string): Promise<StoreIndexedCollection> {
    await store.readModel(head, modelDir);
    const model = await TrainedModel.load(modelDir);
    try {
      return new StoreIndexedCollection(store, head, await store.searcher(head), model);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  get name(): string {
    return this.#head.name;
  }

  get head(): Head {
    return this.#head;
  }

  /** Reads the store's newer commit of the same build (the replica's sync). */
  async follow(head: Head): Promise<void> {
    if (head.build !== this.#head.build) throw fail('INTERNAL', `collection '${head.name}' was built again; open the new build instead`);
    if (head.seq === this.#head.seq) return;
    this.#search = await this.store.searcher(head);
    this.#head = head;
  }

  /** The k nearest items of a code by the store's ANN index (IVF_PQ with re-ranking), leaving out `exclude`. */
  async nearest(code: ArrayLike<number>, k: number, o: { labels?: readonly string[]; exclude?: string } = {}): Promise<AnnHit[]> {
    const hits = await this.#search(code, o.exclude === undefined ? k : k + 1, { labels: o.labels });
    return hits.filter((h) => h.key !== o.exclude).slice(0, k);
  }

  /** A random item's key. */
  async randomKey(): Promise<string> {
    const head = this.#head;
    const key = await this.store.keyAt(head, Math.floor(Math.random() * head.manifest.count));
    if (key === undefined) throw fail('ITEM_NOT_FOUND', `collection '${this.name}' is empty`);
    return key;
  }

  /** How many items carry each label and group (counted once per commit). */
  valueCounts(): Promise<{ labels: ValueCount[]; groups: ValueCount[] }> {
    const head = this.#head;
    if (this.#counts?.seq !== head.seq) {
      const value = this.store.valueCounts(head);
      this.#counts = { seq: head.seq, value };
      value.catch(() => {
        if (this.#counts?.value === value) this.#counts = undefined;
      });
    }
    return this.#counts.value;
  }

  /** The pixels an image item was stored with (as the model's input was decoded). */
  pixelsOf(item: NewItem): Pixels {
    const type = this.#head.manifest.rawType;
    if (type === 'sparse') throw fail('INVALID_ARGUMENT', `collection '${this.name}' holds text; its items have no pixels`);
    return decodeRaw(item.raw, type);
  }

  /** One stored item, or ITEM_NOT_FOUND. */
  async item(key: string): Promise<NewItem> {
    for await (const b of this.store.rows(this.#head, { keys: [key] })) if (b[0]) return b[0];
    throw fail('ITEM_NOT_FOUND', `key '${key}' is not in collection '${this.name}'`);
  }

  close(): void {
    this.model.dispose();
  }
}
