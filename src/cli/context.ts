import fs from 'node:fs';
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
  // checked before any work: a build would otherwise train for minutes and then fail to write
  if (fs.existsSync(dataDir) && !fs.statSync(dataDir).isDirectory()) throw fail('INVALID_ARGUMENT', `the data directory '${dataDir}' is a file; pass --data-dir a folder (it is created if missing)`);
  return { ...g, dataDir, quiet: Boolean(g.quiet || ctx.env.quiet) };
}

/** Initialises the tfjs backend and logs which one runs. */
export async function startBackend(ctx: Ctx): Promise<void> {
  const g = globals(ctx);
  const name = await initBackend({ prefer: g.backend ?? ctx.env.backend });
  log(`tfjs backend: ${name}`, g.quiet);
}
