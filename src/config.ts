import path from 'node:path';

/** Settings read once from the environment at the entry points and passed down. */
export interface Env {
  dataDir: string;
  backend: string | undefined;
  apiKey: string | undefined;
  quiet: boolean;
  /** the pid of the parent process this one ends with (set for the server's demo builds) */
  exitWithParent: number | undefined;
}

export const DEFAULT_DATA_DIR = path.join('data', 'collections');

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  return {
    dataDir: env.LATENTDEX_DATA ?? DEFAULT_DATA_DIR,
    backend: env.LATENTDEX_BACKEND || undefined,
    apiKey: env.LATENTDEX_API_KEY || undefined,
    quiet: env.LATENTDEX_QUIET === '1',
    exitWithParent: /^\d+$/.test(env.LATENTDEX_EXIT_WITH_PARENT ?? '') ? Number(env.LATENTDEX_EXIT_WITH_PARENT) : undefined,
  };
}
