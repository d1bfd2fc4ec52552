import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** npm package of 64-px colour emoji with a category each: the open colour set of the benchmarks. */
const PACKAGE = 'emoji-datasource-google@16.0.0';
const CACHE = path.join(os.homedir(), '.cache', 'latentdex-bench');

const entry = z.object({ image: z.string(), category: z.string(), has_img_google: z.boolean().optional() }).passthrough();

/** Installs the emoji package into a cache (not the project: 82 MB of images no user needs). */
function emojiPackage(): string {
  const dir = path.join(CACHE, 'node_modules', 'emoji-datasource-google');
  if (!fs.existsSync(path.join(dir, 'emoji.json'))) {
    fs.mkdirSync(CACHE, { recursive: true });
    process.stderr.write(`installing ${PACKAGE} into ${CACHE}\n`);
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', CACHE, PACKAGE], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return dir;
}

/**
 * Lays the emoji out as a `dir:` folder, one sub-folder per category (the label, used only to score), and
 * returns its path. Skin-tone variants are left out, as in the count of 1,911.
 */
export function emojiFolder(dest = path.join(os.tmpdir(), 'latentdex-emoji')): string {
  const pkg = emojiPackage();
  const list = z.array(entry).parse(JSON.parse(fs.readFileSync(path.join(pkg, 'emoji.json'), 'utf8')));
  if (fs.existsSync(path.join(dest, '.complete'))) return dest;
  fs.rmSync(dest, { recursive: true, force: true });
  let n = 0;
  for (const e of list) {
    if (e.has_img_google === false) continue;
    const src = path.join(pkg, 'img', 'google', '64', e.image);
    if (!fs.existsSync(src)) continue;
    const sub = path.join(dest, e.category.replace(/[^A-Za-z0-9]+/g, '-'));
    fs.mkdirSync(sub, { recursive: true });
    fs.copyFileSync(src, path.join(sub, e.image));
    n++;
  }
  fs.writeFileSync(path.join(dest, '.complete'), String(n));
  process.stderr.write(`emoji folder: ${n} images in ${dest}\n`);
  return dest;
}
