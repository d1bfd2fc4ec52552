import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../src/search/app.js';
import { SearchEngine } from '../src/search/engine.js';
import { serve, type Running } from '../src/search/serve.js';
import { backend, digitCollection, digits, pngOf } from './helpers.js';

const set = digits(120);
let dataDir: string;
let engine: SearchEngine;
let server: Server;
let port: number;
const logged: string[] = [];
const write = process.stderr.write.bind(process.stderr);

/** Sends raw bytes as one HTTP request and resolves with the response's status (0 when the server closed first). */
function raw(head: string, body: Buffer | string = '', p = port): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const h = /\nConnection:/i.test(head) ? head : `${head}\nConnection: close`;
    const s = net.connect(p, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from(`${h.replace(/\n/g, '\r\n')}\r\n\r\n`), Buffer.from(body)])));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }));
    s.on('error', reject);
  });
}

before(async () => {
  await backend();
  dataDir = await digitCollection(set, 100);
  engine = new SearchEngine({ dataDir, quiet: true });
  const app = createApp({ engine, apiKey: 'k', allowedHosts: ['localhost', '127.0.0.1'] });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
  process.stderr.write = ((chunk: string | Uint8Array) => (logged.push(String(chunk)), true)) as typeof process.stderr.write;
});
after(async () => {
  process.stderr.write = write;
  await new Promise((r) => server.close(r));
  await engine.close();
});

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('malformed requests', () => {
  const host = 'Host: 127.0.0.1';
  const search = 'POST /api/collections/d/search HTTP/1.1';
  const part = (boundary: string) => `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\nContent-Type: image/png\r\n\r\n`;
  const cases: [string, () => Promise<{ status: number; text: string }>, number][] = [
    ['multipart without a boundary', () => raw(`${search}\n${host}\nContent-Type: multipart/form-data\nContent-Length: 5`, 'xxxxx'), 400],
    ['a truncated multipart body', () => {
      const body = part('XyZ') + 'not all of the image';
      return raw(`${search}\n${host}\nContent-Type: multipart/form-data; boundary=XyZ\nContent-Length: ${Buffer.byteLength(body)}`, body);
    }, 400],
    ['the image in another field', () => {
      const body = `${part('B').replace('name="image"', 'name="picture"')}png\r\n--B--\r\n`;
      return raw(`${search}\n${host}\nContent-Type: multipart/form-data; boundary=B\nContent-Length: ${Buffer.byteLength(body)}`, body);
    }, 400],
    ['%ZZ in the path', () => raw(`GET /api/collections/%ZZ HTTP/1.1\n${host}\nConnection: close`), 400],
    ['an overlong UTF-8 %C0%AF in the path', () => raw(`GET /api/collections/d/items/%C0%AF HTTP/1.1\n${host}\nConnection: close`), 400],
    ['a JSON body in a bogus charset', () => raw(`${search}\n${host}\nContent-Type: application/json; charset=bogus-8\nContent-Length: 11`, '{"text":""}'), 415],
    ['a br-encoded body', () => raw(`${search}\n${host}\nContent-Type: application/json\nContent-Encoding: br\nContent-Length: 4`, 'abcd'), 415],
    ['a garbage gzip body', () => raw(`${search}\n${host}\nContent-Type: application/json\nContent-Encoding: gzip\nContent-Length: 6`, 'abcdef'), 400],
    ['a truncated gzip body', () => {
      const gz = zlib.gzipSync(JSON.stringify({ code: Array(8).fill(0.5) })).subarray(0, 12);
      return raw(`${search}\n${host}\nContent-Type: application/json\nContent-Encoding: gzip\nContent-Length: ${gz.length}`, gz);
    }, 400],
    ['code values beyond float32', () => {
      const body = JSON.stringify({ code: [1e308, 0, 0, 0, 0, 0, 0, 0] });
      return raw(`${search}\n${host}\nContent-Type: application/json\nContent-Length: ${body.length}`, body);
    }, 400],
    ['an image sent as the raw body instead of a multipart upload', () => raw(`${search}\n${host}\nContent-Type: image/png\nContent-Length: 8`, PNG_SIGNATURE), 415],
    ['an image to denoise sent as the raw body', () => raw(`POST /api/collections/d/denoise HTTP/1.1\n${host}\nContent-Type: image/png\nContent-Length: 8`, PNG_SIGNATURE), 415],
    ['a batch sent as plain text', () => raw(`POST /api/collections/d/search/batch HTTP/1.1\n${host}\nContent-Type: text/plain\nContent-Length: 8`, 'keys=1,2'), 415],
    ['an item sent as a raw image body', () => raw(`POST /api/collections/d/items HTTP/1.1\n${host}\nAuthorization: Bearer k\nContent-Type: image/png\nContent-Length: 8`, PNG_SIGNATURE), 415],
    ['an empty JSON object', () => raw(`${search}\n${host}\nContent-Type: application/json\nContent-Length: 2`, '{}'), 400],
    ['a JSON null', () => raw(`${search}\n${host}\nContent-Type: application/json\nContent-Length: 4`, 'null'), 400],
    ['a code and a text together', () => {
      const body = JSON.stringify({ code: Array(8).fill(0.5), text: 'both' });
      return raw(`${search}\n${host}\nContent-Type: application/json\nContent-Length: ${body.length}`, body);
    }, 400],
    ['a Host the server does not answer to (DNS rebinding)', () => raw(`GET /api/collections HTTP/1.1\nHost: attacker.example:${port}\nConnection: close`), 421],
  ];
  for (const [what, send, status] of cases) {
    it(`answers ${what} with ${status} and the JSON error, logging nothing`, async () => {
      const before = logged.length;
      const r = await send();
      assert.equal(r.status, status, r.text);
      assert.match(r.text, /"error":\{"code":"[A-Z_]+","message":"[^"]+"/);
      assert.match(r.text, /x-content-type-options: nosniff/i);
      assert.deepEqual(logged.slice(before), []);
    });
  }

  it('still answers good requests after all of them', async () => {
    const r = await raw(`GET /api/collections/d HTTP/1.1\nHost: localhost:${port}\nConnection: close`);
    assert.equal(r.status, 200);
  });
});

describe('uploads from stalling clients', () => {
  let running: Running;
  before(async () => {
    running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true, maxBodies: 3, requestTimeoutMs: 4000 });
  });
  after(() => running.close());

  it('holds at most maxBodies bodies at once (429 beyond), and cuts off a client that stalls (408)', async () => {
    const p = Number(new URL(running.url).port);
    const png = pngOf(set.pixels.subarray(0, 784), 28, 28);
    // Three clients announce 5 MB uploads, send 1 KB and stall.
    const stalled = Array.from({ length: 3 }, () => {
      const s = net.connect(p, '127.0.0.1');
      let text = '';
      s.on('data', (d) => (text += d.toString()));
      s.write(`POST /api/collections/d/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 5000000\r\n\r\n`);
      s.write(Buffer.alloc(1024, 45));
      return { s, closed: new Promise<string>((resolve) => s.on('close', () => resolve(text))) };
    });
    await new Promise<void>((resolve) => {
      const poll = () => running.server.getConnections((_e, n) => (n >= 3 ? resolve() : setImmediate(poll)));
      poll();
    });
    // Their bodies are held until they finish or time out: a fourth upload is refused at once, reads go on.
    let fourth = { status: 0, text: '' };
    for (let i = 0; i < 50 && fourth.status !== 429; i++) {
      fourth = await raw(`POST /api/collections/d/search HTTP/1.1\nHost: 127.0.0.1\nContent-Type: image/png\nContent-Length: ${png.length}`, png, p);
    }
    assert.equal(fourth.status, 429, fourth.text);
    assert.match(fourth.text, /retry-after: 1/i);
    assert.equal((await fetch(`${running.url}/api/collections/d`)).status, 200);
    const texts = await Promise.all(stalled.map((x) => x.closed));
    for (const t of texts) assert.match(t, /^HTTP\/1\.1 408/);
    // The stalled bodies are released: an upload goes through again.
    const fd = new FormData();
    fd.append('image', new Blob([new Uint8Array(png)]), 'q.png');
    assert.equal((await fetch(`${running.url}/api/collections/d/search?k=3`, { method: 'POST', body: fd })).status, 200);
  });
});
