import { LocalCollections, type CollectionStore } from '../indexer/collection-store.js';
import { LanceCollections } from '../indexer/lance-collections.js';
import { LanceStore } from '../indexer/lance-store.js';
import { parseStore } from '../indexer/store-spec.js';
import { log } from '../progress.js';
import { globals, startBackend, type Ctx } from './context.js';

export const STORE_FLAG_HELP = 'keep the collection in a LanceDB store shared by many servers: lancedb:DIR or lancedb:s3://BUCKET/PREFIX (endpoint, keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)';

/** Connects to `--store` (one-line error for a bad URI or an endpoint that does not answer). */
export function openStore(ctx: Ctx, value: string, o: { create?: boolean } = {}): Promise<LanceStore> {
  return LanceStore.connect(parseStore(value, ctx.env.s3), o);
}

/**
 * Runs one command against the collections it names: those of `--store` when given, else of the data directory.
 * A store's writes in progress give up their leases when the process is interrupted (Ctrl-C, SIGTERM), so the next
 * writer does not wait for them to run out.
 */
export async function withCollections<T>(ctx: Ctx, store: string | undefined, fn: (collections: CollectionStore) => Promise<T>, o: { create?: boolean } = {}): Promise<T> {
  const g = globals(ctx);
  const opts = { quiet: g.quiet, ready: () => startBackend(ctx) };
  if (store === undefined) {
    const local = new LocalCollections(g.dataDir, opts);
    try {
      return await fn(local);
    } finally {
      local.close();
    }
  }
  const lance = await openStore(ctx, store, o);
  const interrupted = (signal: NodeJS.Signals) => {
    void lance
      .abandon()
      .then((n) => {
        // said even with --quiet: whether the write landed decides whether to run it again
        process.stderr.write(n ? `interrupted: the write in progress was given up; unless its commit was already under way nothing of it is stored (see \`latentdex info --store\`)\n` : `interrupted: no write was in progress; a write this command finished is stored (see \`latentdex info --store\`)\n`);
      })
      .finally(() => process.exit(signal === 'SIGTERM' ? 143 : 130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const collections = new LanceCollections(lance, opts);
  try {
    return await fn(collections);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    collections.close();
  }
}

/** What a write says while another writer holds the collection. */
export function waitNotice(collection: string, quiet: boolean): (holder: string) => void {
  return (holder) => log(`collection '${collection}' is being written by ${holder}; waiting for that write to finish…`, quiet);
}
