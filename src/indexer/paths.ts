import path from 'node:path';
import { fail } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

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
