import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TrainedModel } from '../encoder/model.js';
import { progress } from '../progress.js';
import type { NewItem } from './catalogue.js';
import { fail } from '../errors.js';
import type { AddLoader, BuildTarget, CollectionDetails, CollectionEntry, CollectionStore, Codes, StoreOptions, StoreWriteOptions, WriteSummary } from './collection-store.js';
import { encodeItems, ingestParams, type Collection, type ItemStream } from './collection.js';
import { publishable, type Head, type LanceStore } from './lance-store.js';
import { STORE_STAGING } from './paths.js';

/**
 * The collections of a LanceDB store as the commands see them: a build is made in a staging folder of the data
 * directory and copied in; adds are encoded here with the collection's model and written in one commit.
 */
export class LanceCollections implements CollectionStore {
  constructor(
    readonly store: LanceStore,
    private readonly o: StoreOptions,
  ) {}

  get label(): string {
    return this.store.label;
  }

  async list(): Promise<CollectionEntry[]> {
    return (await this.store.list()).map((h) => ({ name: h.name, manifest: h.manifest, writes: h.seq }));
  }

  async describe(name: string): Promise<CollectionDetails> {
    const h = await this.store.requireHead(name);
    return { manifest: h.manifest, where: `${this.store.label} (build ${h.build})`, writes: h.seq };
  }

  async startBuild(name: string, o: { replace?: boolean; dataDir: string }): Promise<BuildTarget> {
    // before training: a store that cannot take the build, or holds the name, is said at once
    await this.store.checkWritable();
    if (!o.replace && (await this.store.head(name))) throw this.store.exists(name);
    return {
      dataDir: path.join(o.dataDir, STORE_STAGING),
      replaces: true,
      finish: async (c: Collection, w: Pick<StoreWriteOptions, 'onWait'>) => {
        const home = c.paths.home;
        try {
          await this.store.publish(publishable(c), { replace: o.replace, quiet: this.o.quiet, onWait: w.onWait });
        } finally {
          c.close();
        }
        await fs.rm(home, { recursive: true, force: true });
        return this.store.label;
      },
    };
  }

  async add(name: string, load: AddLoader, o: StoreWriteOptions): Promise<WriteSummary> {
    const head = await this.store.requireHead(name);
    await this.o.ready();
    const r = await this.withModel(head, async (model) => {
      // the store refuses stored keys when it writes (asking it per key first would cost a scan)
      const stream = await load(model, head.manifest.params, () => {});
      const rows = await encodeStream(model, stream, head.manifest.rawType, this.o.quiet);
      const indexed = new Set(rows.flatMap((row) => (row.uri === null ? [] : [row.uri])));
      // encoded with this build's model: a rebuild meanwhile makes the write COLLECTION_REPLACED; the source's
      // folders (where originals may be served from) and skipped files join the manifest, as a local add records them
      const record = Boolean(stream.skipped?.length || stream.roots?.length || indexed.size);
      return this.store.write(name, rows, [], { replace: o.replace, build: head.build, onWait: o.onWait, ...(record ? { params: (p: Record<string, unknown>) => ingestParams(p, stream, indexed) } : {}) });
    });
    return { added: r.added, replaced: r.replaced, removed: 0, count: r.head.manifest.count };
  }

  async remove(name: string, keys: readonly string[], o: StoreWriteOptions = {}): Promise<WriteSummary> {
    const r = await this.store.write(name, [], keys, { onWait: o.onWait });
    return { added: 0, replaced: 0, removed: r.removed, count: r.head.manifest.count };
  }

  async codes(name: string): Promise<Codes> {
    const head = await this.store.requireHead(name);
    const { codeDim: dim, count } = head.manifest;
    const data = new Float32Array(count * dim);
    const keys: string[] = [];
    const labels: (string | null)[] = [];
    const corrupt = (what: string) => fail('CORRUPT_COLLECTION', `the store's collection '${name}' ${what}; build it again with \`latentdex build --store ... --replace\``);
    for await (const batch of this.store.rows(head)) {
      for (const r of batch) {
        if (keys.length === count) throw corrupt(`holds more rows than the ${count} items of its manifest`);
        if (r.code.byteLength !== dim * 4) throw corrupt(`holds a ${r.code.byteLength / 4}-d code for item '${r.key}', not ${dim}-d`);
        // a copy: a row's bytes need not be 4-aligned in the batch they were read from
        data.set(new Float32Array(Uint8Array.from(r.code).buffer), keys.length * dim);
        keys.push(r.key);
        labels.push(r.label);
      }
    }
    if (keys.length !== count) throw corrupt(`holds ${keys.length} rows, not the ${count} items of its manifest`);
    return { keys, labels, dim, data };
  }

  close(): void {
    this.store.close();
  }

  /** Runs `fn` with the model of a collection's build, read into a temporary folder removed afterwards. */
  private async withModel<T>(head: Head, fn: (model: TrainedModel) => Promise<T>): Promise<T> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'latentdex-model-'));
    // an interrupted command exits without unwinding: the folder goes with the process
    const drop = () => fsSync.rmSync(dir, { recursive: true, force: true });
    process.once('exit', drop);
    try {
      await this.store.readModel(head, dir);
      const model = await TrainedModel.load(dir);
      try {
        return await fn(model);
      } finally {
        model.dispose();
      }
    } finally {
      process.off('exit', drop);
      drop();
    }
  }
}

/** Encodes a stream of items into the rows a store keeps (all in memory: one write is all or nothing). */
async function encodeStream(model: TrainedModel, stream: ItemStream, rawType: Head['manifest']['rawType'], quiet: boolean): Promise<NewItem[]> {
  const rows: NewItem[] = [];
  const bar = progress({ title: 'encode', total: stream.total, quiet });
  for await (const items of stream.batches()) {
    if (items.length) rows.push(...encodeItems(model, items, rawType));
    bar.update(rows.length);
  }
  bar.stop();
  return rows;
}
