import path from 'node:path';
import type { S3Env } from '../config.js';
import { fail } from '../errors.js';

/** Where a collection lives when it is not in the local data directory: a LanceDB database (folder or S3 prefix). */
export interface StoreSpec {
  kind: 'lancedb';
  /** what LanceDB connects to: an absolute folder or `s3://bucket/prefix` */
  uri: string;
  /** object-store settings LanceDB passes to its S3 client */
  storageOptions: Record<string, string>;
  /** write even when the object store ignores conditional writes (the user vouches for one writer at a time) */
  singleWriter: boolean;
}

const STORE_HELP = 'use --store lancedb:DIR or --store lancedb:s3://BUCKET/PREFIX (endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)';

/**
 * Reads `--store`: `lancedb:DIR` (a folder, created if missing) or `lancedb:s3://BUCKET/PREFIX`, whose endpoint and
 * credentials come from the AWS variables. The client gives up after a few seconds, so an unreachable endpoint is
 * an answer, not a hang.
 */
export function parseStore(value: string, s3: S3Env): StoreSpec {
  const m = /^lancedb:(.+)$/.exec(value);
  if (!m) throw fail('INVALID_ARGUMENT', `unknown store '${value}'; ${STORE_HELP}`);
  const target = m[1]!;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') {
    const dir = scheme === 'file' ? target.slice('file://'.length) : target;
    if (!dir) throw fail('INVALID_ARGUMENT', `store '${value}' names no folder; ${STORE_HELP}`);
    return { kind: 'lancedb', uri: path.resolve(dir), storageOptions: {}, singleWriter: false };
  }
  if (scheme !== 's3') throw fail('INVALID_ARGUMENT', `store '${value}' is on '${scheme}://', which latentdex does not connect to; ${STORE_HELP}`);
  const u = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/[^?#]*)?$/i.exec(target);
  if (!u) throw fail('INVALID_ARGUMENT', `store '${value}' is not s3://BUCKET/PREFIX with a valid bucket name (3 to 63 letters, digits, dots and hyphens); ${STORE_HELP}`);
  const prefix = (u[2] ?? '').replace(/^\/+|\/+$/g, '');
  const o: Record<string, string> = {
    // fail within seconds when the endpoint does not answer (the defaults retry for minutes)
    connect_timeout: '3s',
    // a request (a data file of 8,192 rows: tens of MB) that takes longer is a store that stopped answering
    timeout: '20s',
    client_max_retries: '2',
    client_retry_timeout: '10',
  };
  if (s3.endpoint) {
    let e: URL;
    try {
      e = new URL(s3.endpoint);
    } catch {
      throw fail('INVALID_ARGUMENT', `AWS_ENDPOINT_URL '${s3.endpoint}' is not a URL; set it to e.g. http://127.0.0.1:4568`);
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw fail('INVALID_ARGUMENT', `AWS_ENDPOINT_URL '${s3.endpoint}' must be http:// or https://`);
    o.aws_endpoint = s3.endpoint;
    if (e.protocol === 'http:') o.allow_http = 'true';
    // an endpoint of one's own (MinIO, s3rver, Ceph) names the bucket in the path
    o.aws_virtual_hosted_style_request = 'false';
  }
  o.aws_region = s3.region ?? 'us-east-1';
  if (s3.accessKeyId) o.aws_access_key_id = s3.accessKeyId;
  if (s3.secretAccessKey) o.aws_secret_access_key = s3.secretAccessKey;
  if (s3.sessionToken) o.aws_session_token = s3.sessionToken;
  return { kind: 'lancedb', uri: prefix ? `s3://${u[1]}/${prefix}` : `s3://${u[1]}`, storageOptions: o, singleWriter: s3.singleWriter };
}

/** The store as a user named it, without credentials (for messages and logs). */
export function storeLabel(spec: StoreSpec): string {
  return `lancedb:${spec.uri}${spec.storageOptions.aws_endpoint ? ` (endpoint ${spec.storageOptions.aws_endpoint})` : ''}`;
}
