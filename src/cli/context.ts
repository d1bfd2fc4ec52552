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
  return { ...g, dataDir: g.dataDir ?? ctx.env.dataDir, quiet: Boolean(g.quiet || ctx.env.quiet) };
}

/** Initialises the tfjs backend and logs which one runs. */
export async function startBackend(ctx: Ctx): Promise<void> {
  const g = globals(ctx);
  const name = await initBackend({ prefer: g.backend ?? ctx.env.backend });
  log(`tfjs backend: ${name}`, g.quiet);
}
