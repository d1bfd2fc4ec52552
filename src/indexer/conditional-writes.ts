import crypto from 'node:crypto';
import aws4 from 'aws4';
import { fail, isLatentdexError, messageOf } from '../errors.js';
import type { StoreSpec } from './store-spec.js';

/**
 * Whether an object store refuses to create an object that exists (`PUT` with `If-None-Match: *`), the one
 * guarantee LanceDB's commits rest on: without it two writers may both write version N+1 and one is lost.
 * - `enforced`: a second create is refused (AWS S3, MinIO, R2, Ceph; a folder on local disk)
 * - `ignored`: the store overwrote the object (s3rver, older S3-compatible servers)
 * - `unknown`: latentdex cannot ask (no keys in the environment: LanceDB signs in on its own)
 */
export type ConditionalWrites = 'enforced' | 'ignored' | 'unknown';

const PROBE_TIMEOUT_MS = 5000;

/**
 * Asks the object store of an `s3://` store whether it enforces `If-None-Match: *`: creates a probe object under the
 * store's prefix twice and removes it. AWS S3 itself (no endpoint of one's own) and folders are known to.
 */
export async function probeConditionalWrites(spec: StoreSpec): Promise<ConditionalWrites> {
  const o = spec.storageOptions;
  if (!spec.uri.startsWith('s3://') || !o.aws_endpoint) return 'enforced';
  if (!o.aws_access_key_id || !o.aws_secret_access_key) return 'unknown';
  const endpoint = new URL(o.aws_endpoint);
  const objectPath = `${endpoint.pathname.replace(/\/+$/, '')}/${spec.uri.slice('s3://'.length)}/.latentdex-probe-${crypto.randomUUID()}`;
  const send = async (method: 'PUT' | 'DELETE', headers: Record<string, string>): Promise<number> => {
    const signed = aws4.sign(
      { host: endpoint.host, path: objectPath, method, service: 's3', region: o.aws_region, headers: method === 'PUT' ? { ...headers, 'Content-Length': '0' } : headers, body: '' },
      { accessKeyId: o.aws_access_key_id, secretAccessKey: o.aws_secret_access_key, sessionToken: o.aws_session_token },
    );
    const hs: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers ?? {})) if (v !== undefined && k.toLowerCase() !== 'host' && k.toLowerCase() !== 'content-length') hs[k] = String(v);
    const r = await fetch(`${endpoint.protocol}//${endpoint.host}${objectPath}`, { method, headers: hs, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await r.arrayBuffer();
    return r.status;
  };
  try {
    const first = await send('PUT', { 'If-None-Match': '*' });
    if (first >= 300) throw fail('STORE_UNREACHABLE', `the object store at ${o.aws_endpoint} refused to create an object under ${spec.uri} (HTTP ${first}); check the bucket, the prefix and that the keys may write there`);
    const second = await send('PUT', { 'If-None-Match': '*' });
    await send('DELETE', {}).catch(() => undefined);
    if (second === 412 || second === 409) return 'enforced';
    if (second < 300) return 'ignored';
    throw fail('STORE_UNREACHABLE', `the object store at ${o.aws_endpoint} answered HTTP ${second} to a conditional write under ${spec.uri}`);
  } catch (e) {
    if (isLatentdexError(e)) throw e;
    const why = e instanceof Error && e.cause !== undefined ? `${messageOf(e)}: ${messageOf(e.cause)}` : messageOf(e);
    throw fail('STORE_UNREACHABLE', `cannot write to the object store at ${o.aws_endpoint}: ${why}; check AWS_ENDPOINT_URL`, e);
  }
}
