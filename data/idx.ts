import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import zlib from 'node:zlib';
import path from 'node:path';
import { fail, messageOf } from '../src/errors.js';
import type { ImageRows, ImageSet } from './images.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses an IDX file (unsigned-byte payload, as MNIST and Fashion-MNIST ship), gzipped or not.
 * @param payloadOnDisk bytes after the header in the file when `buf` holds only the header (no data is returned then)
 */
export function parseIdx(buf: Buffer, name = 'IDX file', payloadOnDisk?: number): IdxArray {
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
  const found = payloadOnDisk ?? bytes.length - header;
  if (found < size) {
    throw fail('BAD_FILE', `${name}: file is truncated: header promises ${size} bytes of data (${dims.join('x')}), found ${found}`);
  }
  return { dims, data: payloadOnDisk === undefined ? new Uint8Array(bytes.buffer, bytes.byteOffset + header, size) : new Uint8Array(0) };
}

async function readFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw fail('BAD_SOURCE', `cannot read '${file}': ${messageOf(e)}`, e);
  }
}

function splitSpec(spec: string): [string, string | undefined] {
  const [imgFile, labelFile, extra] = spec.split(',');
  if (!imgFile || extra !== undefined) throw fail('BAD_SOURCE', `idx source needs 'idx:IMAGES[,LABELS]', got 'idx:${spec}'`);
  return [imgFile, labelFile];
}

function imageDims(dims: number[], imgFile: string): [number, number, number, number] {
  if (dims.length < 3) throw fail('BAD_FILE', `${imgFile}: an image IDX file has 3 or 4 dimensions, this one has ${dims.length}`);
  const [n, h, w, c = 1] = dims as [number, number, number, number?];
  return [n, h, w, c];
}

/** Everything of an IDX image set but its pixels: keys, labels (read from LABELS), shape. */
async function idxMeta(spec: string, imgFile: string, labelFile: string | undefined, dims: number[]): Promise<Omit<ImageSet, 'pixels'>> {
  const [n, h, w, c] = imageDims(dims, imgFile);
  let labels: (string | null)[] = new Array<string | null>(n).fill(null);
  if (labelFile) {
    const lab = parseIdx(await readFile(labelFile), labelFile);
    if (lab.dims.length !== 1) throw fail('BAD_FILE', `${labelFile}: a label IDX file has 1 dimension, this one has ${lab.dims.length}`);
    if (lab.dims[0] !== n) {
      throw fail('BAD_FILE', `count mismatch: ${imgFile} holds ${n} images but ${labelFile} holds ${lab.dims[0]} labels`);
    }
    labels = Array.from(lab.data, (v) => String(v));
  }
  const base = path.basename(imgFile).replace(/(\.gz)?$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  const keys = Array.from({ length: n }, (_, i) => `${base}-${i}`);
  return { kind: 'image', source: `idx:${spec}`, width: w, height: h, channels: c, keys, labels, uris: keys.map((_, i) => `${imgFile}#${i}`), skipped: [], roots: [] };
}

/** `idx:IMAGES[,LABELS]`: images as n×h×w (or n×h×w×c) unsigned bytes, labels n unsigned bytes. */
export async function loadIdx(spec: string): Promise<ImageSet> {
  const [imgFile, labelFile] = splitSpec(spec);
  const img = parseIdx(await readFile(imgFile), imgFile);
  return { ...(await idxMeta(spec, imgFile, labelFile, img.dims)), pixels: img.data };
}

/**
 * Opens `idx:IMAGES[,LABELS]` for reading in batches when IMAGES is uncompressed (a gzip stream cannot be read at a
 * row); undefined for a gzipped file, which `loadIdx` reads whole.
 */
export async function openIdxImages(spec: string): Promise<ImageRows | undefined> {
  const [imgFile, labelFile] = splitSpec(spec);
  let fd: number;
  try {
    fd = fsSync.openSync(imgFile, 'r');
  } catch (e) {
    throw fail('BAD_SOURCE', `cannot read '${imgFile}': ${messageOf(e)}`, e);
  }
  try {
    const head = Buffer.alloc(4 + 4 * 4);
    const got = fsSync.readSync(fd, head, 0, head.length, 0);
    if (got >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      fsSync.closeSync(fd);
      return undefined;
    }
    const ndims = head[3] ?? 0;
    const headerBytes = 4 + 4 * ndims;
    // the header checks of parseIdx, on the header alone (its size check counts the file's bytes)
    const size = fsSync.fstatSync(fd).size;
    const dims = parseIdx(head.subarray(0, Math.min(got, headerBytes)), imgFile, size - headerBytes).dims;
    const meta = await idxMeta(spec, imgFile, labelFile, dims);
    const row = meta.width * meta.height * meta.channels;
    return {
      meta,
      read(rows) {
        const out = new Uint8Array(rows.length * row);
        for (let i = 0; i < rows.length; ) {
          let j = i + 1;
          while (j < rows.length && rows[j] === rows[j - 1]! + 1) j++;
          const want = (j - i) * row;
          // in pieces: one read returns at most ~2 GB
          for (let got = 0; got < want; ) {
            const n = fsSync.readSync(fd, out, i * row + got, Math.min(want - got, 1 << 30), headerBytes + rows[i]! * row + got);
            if (n === 0) throw fail('BAD_FILE', `${imgFile}: file ended inside row ${rows[i]! + Math.floor(got / row)}; it was truncated while being read`);
            got += n;
          }
          i = j;
        }
        return out;
      },
      close: () => fsSync.closeSync(fd),
    };
  } catch (e) {
    try {
      fsSync.closeSync(fd);
    } catch {
      // closed above
    }
    throw e;
  }
}
