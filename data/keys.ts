import path from 'node:path';

/** Longest item key a client may send, in UTF-16 units (paths of a folder, with a --key-prefix, may be longer). */
export const MAX_KEY_LENGTH = 512;

/**
 * Why a string cannot be an item's key, or undefined when it can: keys are printed in terminals and pages, put in
 * URLs and compared code unit for code unit, so they hold some visible character, no control characters and only valid
 * Unicode (a lone UTF-16 surrogate, which JSON can spell as "\ud800", turns into U+FFFD on its way to SQLite and
 * could never be asked for again).
 */
export function keyProblem(key: string): string | undefined {
  if (key.trim() === '') return key === '' ? 'key is empty' : 'key is only blank space';
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'key holds control characters (tabs, line breaks)';
  if (/\p{Cs}/u.test(key)) return 'key holds a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/** Why a file of a folder cannot be an item (its path below the folder is its key), or undefined when it can. */
export function pathKeyProblem(root: string, file: string): string | undefined {
  const bad = keyProblem(pathKey(root, file));
  return bad && `its path cannot be an item's key (${bad}); rename the file`;
}

/** The key of a file read from a folder: its path below the folder, with `/` between folders. */
export function pathKey(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
