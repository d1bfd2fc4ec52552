import { keyProblem } from '../../data/keys.js';
import { fail } from '../errors.js';

/**
 * Refuses the keys of a write before anything is written: a string that cannot be a key (see keyProblem), a key
 * given twice, and (without `replace`) a key the collection already holds.
 */
export function refuseKeys(keys: Iterable<string>, o: { collection: string; stored: (key: string) => boolean; replace?: boolean }): void {
  const seen = new Set<string>();
  for (const key of keys) {
    const bad = keyProblem(key);
    if (bad) throw fail('INVALID_ARGUMENT', `${bad}: ${JSON.stringify(key)}; give the item a key of visible, valid Unicode characters`);
    if (seen.has(key)) throw fail('DUPLICATE_KEY', `key '${key}' appears twice in the input; keys must be unique`);
    seen.add(key);
    if (!o.replace && o.stored(key)) throw fail('DUPLICATE_KEY', `key '${key}' is already in collection '${o.collection}'; to keep both, add with --key-prefix (CLI) or another key; to overwrite it, pass --replace (CLI) or ?replace=true (HTTP)`);
  }
}
