import fs from 'node:fs/promises';
import zlib from 'node:zlib';
import path from 'node:path';
import { fail, messageOf } from '../src/errors.js';
import type { ImageSet } from './images.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses an IDX file (unsigned-byte payload, as MNIST and Fashion-MNIST ship), gzipped or not. */
export function parseIdx(buf: Buffer, name = 'IDX file'): IdxArray {
  let bytes = buf;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw fail('BAD_FILE', `${name}: gzip data is corrupt or truncated (${messageOf(e)}); download the file again`, e);
    }
  }
  if (bytes.length < 4) throw fail('BAD_FILE', `${name}: file is truncated (${bytes.length} bytes, no IDX header)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw fail('BAD_FILE', `${name}: wrong IDX magic 0x${bytes.subarray(0, 4).toString('hex')}; expected 0x000008NN (an MNIST-style IDX file)`);
  }
  if (bytes[2] !== 0x08) {
    throw fail('BAD_FILE', `${name}: IDX element type 0x${bytes[2]!.toString(16)} is not supported; only unsigned bytes (0x08) are`);
  }
  const ndims = bytes[3]!;
  if (ndims < 1 || ndims > 4) throw fail('BAD_FILE', `${name}: IDX has ${ndims} dimensions; expected 1 (labels) or 3 (images)`);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) throw fail('BAD_FILE', `${name}: file is truncated inside its header`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(bytes.readUInt32BE(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < header + size) {
    throw fail('BAD_FILE', `${name}: file is truncated: header promises ${size} bytes of data (${dims.join('x')}), found ${bytes.length - header}`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + header, size) };
}

async function readFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw fail('BAD_SOURCE', `cannot read '${file}': ${messageOf(e)}`, e);
  }
}

/** `idx:IMAGES[,LABELS]`: images as n×h×w (or n×h×w×c) unsigned bytes, labels n unsigned bytes. */
export async function loadIdx(spec: string): Promise<ImageSet> {
  const [imgFile, labelFile, extra] = spec.split(',');
  if (!imgFile || extra !== undefined) throw fail('BAD_SOURCE', `idx source needs 'idx:IMAGES[,LABELS]', got 'idx:${spec}'`);
  const img = parseIdx(await readFile(imgFile), imgFile);
  if (img.dims.length < 3) throw fail('BAD_FILE', `${imgFile}: an image IDX file has 3 or 4 dimensions, this one has ${img.dims.length}`);
  const [n, h, w, c = 1] = img.dims as [number, number, number, number?];
  let labels: (string | null)[] = new Array<string | null>(n).fill(null);
  if (labelFile) {
    const lab = parseIdx(await readFile(labelFile), labelFile);
    if (lab.dims.length !== 1) throw fail('BAD_FILE', `${labelFile}: a label IDX file has 1 dimension, this one has ${lab.dims.length}`);
    if (lab.dims[0] !== n) {
      throw fail('BAD_FILE', `count mismatch: ${imgFile} holds ${n} images but ${labelFile} holds ${lab.dims[0]} labels`);
    }
    labels = Array.from(lab.data, (v) => String(v));
  }
  const pixels = img.data;
  const base = path.basename(imgFile).replace(/(\.gz)?$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  const keys = Array.from({ length: n }, (_, i) => `${base}-${i}`);
  return { kind: 'image', source: `idx:${spec}`, width: w, height: h, channels: c, keys, labels, uris: keys.map((_, i) => `${imgFile}#${i}`), pixels, skipped: [], roots: [] };
}
