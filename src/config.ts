import path from 'node:path';

/** Settings read once from the environment at the entry points and passed down. */
export interface Env {
  dataDir: string;
  backend: string | undefined;
  apiKey: string | undefined;
  quiet: boolean;
}

export const DEFAULT_DATA_DIR = path.join('data', 'collections');

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  return {
    dataDir: env.LATENTDEX_DATA ?? DEFAULT_DATA_DIR,
    backend: env.LATENTDEX_BACKEND || undefined,
    apiKey: env.LATENTDEX_API_KEY || undefined,
    quiet: env.LATENTDEX_QUIET === '1',
  };
}
