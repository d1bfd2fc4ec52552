import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { selectImages } from '../data/images.js';
import { buildCollection } from '../src/indexer/build.js';
import { imageItems } from '../src/indexer/items.js';
import { serve } from '../src/search/serve.js';
import { backend, digits, pngOf, smallModel, tmpDir } from './helpers.js';

const set = digits(120);
let dataDir: string;

before(async () => {
  await backend();
  dataDir = tmpDir();
  const model = await smallModel(set, { epochs: 1 });
  (await buildCollection(model, imageItems(selectImages(set, Array.from({ length: 100 }, (_, i) => i))), { dataDir, name: 'd', kind: 'image', space: 'l2', rawDim: 784, rawType: 'u8', params: {}, quiet: true })).close();
  model.dispose();
});

describe('serve', () => {
  it('binds 127.0.0.1 and answers, and close() lets uploads in flight finish before freeing the models', async () => {
    const running = await serve({ dataDir, host: '127.0.0.1', port: 0, quiet: true });
    assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${running.url}/api/health`);
    assert.equal(health.status, 200);
    let arrived = 0;
    const allArrived = new Promise<void>((resolve) => running.server.on('request', () => ++arrived === 6 && resolve()));
    const uploads = Array.from({ length: 6 }, (_, i) => {
      const fd = new FormData();
      fd.append('image', new Blob([new Uint8Array(pngOf(set.pixels.subarray((100 + i) * 784, (101 + i) * 784), 28, 28))]), 'q.png');
      return fetch(`${running.url}/api/collections/d/search?k=3`, { method: 'POST', body: fd }).then((r) => r.status);
    });
    // Close once all six reached the server, while they are still being decoded and encoded.
    await allArrived;
    const closed = running.close();
    assert.deepEqual(await Promise.all(uploads), [200, 200, 200, 200, 200, 200]);
    await closed;
    await assert.rejects(fetch(`${running.url}/api/health`));
  });
});
