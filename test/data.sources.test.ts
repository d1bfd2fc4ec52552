import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadMnist } from '../data/mnist.js';
import { loadImageSource } from '../data/sources.js';
import { digits, tmpDir, writePngFolder } from './helpers.js';

describe('mnist source', () => {
  it('splits the 10,000 digits 8,000 / 2,000 with every 5th item as test', () => {
    const all = loadMnist(undefined);
    const train = loadMnist('train');
    const test = loadMnist('test');
    assert.equal(all.keys.length, 10000);
    assert.equal(train.keys.length, 8000);
    assert.equal(test.keys.length, 2000);
    assert.equal(test.keys[0], all.keys[4]);
    assert.equal(test.keys[1], all.keys[9]);
    assert.equal(new Set([...train.keys, ...test.keys]).size, 10000);
    assert.equal(all.labels[0], '0');
    const row = all.pixels.subarray(0, 784);
    assert.ok(row instanceof Uint8Array && Math.max(...row) > 128);
  });

  it('keeps every class when limited', async () => {
    const s = await loadImageSource('mnist', { limit: 50 });
    assert.equal(s.keys.length, 50);
    assert.equal(new Set(s.labels).size, 10);
  });

  it('rejects an unknown split and an unknown scheme with BAD_SOURCE', async () => {
    await assert.rejects(loadImageSource('mnist:validation'), { code: 'BAD_SOURCE' });
    await assert.rejects(loadImageSource('s3://bucket'), { code: 'BAD_SOURCE' });
  });
});

describe('dir source', () => {
  it('reads PNGs with the sub-folder as label, resized to the target', async () => {
    const dir = tmpDir();
    writePngFolder(dir, digits(6), 6);
    const s = await loadImageSource(`dir:${dir}`, { target: { width: 14, height: 14, channels: 1 } });
    assert.equal(s.keys.length, 6);
    assert.equal(s.pixels.length, 6 * 14 * 14);
    assert.ok(s.labels.every((l) => l?.startsWith('class-')));
    assert.ok(s.keys[0]!.includes('/'));
  });

  it('rejects an empty folder, a missing folder and a folder of nothing usable with BAD_SOURCE', async () => {
    const empty = tmpDir();
    await assert.rejects(loadImageSource(`dir:${empty}`), { code: 'BAD_SOURCE' });
    await assert.rejects(loadImageSource(`dir:${empty}/missing`), { code: 'BAD_SOURCE' });
    const bad = tmpDir();
    fs.writeFileSync(path.join(bad, 'broken.png'), Buffer.from('not a png at all'));
    await assert.rejects(loadImageSource(`dir:${bad}`), (e: Error & { code?: string }) => e.code === 'BAD_SOURCE' && e.message.includes('broken.png'));
    await assert.rejects(loadImageSource(`dir:${bad}`, { strict: true }), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && e.message.includes('broken.png'));
  });
});
