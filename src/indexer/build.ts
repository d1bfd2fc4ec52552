import fs from 'node:fs';
import path from 'node:path';
import type { TrainedModel } from '../encoder/model.js';
import { fail } from '../errors.js';
import { Collection, type CreateOptions, type ItemInput, type ItemStream } from './collection.js';
import { collectionPaths, pathsIn } from './paths.js';
import { swapDir } from '../encoder/model-io.js';

export interface BuildOptions extends Omit<CreateOptions, 'name'> {
  dataDir: string;
  name: string;
  /** replace an existing collection of that name (atomically, when the new one is complete) */
  replace?: boolean;
  quiet?: boolean;
}

/** Removes the leftovers of builds that were killed (their temp folders never became a collection). */
export function cleanStaleBuilds(dataDir: string, name: string): string[] {
  if (!fs.existsSync(dataDir)) return [];
  const stale = fs.readdirSync(dataDir).filter((f) => f.startsWith(`.${name}.building-`));
  for (const f of stale) fs.rmSync(path.join(dataDir, f), { recursive: true, force: true });
  return stale;
}

/**
 * Offline build: saves the model, encodes every item into a new graph and catalogue inside a temp folder, and
 * renames that folder into place only when complete. A killed build never leaves a half-built collection.
 */
export async function buildCollection(model: TrainedModel, items: ItemInput[] | ItemStream, o: BuildOptions): Promise<Collection> {
  const final = collectionPaths(o.dataDir, o.name);
  if (fs.existsSync(final.dir) && !o.replace) {
    throw fail('COLLECTION_EXISTS', `collection '${o.name}' already exists; pass --replace to rebuild it or use \`latentdex add\``);
  }
  fs.mkdirSync(o.dataDir, { recursive: true });
  cleanStaleBuilds(o.dataDir, o.name);
  const tmp = pathsIn(path.join(o.dataDir, `.${o.name}.building-${process.pid}`));
  fs.mkdirSync(tmp.dir, { recursive: true });
  try {
    await model.save(tmp.model);
    const c = Collection.create(tmp.dir, model, { ...o, name: o.name });
    if (Array.isArray(items)) c.add(items, { quiet: o.quiet });
    else c.addAll(items, { quiet: o.quiet });
    c.catalogue.close();
    await swapDir(tmp.dir, final.dir);
  } catch (e) {
    fs.rmSync(tmp.dir, { recursive: true, force: true });
    throw e;
  }
  return Collection.open(o.dataDir, o.name, { quiet: o.quiet });
}

/** Names of the collections in a data directory. */
export function listCollections(dataDir: string): string[] {
  if (!fs.existsSync(dataDir)) return [];
  return fs
    .readdirSync(dataDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && fs.existsSync(pathsIn(path.join(dataDir, e.name)).catalogue))
    .map((e) => e.name)
    .sort();
}
