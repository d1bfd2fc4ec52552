import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Every file below `dir` whose extension (lower-cased, with the dot) is in `exts`, sorted by path. A sub-folder
 * that cannot be read (lost+found, no permission) is reported to `onError` and passed over; `dir` itself must be
 * readable. Symbolic links are not followed (their targets may lie outside the folder, whose files alone may be
 * served as originals); each is reported to `onError` so that the user learns why it was left out.
 */
export async function walkFiles(dir: string, exts: ReadonlySet<string>, onError?: (p: string, e: unknown) => void): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      try {
        out.push(...(await walkFiles(p, exts, onError)));
      } catch (err) {
        if (!onError) throw err;
        onError(p, err);
      }
    } else if (e.isFile() && exts.has(path.extname(e.name).toLowerCase())) out.push(p);
    else if (e.isSymbolicLink()) onError?.(p, new Error('a symbolic link, not followed (copy the file or folder in instead)'));
  }
  return out;
}
