import path from 'node:path';

/** Settings read once from the environment at the entry points and passed down. */
export interface Env {
  dataDir: string;
  backend: string | undefined;
  apiKey: string | undefined;
  quiet: boolean;
  /** the pid of the parent process this one ends with (set for the server's demo builds) */
  exitWithParent: number | undefined;
  /** where an `s3://` store is and how to sign in (the AWS SDK's variables) */
  s3: S3Env;
}

export interface S3Env {
  endpoint: string | undefined;
  region: string | undefined;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
  /** LATENTDEX_STORE_SINGLE_WRITER=1: the user vouches that one writer at a time uses an object store that ignores conditional writes */
  singleWriter: boolean;
}

export const DEFAULT_DATA_DIR = path.join('data', 'collections');

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  return {
    dataDir: env.LATENTDEX_DATA ?? DEFAULT_DATA_DIR,
    backend: env.LATENTDEX_BACKEND || undefined,
    apiKey: env.LATENTDEX_API_KEY || undefined,
    quiet: env.LATENTDEX_QUIET === '1',
    exitWithParent: /^\d+$/.test(env.LATENTDEX_EXIT_WITH_PARENT ?? '') ? Number(env.LATENTDEX_EXIT_WITH_PARENT) : undefined,
    s3: {
      endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT || undefined,
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
      accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
      singleWriter: env.LATENTDEX_STORE_SINGLE_WRITER === '1',
    },
  };
}
