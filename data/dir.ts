import fs from 'node:fs/promises';
import path from 'node:path';
import { fail, messageOf } from '../src/errors.js';
import { walkFiles } from './walk.js';
import { progress } from '../src/progress.js';
import { decodeImage, type DecodeTarget } from './decode.js';
import type { ImageSet } from './images.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff']);

/** `dir:PATH`: every PNG/JPEG below PATH; label = the name of the sub-folder holding it (none at top level). */
export async function loadDir(root: string, target: DecodeTarget): Promise<ImageSet> {
  let stat;
  try {
    stat = await fs.stat(root);
  } catch (e) {
    throw fail('BAD_SOURCE', `folder '${root}' does not exist (${messageOf(e)})`, e);
  }
  if (!stat.isDirectory()) throw fail('BAD_SOURCE', `'${root}' is not a folder; dir: takes a folder of PNG/JPEG files`);
  const files = await walkFiles(root, IMAGE_EXT);
  if (files.length === 0) throw fail('BAD_SOURCE', `folder '${root}' holds no PNG/JPEG images`);
  const dim = target.width * target.height * target.channels;
  const pixels = new Float32Array(files.length * dim);
  const keys: string[] = [];
  const labels: (string | null)[] = [];
  const bar = progress({ title: 'decode', total: files.length, unit: 'images', quiet: files.length < 500 });
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    if (i % 100 === 0) bar.update(i);
    const rel = path.relative(root, f);
    pixels.set(await decodeImage(await fs.readFile(f), target, f), i * dim);
    keys.push(rel.split(path.sep).join('/'));
    const parent = path.dirname(rel);
    labels.push(parent === '.' ? null : parent.split(path.sep).join('/'));
  }
  bar.update(files.length);
  bar.stop();
  return { kind: 'image', source: `dir:${root}`, ...target, keys, labels, uris: files.map((f) => path.resolve(f)), pixels };
}
