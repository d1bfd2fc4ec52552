import type { ItemRow } from '../indexer/catalogue.js';
import type { Ranked } from '../indexer/retrieval.js';

/** What a hit list keeps of a ranking: a page of it, hits within a distance, at most N per group. */
export interface RankingPlan {
  /** hits per page */
  k: number;
  /** hits skipped before the page (earlier pages) */
  offset: number;
  /** keep only hits at most this far (in the distance the hit list reports) */
  maxDistance?: number;
  /** at most `perGroup` hits per value of this field; items without one are groups of their own */
  groupBy?: GroupField;
  perGroup: number;
  /** deepest the ranking is read (grouping may skip many hits) */
  maxDepth: number;
}

export type GroupField = 'label' | 'group' | 'folder';

/** The group an item belongs to for `groupBy`, null when it has none (then it is a group of its own). */
export function groupOf(row: ItemRow, field: GroupField): string | null {
  if (field === 'label') return row.label;
  if (field === 'group') return row.grp;
  const i = row.key.lastIndexOf('/');
  return i < 0 ? null : row.key.slice(0, i);
}

export interface RankedRow {
  row: ItemRow;
  distance: number;
}

/**
 * Reads a ranking (nearest first) deep enough for a plan: `search(depth)` gives its first `depth` entries, `rowAt`
 * the item of an entry (undefined to skip it: the query itself, or an item removed meanwhile), `distance` the
 * reported distance. Asks for 4× deeper until the page is full, the threshold is passed, or `reachable` entries were
 * read. `more` says whether hits follow the page.
 */
export function readRanking(
  search: (depth: number) => Ranked[],
  reachable: number,
  rowAt: (index: number) => ItemRow | undefined,
  distance: (d: number) => number,
  p: RankingPlan,
): { page: RankedRow[]; more: boolean } {
  const need = p.offset + p.k;
  const limit = Math.min(reachable, p.maxDepth);
  let depth = Math.min(limit, need + 2);
  for (;;) {
    const res = search(depth);
    const list: RankedRow[] = [];
    const seen = new Map<string, number>();
    let passed = false;
    for (const h of res) {
      const row = rowAt(h.index);
      if (!row) continue;
      const d = distance(h.distance);
      if (p.maxDistance !== undefined && d > p.maxDistance) {
        passed = true;
        break;
      }
      if (p.groupBy) {
        const g = groupOf(row, p.groupBy);
        if (g !== null) {
          const n = seen.get(g) ?? 0;
          if (n >= p.perGroup) continue;
          seen.set(g, n + 1);
        }
      }
      list.push({ row, distance: d });
      // one beyond the page says whether another page follows
      if (list.length > need) break;
    }
    const done = list.length > need || passed || res.length < depth || depth >= limit;
    if (done) return { page: list.slice(p.offset, need), more: list.length > need };
    depth = Math.min(limit, depth * 4);
  }
}
