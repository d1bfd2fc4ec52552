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
 * (412) unless `conditionalWrites` is false (an object store that ignores them), and never shows an object half
 * written: requests for one object are served one after another.
 */
export async function startS3(o: { bucket?: string; conditionalWrites?: boolean } = {}): Promise<LocalS3> {
  const bucket = o.bucket ?? 'latentdex';
  const s = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tmpDir('latentdex-s3-'), configureBuckets: [{ name: bucket }] });
  const { port } = await s.run();
  const forward = (req: http.IncomingMessage, res: http.ServerResponse) =>
    new Promise<void>((done) => {
      // a client that gave up while its request waited is not served: its request would never end
      if (req.destroyed || res.destroyed) return done();
      const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', done);
      });
      up.on('error', () => {
        res.destroy();
        done();
      });
      // nor is one that goes away while served: the requests queued behind it go on
      res.on('close', () => {
        up.destroy();
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
  // requests for one object, one after another: s3rver writes an object in place, so a read during its PUT would
  // see it half written (S3 never shows that), and a conditional create's check and PUT must be one step
  const busy = new Map<string, Promise<void>>();
  // and listings apart from writes: s3rver lists an object being written with the size it has so far (S3 lists it
  // once written), so a listing waits for the writes in flight, and a write for the listings in flight
  const writes = new Set<Promise<void>>();
  const listings = new Set<Promise<void>>();
  const track = (set: Set<Promise<void>>, p: Promise<void>) => {
    set.add(p);
    void p.then(() => set.delete(p));
  };
  const proxy = http.createServer((req, res) => {
    const [key, query = ''] = (req.url ?? '').split('?');
    if (/(^|&)list-type(=|&|$)/.test(query)) {
      const before = [...writes];
      return void track(listings, Promise.all(before).then(() => forward(req, res)));
    }
    if (/(^|&)(uploads|delete)(=|&|$)/.test(query) || key!.split('/').filter(Boolean).length < 2) return void forward(req, res);
    const write = req.method === 'PUT' || req.method === 'POST' || req.method === 'DELETE';
    const listed = write ? [...listings] : [];
    const conditional = o.conditionalWrites !== false && req.method === 'PUT' && req.headers['if-none-match'] === '*';
    const run = (busy.get(key!) ?? Promise.resolve()).then(async () => {
      await Promise.all(listed);
      if (conditional && (await exists(key!))) {
        req.resume();
        res.writeHead(412, { 'content-type': 'application/xml' }).end(PRECONDITION_FAILED);
      } else await forward(req, res);
    });
    const tail = run.catch(() => void res.destroy());
    if (write) track(writes, tail);
    busy.set(key!, tail);
    void tail.then(() => busy.get(key!) === tail && busy.delete(key!));
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
