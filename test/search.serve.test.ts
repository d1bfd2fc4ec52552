import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { serve } from '../src/search/serve.js';
import { backend, digitCollection, digits, pngOf } from './helpers.js';

const set = digits(120);
let dataDir: string;

before(async () => {
  await backend();
  dataDir = await digitCollection(set, 100);
});

describe('serve', () => {
  it('binds 127.0.0.1 and answers', async () => {
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true });
    assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await fetch(`${running.url}/api/health`)).status, 200);
    await running.close();
    await assert.rejects(fetch(`${running.url}/api/health`));
  });

  it('reports a port in use as INVALID_ARGUMENT, not a crash', async () => {
    const first = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true });
    const port = Number(new URL(first.url).port);
    await assert.rejects(serve({ dataDir, host: '127.0.0.1', port, quiet: true }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /already in use/.test(e.message));
    await first.close();
  });

  it('close() lets handlers of clients that hung up finish before freeing the models', async () => {
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true });
    const logged: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (logged.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      // Count the handlers that start: each runs as tracked engine work.
      let started = 0;
      let allStarted!: () => void;
      const handlersRunning = new Promise<void>((resolve) => (allStarted = resolve));
      const track = running.engine.track.bind(running.engine);
      running.engine.track = (<T>(work: () => Promise<T>) => {
        if (++started === 6) allStarted();
        return track(work);
      }) as typeof running.engine.track;
      const abort = new AbortController();
      const uploads = Array.from({ length: 6 }, (_, i) => {
        const fd = new FormData();
        fd.append('image', new Blob([new Uint8Array(pngOf(set.pixels.subarray((100 + i) * 784, (101 + i) * 784), 28, 28))]), 'q.png');
        return fetch(`${running.url}/api/collections/d/search?k=3`, { method: 'POST', body: fd, signal: abort.signal }).catch(() => 'aborted');
      });
      await handlersRunning;
      // All six handlers are decoding or encoding when their clients hang up and the server shuts down.
      abort.abort();
      await Promise.all(uploads);
      await running.close();
      assert.equal(started, 6);
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(logged.filter((l) => /latentdex:|disposed|internal error/i.test(l)), []);
  });
});
