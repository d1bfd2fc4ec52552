import { fail } from '../errors.js';

/**
 * Which items a search may return: every condition given must hold (labels and groups match any listed value).
 * `prefix` is a key prefix; for `dir:` collections keys are paths relative to the folder read, so
 * `prefix: 'cats/'` is the sub-folder `cats`.
 */
export interface ItemFilter {
  labels?: string[];
  groups?: string[];
  prefix?: string;
}

/** Most values a label or group list may hold. */
export const MAX_FILTER_VALUES = 256;

/** The filter with empty parts dropped, or undefined when nothing is left to filter on; INVALID_ARGUMENT when too big. */
export function normaliseFilter(f: ItemFilter | undefined): ItemFilter | undefined {
  if (!f) return undefined;
  const out: ItemFilter = {};
  for (const part of ['labels', 'groups'] as const) {
    const v = f[part];
    if (v === undefined || v.length === 0) continue;
    if (v.length > MAX_FILTER_VALUES) throw fail('INVALID_ARGUMENT', `a filter lists at most ${MAX_FILTER_VALUES} ${part}, got ${v.length}`);
    out[part] = [...new Set(v)].sort();
  }
  if (f.prefix !== undefined && f.prefix !== '') out.prefix = f.prefix;
  return out.labels || out.groups || out.prefix !== undefined ? out : undefined;
}

/** One string per distinct filter (its cache key). */
export function filterKey(f: ItemFilter): string {
  return JSON.stringify([f.labels ?? null, f.groups ?? null, f.prefix ?? null]);
}

/** The SQL condition and parameters of a filter over the `items` table (label, grp and key are indexed). */
export function filterSql(f: ItemFilter): { where: string; params: Record<string, string> } {
  const parts: string[] = [];
  const params: Record<string, string> = {};
  if (f.labels) {
    parts.push('label IN (SELECT value FROM json_each(@labels))');
    params.labels = JSON.stringify(f.labels);
  }
  if (f.groups) {
    parts.push('grp IN (SELECT value FROM json_each(@groups))');
    params.groups = JSON.stringify(f.groups);
  }
  if (f.prefix !== undefined) {
    // A range on the key index; U+10FFFF sorts after every character a key can continue with.
    parts.push('key >= @lo AND key < @hi');
    params.lo = f.prefix;
    params.hi = `${f.prefix}\u{10FFFF}`;
  }
  return { where: parts.length ? parts.join(' AND ') : '1', params };
}
