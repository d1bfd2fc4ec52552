import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { loadIdx, parseIdx } from '../data/idx.js';
import { loadImageSource } from '../data/sources.js';
import { tmpDir } from './helpers.js';

function idx(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

describe('parseIdx', () => {
  it('reads dimensions and payload of a plain and a gzipped file alike', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
    for (const buf of [idx([2, 3, 4], data), zlib.gzipSync(idx([2, 3, 4], data))]) {
      const a = parseIdx(buf);
      assert.deepEqual(a.dims, [2, 3, 4]);
      assert.deepEqual(Array.from(a.data), Array.from(data));
    }
  });

  it('rejects a wrong magic number with BAD_FILE', () => {
    const buf = idx([1], new Uint8Array([1]));
    buf[0] = 0x12;
    assert.throws(() => parseIdx(buf, 'x.idx'), { code: 'BAD_FILE' });
  });

  it('rejects a file truncated inside its data', () => {
    const buf = idx([10, 28, 28], new Uint8Array(10 * 28 * 28)).subarray(0, 500);
    assert.throws(() => parseIdx(buf), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && /truncated/.test(e.message));
  });

  it('rejects corrupt gzip data', () => {
    const gz = zlib.gzipSync(idx([3], new Uint8Array([1, 2, 3])));
    assert.throws(() => parseIdx(gz.subarray(0, gz.length - 6)), { code: 'BAD_FILE' });
  });
});

describe('loadIdx', () => {
  it('loads images as their bytes with their labels', async () => {
    const dir = tmpDir();
    const px = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => (i * 20) % 256);
    fs.writeFileSync(path.join(dir, 'img.gz'), zlib.gzipSync(idx([3, 2, 2], px)));
    fs.writeFileSync(path.join(dir, 'lab'), idx([3], new Uint8Array([7, 1, 9])));
    const s = await loadImageSource(`idx:${dir}/img.gz,${dir}/lab`);
    assert.equal(s.keys.length, 3);
    assert.equal(s.width, 2);
    assert.deepEqual(s.labels, ['7', '1', '9']);
    assert.equal(s.pixels[1], 20);
    assert.ok(s.pixels instanceof Uint8Array);
  });

  it('rejects a count mismatch between images and labels, naming both files', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'img'), idx([3, 2, 2], new Uint8Array(12)));
    fs.writeFileSync(path.join(dir, 'lab'), idx([2], new Uint8Array(2)));
    await assert.rejects(loadIdx(`${dir}/img,${dir}/lab`), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && e.message.includes('img') && e.message.includes('lab'));
  });

  it('rejects a missing file with BAD_SOURCE', async () => {
    await assert.rejects(loadIdx('/nonexistent/images.idx'), { code: 'BAD_SOURCE' });
  });
});
