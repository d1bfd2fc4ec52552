import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import type { Command } from 'commander';
import type { Env } from '../config.js';
import { initBackend } from '../encoder/backend.js';
import { log } from '../progress.js';

/** What every command gets: the environment and the global flags. */
export interface Ctx {
  env: Env;
  program: Command;
}

export interface Globals {
  backend?: string;
  quiet?: boolean;
  dataDir?: string;
}

export function globals(ctx: Ctx): Required<Pick<Globals, 'dataDir'>> & Globals & { quiet: boolean } {
  const g = ctx.program.opts<Globals>();
  const dataDir = g.dataDir ?? ctx.env.dataDir;
  checkDataDir(dataDir);
  return { ...g, dataDir, quiet: Boolean(g.quiet || ctx.env.quiet) };
}

/**
 * Refuses a data directory that is, or lies below, a file: checked before any work, since a build would otherwise
 * train for minutes and then fail to write.
 */
function checkDataDir(dataDir: string): void {
  for (let p = path.resolve(dataDir); ; p = path.dirname(p)) {
    if (fs.existsSync(p)) {
      if (fs.statSync(p).isDirectory()) return;
      const where = p === path.resolve(dataDir) ? `the data directory '${dataDir}' is a file` : `the data directory '${dataDir}' lies below the file '${p}'`;
      throw fail('INVALID_ARGUMENT', `${where}; pass --data-dir a folder (it is created if missing)`);
    }
    if (path.dirname(p) === p) return;
  }
}

/** Initialises the tfjs backend and logs which one runs. */
export async function startBackend(ctx: Ctx): Promise<void> {
  const g = globals(ctx);
  const name = await initBackend({ prefer: g.backend ?? ctx.env.backend });
  log(`tfjs backend: ${name}`, g.quiet);
}
