import path from 'node:path';
import { fail } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function validateName(name: string): string {
  if (!NAME.test(name)) throw fail('INVALID_ARGUMENT', `invalid collection name '${name}'; use letters, digits, '_', '-', '.' (up to 64)`);
  return name;
}

export interface CollectionPaths {
  dir: string;
  model: string;
  index: string;
  catalogue: string;
}

export function pathsIn(dir: string): CollectionPaths {
  return { dir, model: path.join(dir, 'model'), index: path.join(dir, 'codes.hnsw'), catalogue: path.join(dir, 'catalogue.db') };
}

export function collectionPaths(dataDir: string, name: string): CollectionPaths {
  return pathsIn(path.join(dataDir, validateName(name)));
}
