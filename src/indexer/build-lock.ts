import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fail } from '../errors.js';
import { validateName } from './paths.js';

/** Where the build locks of a data directory live (a dot folder: never listed as a collection). */
const LOCKS = '.locks';

function lockFile(dataDir: string, name: string): string {
  return path.join(dataDir, LOCKS, `${validateName(name)}.lock`);
}

/**
 * One build of a collection name at a time, across processes: an exclusive SQLite lock on
 * `<dataDir>/.locks/<name>.lock`. The operating system releases it when the process dies, however it dies, so a
 * killed build never leaves a stale lock behind and no timer has to guess whether its holder still lives.
 */
export class BuildLock {
  private constructor(
    private db: Database.Database | undefined,
    readonly name: string,
  ) {}

  /**
   * Takes the lock, waiting at most `waitMs` (SQLite's busy timeout): long enough to ride out another process's
   * `isHeld` probe, which holds it for an instant. Undefined when another build of that name holds it.
   */
  static tryAcquire(dataDir: string, name: string, waitMs = 2000): BuildLock | undefined {
    return BuildLock.tryFile(lockFile(dataDir, name), name, waitMs);
  }

  /** The same lock on any file (a replica's cache); it goes with the process that holds it. */
  static tryFile(file: string, name: string, waitMs = 2000): BuildLock | undefined {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file, { timeout: waitMs });
    try {
      db.exec('BEGIN EXCLUSIVE');
      return new BuildLock(db, name);
    } catch (e) {
      db.close();
      if ((e as { code?: string }).code === 'SQLITE_BUSY') return undefined;
      throw fail('INTERNAL', `cannot take the build lock ${file}: ${(e as Error).message}; check that the data directory is writable`, e);
    }
  }

  /** Whether a build of that name runs now (in any process). */
  static isHeld(dataDir: string, name: string): boolean {
    if (!fs.existsSync(lockFile(dataDir, name))) return false;
    const probe = BuildLock.tryAcquire(dataDir, name, 0);
    probe?.release();
    return probe === undefined;
  }

  get held(): boolean {
    return this.db !== undefined;
  }

  /** Releases the lock (idempotent). */
  release(): void {
    const db = this.db;
    this.db = undefined;
    if (!db) return;
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  }
}

/** COLLECTION_BUSY for a name whose build runs in another process, saying what to do. */
export function buildBusy(name: string): never {
  throw fail('COLLECTION_BUSY', `collection '${name}' is being built by another process; wait for that build to finish (\`latentdex info --collection ${name}\` then shows it) or stop it`);
}
