import path from 'node:path';
import { fail, type LatentdexError } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Whether `name` is a valid collection name (a folder name a collection may have). */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** COLLECTION_NOT_FOUND, saying how to build it. */
export function notFound(dataDir: string, name: string): LatentdexError {
  return fail('COLLECTION_NOT_FOUND', `collection '${name}' not found in ${dataDir}; run \`latentdex build --collection ${name} --source SRC\``);
}

export function validateName(name: string): string {
  if (!NAME.test(name)) throw fail('INVALID_ARGUMENT', `invalid collection name '${name}'; use letters, digits, '_', '-', '.' (up to 64)`);
  return name;
}

/** The files of one version of a collection: `home/<version>/{model/, catalogue.db, graph-<gen>.hnsw}`. */
export interface CollectionPaths {
  /** the collection's folder, holding the CURRENT pointer and its versions */
  home: string;
  version: string;
  dir: string;
  model: string;
  catalogue: string;
}

export function versionPaths(home: string, version: string): CollectionPaths {
  const dir = path.join(home, version);
  return { home, version, dir, model: path.join(dir, 'model'), catalogue: path.join(dir, 'catalogue.db') };
}

/** The folder of collection `name` in a data directory. */
export function homeOf(dataDir: string, name: string): string {
  return path.join(dataDir, validateName(name));
}

/** Where builds and adds spool a folder's pixels and previews while they read it: beside the collections, on their disk. */
export function spoolDirOf(dataDir: string): string {
  return path.join(dataDir, '.spool');
}

/** Folder of the data directory where a collection for a store is built before it is copied in (`build --store`). */
export const STORE_STAGING = '.store-build';
