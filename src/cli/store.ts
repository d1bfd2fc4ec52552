import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TrainedModel } from '../encoder/model.js';
import type { NewItem } from '../indexer/catalogue.js';
import { encodeItems, type ItemStream } from '../indexer/collection.js';
import { LanceStore, type Head } from '../indexer/lance-store.js';
import { parseStore } from '../indexer/store-spec.js';
import { log, progress } from '../progress.js';
import type { Ctx } from './context.js';

export const STORE_FLAG_HELP = 'keep the collection in a LanceDB store shared by many servers: lancedb:DIR or lancedb:s3://BUCKET/PREFIX (endpoint, keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)';

/** Connects to `--store` (one-line error for a bad URI or an endpoint that does not answer). */
export function openStore(ctx: Ctx, value: string, o: { create?: boolean } = {}): Promise<LanceStore> {
  return LanceStore.connect(parseStore(value, ctx.env.s3), o);
}

/**
 * Runs one command against `--store`: connects, and gives up the leases of writes in progress when the process is
 * interrupted (Ctrl-C, SIGTERM), so the next writer does not wait for them to run out.
 */
export async function withStore<T>(ctx: Ctx, value: string, fn: (store: LanceStore) => Promise<T>, o: { create?: boolean } = {}): Promise<T> {
  const store = await openStore(ctx, value, o);
  const interrupted = (signal: NodeJS.Signals) => {
    void store.abandon().finally(() => process.exit(signal === 'SIGTERM' ? 143 : 130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return await fn(store);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    store.close();
  }
}

/** What a write says while another writer holds the collection. */
export function waitNotice(collection: string, quiet: boolean): (holder: string) => void {
  return (holder) => log(`collection '${collection}' is being written by ${holder}; waiting for that write to finish…`, quiet);
}

/** Runs `fn` with the model of a store's collection, read into a temporary folder removed afterwards. */
export async function withStoreModel<T>(store: LanceStore, head: Head, fn: (model: TrainedModel) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'latentdex-model-'));
  // an interrupted command exits without unwinding: the folder goes with the process
  const drop = () => fsSync.rmSync(dir, { recursive: true, force: true });
  process.once('exit', drop);
  try {
    await store.readModel(head, dir);
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

/** Encodes a stream of items with a model into the rows a store keeps (all in memory: one write is all or nothing). */
export async function encodeStream(model: TrainedModel, stream: ItemStream, rawType: Head['manifest']['rawType'], quiet: boolean): Promise<NewItem[]> {
  const rows: NewItem[] = [];
  const bar = progress({ title: 'encode', total: stream.total, quiet });
  for await (const items of stream.batches()) {
    if (items.length) rows.push(...encodeItems(model, items, rawType));
    bar.update(rows.length);
  }
  bar.stop();
  return rows;
}
