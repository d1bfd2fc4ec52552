import fs from 'node:fs';
import path from 'node:path';
import type { TrainedModel } from '../encoder/model.js';
import { crashPoint } from '../crash.js';
import { fail, isLatentdexError, messageOf } from '../errors.js';
import { stableJson } from '../stable-json.js';
import { BuildLock, buildBusy } from './build-lock.js';
import { Catalogue, type NewItem } from './catalogue.js';
import { arrayStream, Collection, DEFAULT_LOCK_TIMEOUT_MS, type CreateOptions, type ItemInput, type ItemStream } from './collection.js';
import { claimVersion, interruptedVersions, isLegacy, readPlan, markReplaced, newVersion, unmarkReplaced, orphanVersions, POINTER, publish, readPointer, removeLegacy, removeVersion, writePlan } from './layout.js';
import { homeOf, isValidName, notFound, validateName, versionPaths } from './paths.js';
import { log } from '../progress.js';

export interface BuildOptions extends Omit<CreateOptions, 'name'> {
  dataDir: string;
  name: string;
  /** replace an existing collection of that name (atomically, when the new one is complete) */
  replace?: boolean;
  quiet?: boolean;
  /** the build lock, taken by `reserveBuild` before the model trained (default: taken here, released at the end) */
  lock?: BuildLock;
  /**
   * What this build was asked (source, limits, model flags). A build with a plan can be resumed: killed, the same
   * command with the same plan goes on from its last committed batch, with the model it had trained.
   */
  plan?: Record<string, unknown>;
  /**
   * For a build given the model of the interrupted version it would resume: when that version turns out not to match
   * the source any more (the folder changed), a model trained afresh and its items, so the new build does not index
   * the new source with a model trained on the old one.
   */
  retrain?: () => Promise<{ model: TrainedModel; items: ItemStream; settings: Omit<CreateOptions, 'name' | 'hnsw'> }>;
}

/** One text per plan, whatever order its fields were given in. */
function planText(plan: Record<string, unknown>): string {
  return `${stableJson(plan)}\n`;
}

/** An interrupted build of this plan (call it holding the build lock), or undefined. */
function interruptedBuild(home: string, plan: Record<string, unknown> | undefined): string | undefined {
  if (!plan || !fs.existsSync(home)) return undefined;
  const text = planText(plan);
  return interruptedVersions(home).reverse().find((v) => v.plan === text && fs.existsSync(versionPaths(home, v.version).catalogue))?.version;
}

/**
 * The model folder of an interrupted build of this plan, to resume it with the model it trained instead of training
 * again; undefined when there is none. Call it holding the build lock (`reserveBuild`).
 */
export function resumableModel(dataDir: string, name: string, plan: Record<string, unknown>): string | undefined {
  const home = homeOf(dataDir, name);
  const v = interruptedBuild(home, plan);
  return v && fs.existsSync(versionPaths(home, v).model) ? versionPaths(home, v).model : undefined;
}

/** The live version of a collection, undefined if none (a damaged pointer counts as none for a replace). */
function liveVersion(home: string, replace: boolean): string | undefined {
  try {
    return readPointer(home);
  } catch (e) {
    if (replace && isLatentdexError(e) && e.code === 'CORRUPT_COLLECTION') return undefined;
    throw e;
  }
}

/**
 * Makes `version` live in place of the live version. Holding that version's writer lock while the pointer moves
 * means no write commits into it afterwards: a writer that waited for it finds the collection replaced. If another
 * replace made a third version live meanwhile, the lock is taken on that one instead. Returns the replaced version.
 */
async function swapIn(home: string, version: string, o: BuildOptions): Promise<string | undefined> {
  for (;;) {
    const old = liveVersion(home, Boolean(o.replace));
    if (old && !o.replace) throw fail('COLLECTION_EXISTS', `collection '${o.name}' was created by another process meanwhile; pass --replace to rebuild it`);
    let cat: Catalogue | undefined;
    if (old) {
      try {
        cat = new Catalogue(versionPaths(home, old).catalogue);
      } catch {
        // an unreadable old version takes no writes anyway
      }
    }
    try {
      await cat?.beginWrite({ timeoutMs: DEFAULT_LOCK_TIMEOUT_MS, name: o.name, onWait: () => log(`collection '${o.name}' is being written; replacing it when that write is done`, o.quiet) });
      if (liveVersion(home, Boolean(o.replace)) !== old) continue;
      crashPoint('build:before-publish');
      if (old) markReplaced(home, old, version);
      try {
        publish(home, version, { replace: Boolean(o.replace), name: o.name });
      } catch (e) {
        if (old) unmarkReplaced(home, old);
        throw e;
      }
      return old;
    } finally {
      cat?.close();
    }
  }
}

/**
 * Offline build: saves the model, encodes every item into a new version folder (graph, catalogue), and makes it
 * live by replacing the collection's pointer in one rename. A killed build leaves the previous version live and
 * a folder the next open sweeps; it never leaves no collection.
 */
export async function buildCollection(model: TrainedModel, items: ItemInput[] | ItemStream, o: BuildOptions): Promise<Collection> {
  return withBuildLock(o, () => buildLocked(model, items, o));
}

/**
 * Builds a collection from rows a model encoded elsewhere (a copy of a collection held in a store), published like
 * any build: the previous version stays live until the copy is complete.
 */
export async function buildFromRows(model: TrainedModel, rows: AsyncIterable<readonly NewItem[]>, o: Omit<BuildOptions, 'plan' | 'retrain'>): Promise<Collection> {
  const fill = async (c: Collection) => {
    for await (const batch of rows) await c.putRows(batch);
    c.persist();
  };
  return withBuildLock(o, () => buildLocked(model, [], o, fill));
}

async function withBuildLock(o: BuildOptions, build: () => Promise<Collection>): Promise<Collection> {
  const own = o.lock ? undefined : reserveBuild(o.dataDir, o.name, o);
  if (o.lock && !o.lock.held) throw fail('INTERNAL', `the build lock of '${o.name}' was released before the build; take a new one with reserveBuild`);
  try {
    return await build();
  } finally {
    own?.release();
  }
}

/**
 * Takes the build lock of a collection name and checks that a build may write it: COLLECTION_BUSY while another
 * process builds that name, COLLECTION_EXISTS when it exists and `replace` is not set. Called before a model trains,
 * so that neither answer comes after minutes of work; release the lock when the build ends.
 */
export function reserveBuild(dataDir: string, name: string, o: { replace?: boolean } = {}): BuildLock {
  validateName(name);
  const lock = BuildLock.tryAcquire(dataDir, name) ?? buildBusy(name);
  try {
    refuseExisting(homeOf(dataDir, name), name, Boolean(o.replace));
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

function refuseExisting(home: string, name: string, replace: boolean): void {
  if (replace || !fs.existsSync(home)) return;
  if (liveVersion(home, false) || isLegacy(home) || orphanVersions(home).length > 0) {
    throw fail('COLLECTION_EXISTS', `collection '${name}' already exists; pass --replace to rebuild it or use \`latentdex add\``);
  }
}

/**
 * Resumes an interrupted version; undefined (and the version removed) when it cannot be opened or the source no
 * longer starts with what it stored.
 */
async function resumeVersion(home: string, version: string, stream: ItemStream, o: BuildOptions): Promise<{ c: Collection; from: number } | undefined> {
  let mine = version;
  let c: Collection | undefined;
  try {
    mine = claimVersion(home, version);
    c = await Collection.resume(versionPaths(home, mine), o.name, { quiet: o.quiet });
    const from = await c.storedPrefix(stream);
    if (from >= 0) {
      log(`resuming the interrupted build of '${o.name}' at item ${from} of ${stream.total} (its model is kept)`, o.quiet);
      return { c, from };
    }
    log(`the interrupted build of '${o.name}' stored items the source no longer starts with; building again`, o.quiet);
  } catch (e) {
    log(`the interrupted build of '${o.name}' cannot be resumed (${messageOf(e)}); building again`, o.quiet);
  }
  c?.close({ save: false });
  removeVersion(home, mine);
  return undefined;
}

async function buildLocked(model: TrainedModel, items: ItemInput[] | ItemStream, o: BuildOptions, fill?: (c: Collection) => Promise<void>): Promise<Collection> {
  const home = homeOf(o.dataDir, o.name);
  refuseExisting(home, o.name, Boolean(o.replace));
  const legacy = fs.existsSync(home) && isLegacy(home);
  let stream = Array.isArray(items) ? arrayStream(items) : items;
  const resumable = interruptedBuild(home, o.plan);
  // Under the build lock no other build of this name runs: what other builds left is theirs no more.
  for (const v of fs.existsSync(home) ? interruptedVersions(home) : []) {
    if (v.version === resumable) continue;
    log(`removing an interrupted build of '${o.name}' made with other options (${v.version})`, o.quiet);
    removeVersion(home, v.version);
  }
  const resumed = resumable ? await resumeVersion(home, resumable, stream, o) : undefined;
  let settings: Omit<CreateOptions, 'name'> = o;
  if (resumable && !resumed && o.retrain) {
    log(`training a new model for '${o.name}': the interrupted build's model was trained on what the source held then`, o.quiet);
    const fresh = await o.retrain();
    ({ model, items: stream } = fresh);
    // a text model's baseline vocabulary (rawDim) is the new model's
    settings = { ...o, ...fresh.settings };
  }
  let c = resumed?.c;
  const p = c?.paths ?? newVersion(home);
  let replaced: string | undefined;
  try {
    if (!c) {
      await model.save(p.model);
      c = Collection.create(p, model, { ...settings, name: o.name }, { quiet: o.quiet });
      if (o.plan) writePlan(home, p.version, planText(o.plan));
    }
    try {
      if (fill) await fill(c);
      else await c.ingest(stream, { from: resumed?.from ?? 0, quiet: o.quiet });
    } finally {
      c.close();
    }
    replaced = await swapIn(home, p.version, o);
  } catch (e) {
    // Never remove a version the pointer names (a failure after the rename leaves it live); a version that recorded
    // its plan keeps its committed batches for the same command to resume (after a full disk, say).
    if (liveVersion(home, true) !== p.version) {
      if (readPlan(home, p.version) === undefined) removeVersion(home, p.version);
      else log(`the build of '${o.name}' stopped; its committed batches are kept, and the same command resumes it`, o.quiet);
    }
    throw e;
  }
  crashPoint('build:after-publish');
  if (replaced) removeVersion(home, replaced);
  if (legacy) removeLegacy(home);
  return Collection.open(o.dataDir, o.name, { quiet: o.quiet });
}

/** Whether a collection of that name exists (live, or in the first format, which asks to be rebuilt). */
export function collectionExists(dataDir: string, name: string): boolean {
  const home = homeOf(dataDir, name);
  // A folder whose pointer was lost is listed too: opening it says how to restore it.
  return fs.existsSync(path.join(home, POINTER)) || isLegacy(home) || orphanVersions(home).length > 0;
}

/** Leftovers of the first format's replace (`NAME.old-PID-TIME`), never collections. */
const OLD_SWAP = /\.old-\d+-\d+$/;

/** Names of the collections in a data directory. */
export function listCollections(dataDir: string): string[] {
  if (!fs.existsSync(dataDir)) return [];
  return fs
    .readdirSync(dataDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !OLD_SWAP.test(e.name) && isValidName(e.name))
    .filter((e) => collectionExists(dataDir, e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * Names with a build that stopped after its model was trained (killed, or at an error) and that the same `build`
 * command resumes: what `info` lists beside the collections.
 */
export function resumableBuilds(dataDir: string): string[] {
  if (!fs.existsSync(dataDir)) return [];
  return fs
    .readdirSync(dataDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !OLD_SWAP.test(e.name) && isValidName(e.name))
    .filter((e) => interruptedVersions(path.join(dataDir, e.name)).some((v) => v.plan !== undefined))
    .map((e) => e.name)
    .sort();
}

/** The model folder of a collection's live version; COLLECTION_NOT_FOUND when there is none. */
export function modelDirOf(dataDir: string, name: string): string {
  const home = homeOf(dataDir, name);
  const v = fs.existsSync(home) ? readPointer(home) : undefined;
  if (!v) throw notFound(dataDir, name);
  return versionPaths(home, v).model;
}
