import S3rver from 's3rver';
import { tmpDir } from './helpers.js';

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** the AWS variables a process needs to reach it */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A local S3-compatible server (s3rver) on loopback with one empty bucket, its objects in a fresh folder. */
export async function startS3(bucket = 'latentdex'): Promise<LocalS3> {
  const s = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tmpDir('latentdex-s3-'), configureBuckets: [{ name: bucket }] });
  const { port } = await s.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    close: () => s.close(),
  };
}
