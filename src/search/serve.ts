import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppDeps } from './app.js';
import { SearchEngine } from './engine.js';

export interface ServeOptions extends Omit<AppDeps, 'engine'> {
  dataDir: string;
  host: string;
  port: number;
  quiet?: boolean;
}

/** Opens the engine and listens; resolves with the server and its URL once it accepts connections. */
export async function serve(o: ServeOptions, setup?: (engine: SearchEngine) => void): Promise<{ server: Server; url: string; engine: SearchEngine }> {
  const engine = new SearchEngine({ dataDir: o.dataDir, quiet: o.quiet });
  setup?.(engine);
  // Open every collection now so the first query does not pay for it.
  for (const n of engine.names()) await engine.warm(n);
  const app = createApp({ ...o, engine });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(o.port, o.host, () => resolve(s));
    s.on('error', reject);
  });
  const a = server.address() as AddressInfo;
  return { server, url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, engine };
}
