import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fail, messageOf } from '../errors.js';

type NpyArray = Float32Array | Int32Array | Uint8Array;

function descr(a: NpyArray): string {
  if (a instanceof Float32Array) return '<f4';
  if (a instanceof Int32Array) return '<i4';
  return '|u1';
}

/** Serialises a C-order array as NumPy .npy (format 1.0). */
export function toNpy(data: NpyArray, shape: number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw fail('INVALID_DIM', `npy shape ${shape.join('x')} does not match ${data.length} values`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr(data)}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const pre = 10;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, ' ') + '\n';
  const head = Buffer.alloc(pre);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Parses a .npy written by toNpy (little-endian f4 / i4 / u1, C order). */
export function fromNpy(buf: Buffer): { data: NpyArray; shape: number[] } {
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw fail('BAD_FILE', 'not a .npy file (bad magic)');
  const hlen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + hlen).toString('latin1');
  const d = /'descr': '([<|]\w\d)'/.exec(header)?.[1];
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = buf.subarray(10 + hlen);
  const copy = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  const data = d === '<f4' ? new Float32Array(copy) : d === '<i4' ? new Int32Array(copy) : new Uint8Array(copy);
  return { data, shape };
}

/** Writes a file atomically: temp name, then rename. */
export async function writeFileAtomic(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    const folder = path.dirname(path.resolve(file));
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(folder);
    throw fail('BAD_FILE', missing ? `cannot write '${file}': folder '${folder}' does not exist; make it or write elsewhere` : `cannot write '${file}' (${messageOf(e)}); check that its folder is writable`, e);
  }
}

/**
 * Writes codes as FILE.npy (float32 n × d), FILE.labels.npy (int32; -1 where unknown) and FILE.keys.json.
 * Labels that are all integers are kept as such; otherwise they are numbered in sorted order and the names
 * are listed in keys.json. Returns the path of the .npy written.
 */
export async function writeCodes(file: string, codes: Float32Array, dim: number, keys: string[], labels: (string | null)[]): Promise<string> {
  const n = keys.length;
  const allInt = labels.every((l) => l === null || /^-?\d+$/.test(l));
  const names = allInt ? [] : [...new Set(labels.filter((l): l is string => l !== null))].sort();
  const ids = new Int32Array(n);
  labels.forEach((l, i) => (ids[i] = l === null ? -1 : allInt ? Number(l) : names.indexOf(l)));
  const base = file.replace(/\.npy$/, '');
  await writeFileAtomic(`${base}.npy`, toNpy(codes, [n, dim]));
  await writeFileAtomic(`${base}.labels.npy`, toNpy(ids, [n]));
  await writeFileAtomic(`${base}.keys.json`, JSON.stringify(names.length ? { keys, labelNames: names } : { keys }));
  return `${base}.npy`;
}
