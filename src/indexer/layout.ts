import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fail, messageOf } from '../errors.js';
import { versionPaths, type CollectionPaths } from './paths.js';

/**
 * A collection's folder holds versions (`v-<time>-<pid>-<rand>/`, each a complete model + catalogue + graph) and a
 * pointer file `CURRENT` naming the live one. Replacing a collection is one rename of a new pointer over the old:
 * a crash at any moment leaves the old or the new version live, never none. Anything else is a leftover to sweep.
 */
export const POINTER = 'CURRENT';
const VERSION = /^v-[a-z0-9]+-(\d+)-[a-f0-9]{6}$/;
const TEMP = /\.tmp-(\d+)(-[a-f0-9]+)?$/;
/** Files of the first on-disk format (format 1): the catalogue lay directly in the collection's folder. */
const LEGACY = ['catalogue.db', 'catalogue.db-wal', 'catalogue.db-shm', 'codes.hnsw', 'model'];

/** The names in a folder; none when it does not exist (or cannot be read). */
function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Whether a process of this pid runs (a leftover of a dead one may be removed). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live version named by the pointer, undefined when there is none. */
export function readPointer(home: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(home, POINTER), 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fail('CORRUPT_COLLECTION', `cannot read ${path.join(home, POINTER)} (${messageOf(e)})`, e);
  }
  if (!VERSION.test(text)) throw fail('CORRUPT_COLLECTION', `${path.join(home, POINTER)} names no version ('${text.slice(0, 40)}'); rebuild the collection with --replace`);
  return text;
}

/** What changes when the pointer is replaced (its inode), cheap enough to check before every request. */
export function pointerIdentity(home: string): string | undefined {
  try {
    const st = fs.statSync(path.join(home, POINTER));
    return `${st.ino}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * Complete versions (a build finished them) that nothing replaced, oldest first: what is left of a
 * collection whose pointer was lost (deleted by hand, a damaged disk). They are never swept without a pointer.
 */
export function orphanVersions(home: string): string[] {
  return entries(home)
    .filter((f) => {
      const m = VERSION.exec(f);
      return m !== null && fs.existsSync(path.join(home, f, COMPLETE)) && !fs.existsSync(path.join(home, f, REPLACED));
    })
    .sort();
}

/** Whether `home` holds a collection written by the first on-disk format. */
export function isLegacy(home: string): boolean {
  return !fs.existsSync(path.join(home, POINTER)) && fs.existsSync(path.join(home, 'catalogue.db'));
}

/** Creates the folder of a new, not yet live version. */
export function newVersion(home: string): CollectionPaths {
  const version = `v-${Date.now().toString(36)}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const p = versionPaths(home, version);
  fs.mkdirSync(p.dir, { recursive: true });
  return p;
}

/** Makes a rename in `dir` durable where the platform allows (some file systems refuse fsync on folders). */
function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // the rename is done; only its durability across a power cut is left to the file system
  }
}

/** Writes `data` to `file` durably and atomically: a temp file in the same folder, fsync, rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/**
 * Makes `version` live in one atomic step. Without `replace` the pointer is created exclusively (a hard link of
 * the written temp file), so of two builds racing to create a collection one wins and the other gets
 * COLLECTION_EXISTS.
 */
export function publish(home: string, version: string, o: { replace: boolean; name: string }): void {
  const pointer = path.join(home, POINTER);
  fs.writeFileSync(path.join(home, version, COMPLETE), '');
  if (o.replace) writeFileAtomic(pointer, `${version}\n`);
  else {
    const tmp = `${pointer}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    fs.writeFileSync(tmp, `${version}\n`);
    try {
      fs.linkSync(tmp, pointer);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw fail('COLLECTION_EXISTS', `collection '${o.name}' was created by another process meanwhile; pass --replace to rebuild it`, e);
      throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  fsyncDir(home);
}

/** Marker a replace leaves in the version it replaces (written before the pointer moves). */
const REPLACED = 'REPLACED';
/** Marker of a version whose build finished (written just before it is published). */
const COMPLETE = 'COMPLETE';

/**
 * What a build was asked (source, limits, model flags), written into its version once its model is saved: a build
 * killed after that can be resumed by the same command, so the sweep keeps it for the next build of that name.
 */
const PLAN = 'build.json';

/** Whether a version's build never finished: neither complete nor replaced. */
function unfinished(home: string, version: string): boolean {
  return !fs.existsSync(path.join(home, version, COMPLETE)) && !fs.existsSync(path.join(home, version, REPLACED));
}

/** Writes the plan of a build into its version folder (atomically). */
export function writePlan(home: string, version: string, plan: string): void {
  writeFileAtomic(path.join(home, version, PLAN), plan);
}

/** The plan of an interrupted build, or undefined for a version that is not one. */
export function readPlan(home: string, version: string): string | undefined {
  try {
    return fs.readFileSync(path.join(home, version, PLAN), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Versions whose build stopped before publishing (never complete, never replaced), oldest first, with their plan
 * where they recorded one. Call it holding the build lock: then no build of this name runs, whatever the pids say
 * (a container gives every run the same pid).
 */
export function interruptedVersions(home: string): { version: string; plan: string | undefined }[] {
  return entries(home)
    .filter((f) => VERSION.test(f) && unfinished(home, f))
    .sort()
    .map((version) => ({ version, plan: readPlan(home, version) }));
}

/** Renames an interrupted version to this process (a resumed build), so that no sweep takes it; returns its new name. */
export function claimVersion(home: string, version: string): string {
  const m = /^v-([a-z0-9]+)-\d+-([a-f0-9]{6})$/.exec(version);
  if (!m) throw fail('INTERNAL', `'${version}' names no version`);
  const mine = `v-${m[1]}-${process.pid}-${m[2]}`;
  fs.renameSync(path.join(home, version), path.join(home, mine));
  return mine;
}

/** Marks `version` as being replaced, so that once it is not live any process may sweep it. */
export function markReplaced(home: string, version: string, by: string): void {
  fs.writeFileSync(path.join(home, version, REPLACED), `${by}\n`);
}

/** Removes a version that is no longer live (best effort: a reader may still hold its files open, which POSIX allows). */
export function removeVersion(home: string, version: string): void {
  try {
    fs.rmSync(path.join(home, version), { recursive: true, force: true });
  } catch {
    // a stale process wrote into it meanwhile: the next sweep removes it
  }
}

/** Takes back a replace marker when the replace did not happen. */
export function unmarkReplaced(home: string, version: string): void {
  fs.rmSync(path.join(home, version, REPLACED), { force: true });
}

/** Removes the first format's files once a version is live beside them. */
export function removeLegacy(home: string): void {
  for (const f of LEGACY) fs.rmSync(path.join(home, f), { recursive: true, force: true });
  for (const f of fs.readdirSync(home)) if (f.startsWith('codes.hnsw.tmp-')) fs.rmSync(path.join(home, f), { force: true });
}

/** Leftovers in `dir` that are safe to remove: temp files of dead processes. */
export function deadTempFiles(dir: string): string[] {
  return entries(dir).filter((f) => {
    const m = TEMP.exec(f);
    return m !== null && !isAlive(Number(m[1]));
  });
}

/**
 * Removes what crashed or finished processes left in a collection's folder: versions that are not live and were
 * replaced or whose builder is gone (killed builds, except those that can be resumed), temp files of dead processes,
 * legacy files beside a pointer.
 */
export function sweepHome(home: string): string[] {
  const removed: string[] = [];
  for (const f of fs.readdirSync(home)) {
    const m = VERSION.exec(f);
    if (!m || !(fs.existsSync(path.join(home, f, REPLACED)) || !isAlive(Number(m[1])))) continue;
    // an interrupted build that can be resumed is left to the next build of this name (which resumes or removes it)
    if (unfinished(home, f) && readPlan(home, f) !== undefined) continue;
    // The pointer is read again for each candidate: a replace may have made it live a moment ago.
    const live = readPointer(home);
    if (live === undefined || f === live) continue;
    removeVersion(home, f);
    removed.push(f);
  }
  const live = readPointer(home);
  if (live === undefined) return removed;
  removed.push(...sweepTemps(home), ...sweepTemps(path.join(home, live)));
  if (fs.existsSync(path.join(home, 'catalogue.db'))) {
    removeLegacy(home);
    removed.push('catalogue.db (format 1)');
  }
  return removed;
}

const GRAPH = /^graph-(\d+)\.hnsw$/;

/** The graph file of generation `gen` in a version folder. */
export function graphFile(dir: string, gen: number): string {
  return path.join(dir, `graph-${gen}.hnsw`);
}

/** Generations of the saved graph files in a version folder, newest first. */
export function savedGraphs(dir: string): number[] {
  return entries(dir).map((f) => GRAPH.exec(f)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
}

/** Removes temp files of dead processes from a folder; returns their names. */
export function sweepTemps(dir: string): string[] {
  const dead = deadTempFiles(dir);
  for (const f of dead) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  return dead;
}

/** Removes graph files older than `gen` and temp files of dead processes from a version folder. */
export function sweepGraphs(dir: string, gen: number): void {
  for (const g of savedGraphs(dir)) if (g < gen) fs.rmSync(graphFile(dir, g), { force: true });
  sweepTemps(dir);
}
