import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadIdx, openIdxImages, parseIdx } from '../data/idx.js';
import { Collection } from '../src/indexer/collection.js';
import { loadImageSource } from '../data/sources.js';
import { backend, digits, tmpDir } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'latentdex.js');

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

describe('openIdxImages', () => {
  it('reads rows of an uncompressed file from disk as loadIdx reads them whole, and leaves gzip to loadIdx', async () => {
    const dir = tmpDir();
    const set = digits(1200);
    const img = path.join(dir, 'imgs.idx');
    fs.writeFileSync(img, idx([1200, 28, 28], set.pixels));
    fs.writeFileSync(path.join(dir, 'labels.idx'), idx([1200], Uint8Array.from(set.labels, Number)));
    const spec = `${img},${path.join(dir, 'labels.idx')}`;
    const whole = await loadIdx(spec);
    const opened = await openIdxImages(spec);
    assert.ok(opened);
    try {
      assert.deepEqual(opened.meta.keys, whole.keys);
      assert.deepEqual(opened.meta.labels, whole.labels);
      const rows = [0, 1, 2, 7, 1199, 500, 501];
      assert.deepEqual(Array.from(opened.read(rows)), rows.flatMap((r) => Array.from(whole.pixels.subarray(r * 784, (r + 1) * 784))));
    } finally {
      opened.close();
    }
    fs.writeFileSync(`${img}.gz`, zlib.gzipSync(fs.readFileSync(img)));
    assert.equal(await openIdxImages(`${img}.gz`), undefined);
    // a file cut short is refused from its header, before any row is read
    fs.writeFileSync(img, idx([1200, 28, 28], set.pixels).subarray(0, 5000));
    await assert.rejects(openIdxImages(img), (e: Error & { code?: string }) => e.code === 'BAD_FILE' && /truncated/.test(e.message));
  });
});

describe('build from an uncompressed IDX file', () => {
  before(backend);

  it('streams it in batches into the same collection a gzipped copy (read whole) gives, training on the same sample', async () => {
    const dir = tmpDir();
    const set = digits(2100);
    for (const sub of ['plain', 'gz']) fs.mkdirSync(path.join(dir, sub));
    const raw = idx([2100, 28, 28], set.pixels);
    fs.writeFileSync(path.join(dir, 'plain', 'imgs'), raw);
    fs.writeFileSync(path.join(dir, 'gz', 'imgs'), zlib.gzipSync(raw));
    const dataDir = tmpDir();
    const build = (sub: string) =>
      spawnSync(process.execPath, [CLI, '--data-dir', dataDir, '-q', 'build', '--collection', sub, '--source', `idx:${path.join(dir, sub, 'imgs')}`, '--limit', '2000', '--train-limit', '700', '--hidden', '32', '--code-dim', '6', '--train-epochs', '1'], { encoding: 'utf8' });
    for (const sub of ['plain', 'gz']) {
      const r = build(sub);
      assert.equal(r.status, 0, r.stderr);
    }
    const [a, b] = [await Collection.open(dataDir, 'plain', { quiet: true }), await Collection.open(dataDir, 'gz', { quiet: true })];
    try {
      assert.equal(a.count, 2000);
      assert.equal(a.model.manifest.training.trainItems + a.model.manifest.training.heldOutItems, 700);
      const rows = b.itemRows();
      assert.deepEqual(a.itemRows().map((r) => r.key), rows.map((r) => r.key));
      for (const r of rows) assert.deepEqual(Array.from(a.codeOf(a.item(r.key).id)), Array.from(b.codeOf(r.id)), r.key);
    } finally {
      a.close();
      b.close();
    }
  });
});
