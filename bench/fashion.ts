import fs from 'node:fs';
import { loadImageSource } from '../data/sources.js';
import type { ImageSet } from '../data/images.js';

const DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST from Debian's dataset-fashion-mnist, read through the `idx:` source. */
export async function fashion(split: 'train' | 't10k', limit?: number): Promise<ImageSet> {
  const img = `${DIR}/${split}-images-idx3-ubyte.gz`;
  if (!fs.existsSync(img)) throw new Error(`Fashion-MNIST not found in ${DIR}: apt-get install dataset-fashion-mnist (or set FASHION_MNIST_DIR)`);
  return loadImageSource(`idx:${img},${DIR}/${split}-labels-idx1-ubyte.gz`, { limit });
}
