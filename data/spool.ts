import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Per-item blobs (image previews) spooled to a temporary file while a folder is read, so that memory holds only
 * their offsets: a folder of 100,000 images keeps its previews on disk until the catalogue takes them.
 */
export class BlobSpool {
  private readonly fd: number;
  private offsets: number[] = [];
  private lengths: number[] = [];
  private end = 0;
  private closed = false;

  constructor() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latentdex-spool-'));
    const file = path.join(dir, 'blobs');
    this.fd = fs.openSync(file, 'w+');
    // Unlinked at once: the open descriptor keeps the data, and nothing is left behind however the process ends.
    fs.rmSync(dir, { recursive: true, force: true });
  }

  /** Stores the blob of slot `i` (slots may be filled in any order). */
  set(i: number, blob: Buffer): void {
    fs.writeSync(this.fd, blob, 0, blob.length, this.end);
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
