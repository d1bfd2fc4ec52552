import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppDeps } from './app.js';
import { SearchEngine } from './engine.js';
import { fail, messageOf } from '../errors.js';
import { log } from '../progress.js';
import type { StoreMirror } from '../indexer/mirror.js';

export interface ServeOptions extends Omit<AppDeps, 'engine' | 'allowedHosts'> {
  dataDir: string;
  host: string;
  port: number;
  quiet?: boolean;
  /** host names accepted in the Host header besides the loopback ones (only checked when bound to loopback) */
  allowedHosts?: string[];
  /** longest time a request may take to arrive, body included (default 30 s) */
  requestTimeoutMs?: number;
  /** how long an HTTP write waits for another process's write before 503 COLLECTION_BUSY (default 5 s) */
  lockTimeoutMs?: number;
  /** a replica of a store: `dataDir` is its cache, writes go to the store (closed with the server) */
  mirror?: StoreMirror;
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** Whether an address to bind is loopback only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface Running {
  server: Server;
  url: string;
  engine: SearchEngine;
  /** Stops accepting connections, waits for handlers in flight, then closes the collections. */
  close(): Promise<void>;
}

/** Opens the engine and listens; resolves once the server accepts connections. */
export async function serve(o: ServeOptions): Promise<Running> {
  const engine = new SearchEngine({ dataDir: o.dataDir, quiet: o.quiet, lockTimeoutMs: o.lockTimeoutMs });
  // Open every collection now so the first query does not pay for it; one that cannot be opened is reported and
  // listed as unavailable, and the others are served.
  for (const n of engine.names()) {
    await engine.warm(n).catch((e: unknown) => log(`collection '${n}' is unavailable: ${messageOf(e)}`, o.quiet));
  }
  const loopback = isLoopback(o.host);
  if (!loopback && !o.apiKey) {
    log(`warning: serving on ${o.host}, reachable from other machines, without LATENTDEX_API_KEY: anyone who can reach it can search and read every collection (writes stay off)`);
  }
  const allowedHosts = loopback ? [...LOOPBACK_HOSTS, ...(o.host === 'localhost' ? [] : [o.host]), ...(o.allowedHosts ?? [])].map((h) => h.toLowerCase()) : o.allowedHosts?.map((h) => h.toLowerCase());
  const app = createApp({ ...o, engine, allowedHosts, ...(o.mirror ? { writer: o.mirror, indexed: o.mirror } : {}) });
  const server = await new Promise<Server>((resolve, reject) => {
    // A client that stalls mid-request (a slow upload) is cut off with 408, so buffered bodies cannot pile up;
    // the check runs every second rather than Node's default 30.
    const requestTimeout = o.requestTimeoutMs ?? 30_000;
    const s = http.createServer({ requestTimeout, headersTimeout: Math.min(requestTimeout, 10_000), connectionsCheckingInterval: Math.min(1000, requestTimeout) }, app);
    s.listen(o.port, o.host, () => resolve(s));
    s.on('error', (e: NodeJS.ErrnoException) => {
      const err = listenError(e, o.host, o.port);
      // the replica's syncs end before the engine's collections close (and before the caller drops the cache)
      void (async () => {
        await o.mirror?.close();
        await engine.close();
      })().finally(() => reject(err));
    });
  });
  const a = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      // A client that hung up leaves its handler running (an upload being decoded); engine.close() waits for it.
      await o.mirror?.close();
      await engine.close();
    })());
  return { server, url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, engine, close };
}

/** A failure to listen on `host:port` as the error a user reads (the port in use, a host not of this machine). */
export function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  return e.code === 'EADDRINUSE'
    ? fail('INVALID_ARGUMENT', `port ${port} on ${host} is already in use; stop the other server or pass --port`, e)
    : fail('INVALID_ARGUMENT', `cannot listen on ${host}:${port} (${e.code ?? e.message}); choose another --host or --port`, e);
}

/** Fails now if `serve` could not listen on `host:port` (before a replica spends minutes copying its collections). */
export async function checkListen(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const s = http.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, host, port)));
    s.listen(port, host, () => s.close(() => resolve()));
  });
}
