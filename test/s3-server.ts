import http from 'node:http';
import S3rver from 's3rver';
import { tmpDir } from './helpers.js';

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** the AWS variables a process needs to reach it */
  env: Record<string, string>;
  close(): Promise<void>;
}

const PRECONDITION_FAILED =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';

/**
 * A local S3-compatible server (s3rver) on loopback with one empty bucket, its objects in a fresh folder.
 * s3rver ignores `If-None-Match: *`; like AWS S3 and MinIO, this server refuses such a PUT of an object that exists
 * (412), one create of a key at a time, unless `conditionalWrites` is false (an object store that ignores them).
 */
export async function startS3(o: { bucket?: string; conditionalWrites?: boolean } = {}): Promise<LocalS3> {
  const bucket = o.bucket ?? 'latentdex';
  const s = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tmpDir('latentdex-s3-'), configureBuckets: [{ name: bucket }] });
  const { port } = await s.run();
  const forward = (req: http.IncomingMessage, res: http.ServerResponse) =>
    new Promise<void>((done) => {
      const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', done);
      });
      up.on('error', () => {
        res.destroy();
        done();
      });
      req.pipe(up);
    });
  const exists = (url: string) =>
    new Promise<boolean>((resolve, reject) => {
      http.request({ host: '127.0.0.1', port, method: 'HEAD', path: url }, (r) => {
        r.resume();
        resolve(r.statusCode === 200);
      }).on('error', reject).end();
    });
  // creates of one key, one after another: the existence check and the PUT are one step
  const creating = new Map<string, Promise<void>>();
  const proxy = http.createServer((req, res) => {
    if (o.conditionalWrites === false || req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return void forward(req, res);
    const key = (req.url ?? '').split('?')[0]!;
    const run = (creating.get(key) ?? Promise.resolve()).then(async () => {
      if (await exists(key)) {
        req.resume();
        res.writeHead(412, { 'content-type': 'application/xml' }).end(PRECONDITION_FAILED);
      } else await forward(req, res);
    });
    const tail = run.catch(() => void res.destroy());
    creating.set(key, tail);
    void tail.then(() => creating.get(key) === tail && creating.delete(key));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  return {
    endpoint,
    bucket,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      await s.close();
    },
  };
}
