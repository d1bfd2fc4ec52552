import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fail, messageOf } from '../src/errors.js';

/**
 * Per-item blobs (image previews) spooled to a temporary file while a folder is read, so that memory holds only
 * their offsets: a folder of 100,000 images keeps its previews on disk until the catalogue takes them.
 */
export class BlobSpool {
  private readonly fd: number;
  private readonly where: string;
  private offsets: number[] = [];
  private lengths: number[] = [];
  private end = 0;
  private closed = false;

  /** @param parent the folder to spool in (default the system's temporary folder), made when missing */
  constructor(parent = os.tmpdir()) {
    this.where = parent;
    let dir: string;
    try {
      fs.mkdirSync(parent, { recursive: true });
      dir = fs.mkdtempSync(path.join(parent, 'latentdex-spool-'));
    } catch (e) {
      throw fail('BAD_SOURCE', `cannot make a temporary spool in '${parent}' (${messageOf(e)}); check that the folder is writable`, e);
    }
    const file = path.join(dir, 'blobs');
    this.fd = fs.openSync(file, 'w+');
    // Unlinked at once: the open descriptor keeps the data, and nothing is left behind however the process ends.
    fs.rmSync(dir, { recursive: true, force: true });
  }

  /** Stores the blob of slot `i` (slots may be filled in any order). */
  set(i: number, blob: Buffer): void {
    try {
      for (let done = 0; done < blob.length; ) done += fs.writeSync(this.fd, blob, done, blob.length - done, this.end + done);
    } catch (e) {
      throw fail('INTERNAL', `cannot write the temporary spool in '${this.where}' (${messageOf(e)}); free disk space there and run the command again`, e);
    }
    this.offsets[i] = this.end;
    this.lengths[i] = blob.length;
    this.end += blob.length;
  }

  /** Renumbers the slots: new slot j is old slot `order[j]`; the others are forgotten. */
  keep(order: readonly number[]): void {
    this.offsets = order.map((i) => this.offsets[i]!);
    this.lengths = order.map((i) => this.lengths[i]!);
  }

  get(i: number): Buffer {
    const b = Buffer.allocUnsafe(this.lengths[i]!);
    fs.readSync(this.fd, b, 0, b.length, this.offsets[i]!);
    return b;
  }

  get size(): number {
    return this.offsets.length;
  }

  get bytes(): number {
    return this.end;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
