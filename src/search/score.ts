/** Items or queries as scoring sees them: key, label and group (a text chunk's document) per row. */
export interface Labelled {
  keys: readonly string[];
  labels: readonly (string | null)[];
  /** null when the rows have no groups (images) */
  groups: readonly (string | null)[] | null;
}

export interface Scores {
  precision: number;
  map: number;
  /** share of the exact top k found (approximate methods, when an exact ranking is given) */
  recall: number | null;
}

/**
 * The one exclusion rule of every table: a query never counts itself (an item with its key) nor, where rows have
 * groups, an item of its own group (another chunk of the same text would make retrieval look easy).
 */
export function exclusion(queries: Labelled, qi: number, items: Labelled): (row: number) => boolean {
  const key = queries.keys[qi];
  const grp = queries.groups?.[qi] ?? null;
  return (r) => items.keys[r] === key || (grp !== null && items.groups !== null && items.groups[r] === grp);
}

/** How many extra rows a ranking must hold so that k remain after the exclusions. */
export function excludedAtMost(items: Labelled): number {
  if (!items.groups) return 1;
  const sizes = new Map<string, number>();
  for (const g of items.groups) if (g !== null) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  return Math.max(0, ...sizes.values()) + 1;
}

/** The first k rows of a ranking that the exclusion rule keeps. */
export function topK(ranked: ArrayLike<number>, k: number, skip: (row: number) => boolean): number[] {
  const top: number[] = [];
  for (let i = 0; i < ranked.length && top.length < k; i++) if (!skip(ranked[i]!)) top.push(ranked[i]!);
  return top;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/**
 * P@k and mAP@k over the labelled queries (an item is relevant when its label is the query's), and recall@k
 * against `exact` rankings when given.
 */
export function scoreRankings(ranked: readonly ArrayLike<number>[], queries: Labelled, items: Labelled, k: number, exact?: readonly ArrayLike<number>[]): Scores {
  const ps: number[] = [];
  const aps: number[] = [];
  const recalls: number[] = [];
  ranked.forEach((r, qi) => {
    const skip = exclusion(queries, qi, items);
    const top = topK(r, k, skip);
    if (exact) {
      const truth = new Set(topK(exact[qi]!, k, skip));
      recalls.push(truth.size ? top.filter((t) => truth.has(t)).length / truth.size : 1);
    }
    const label = queries.labels[qi] ?? null;
    if (label === null) return;
    let rel = 0;
    let ap = 0;
    top.forEach((row, i) => {
      if (items.labels[row] === label) {
        rel++;
        ap += rel / (i + 1);
      }
    });
    ps.push(rel / k);
    aps.push(rel ? ap / rel : 0);
  });
  return { precision: mean(ps), map: mean(aps), recall: exact ? mean(recalls) : null };
}

/** Queries per second of one-at-a-time search (`searchOne(i)` answers query i) over up to `max` of n queries. */
export function queriesPerSec(searchOne: (i: number) => void, n: number, max = 200): number {
  const m = Math.min(n, max);
  if (m === 0) return NaN;
  const t0 = performance.now();
  for (let i = 0; i < m; i++) searchOne(i);
  return m / ((performance.now() - t0) / 1000);
}
