import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppDeps } from './app.js';
import { SearchEngine } from './engine.js';
import { fail } from '../errors.js';

export interface ServeOptions extends Omit<AppDeps, 'engine'> {
  dataDir: string;
  host: string;
  port: number;
  quiet?: boolean;
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
  const engine = new SearchEngine({ dataDir: o.dataDir, quiet: o.quiet });
  // Open every collection now so the first query does not pay for it.
  for (const n of engine.names()) await engine.warm(n);
  const app = createApp({ ...o, engine });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(o.port, o.host, () => resolve(s));
    s.on('error', (e: NodeJS.ErrnoException) => {
      void engine.close();
      reject(
        e.code === 'EADDRINUSE'
          ? fail('INVALID_ARGUMENT', `port ${o.port} on ${o.host} is already in use; stop the other server or pass --port`, e)
          : e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL'
            ? fail('INVALID_ARGUMENT', `cannot listen on ${o.host}:${o.port} (${e.code}); choose another --host or --port`, e)
            : e,
      );
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
      await engine.close();
    })());
  return { server, url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, engine, close };
}
