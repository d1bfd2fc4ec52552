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
  if (key === '') return 'key is empty';
  if (/\p{Cc}|[\u2028\u2029]/u.test(key)) return 'key holds control characters (tabs, line breaks)';
  // right-to-left overrides and isolates reorder what is printed after them
  if (/[\u202a-\u202e\u2066-\u2069]/.test(key)) return 'key holds a bidirectional control character (it reorders the text printed after it)';
  if (/\p{Cs}/u.test(key)) return 'key holds a lone UTF-16 surrogate (not valid Unicode)';
  if (/\ufffd/.test(key)) return 'key holds U+FFFD, the mark of bytes that were not UTF-8; give the key in UTF-8';
  if (/[\ufffe\uffff]/.test(key)) return 'key holds a Unicode noncharacter (U+FFFE or U+FFFF)';
  // spaces, zero-width and invisible format characters, or marks with nothing to sit on, print as nothing
  if (!/[\p{L}\p{N}\p{P}\p{S}]/u.test(key)) return 'key has no visible character (only blank space or invisible characters)';
  return undefined;
}

/** Why a file of a folder cannot be an item, given its key (see pathKey), or undefined when it can. */
export function pathKeyProblem(key: string): string | undefined {
  const bad = keyProblem(key);
  return bad && `its path cannot be an item's key (${bad}); rename the file`;
}

/** The key of a file read from a folder: its path below the folder, with `/` between folders. */
export function pathKey(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
