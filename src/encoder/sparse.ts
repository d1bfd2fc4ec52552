/** A sparse vector: strictly increasing indices and their values (a document's TF-IDF weights). */
export interface SparseVector {
  index: Uint32Array;
  value: Float32Array;
}

/** Dot product of two sparse vectors (a merge of their sorted indices). */
export function sparseDot(a: SparseVector, b: SparseVector): number {
  let i = 0;
  let j = 0;
  let s = 0;
  while (i < a.index.length && j < b.index.length) {
    const x = a.index[i]!;
    const y = b.index[j]!;
    if (x === y) s += a.value[i++]! * b.value[j++]!;
    else if (x < y) i++;
    else j++;
  }
  return s;
}

/** A sparse vector from (index, value) pairs with distinct indices; zeros are dropped, indices sorted. */
export function fromEntries(entries: Iterable<[number, number]>): SparseVector {
  const e = [...entries].filter(([, v]) => v !== 0).sort((a, b) => a[0] - b[0]);
  return { index: Uint32Array.from(e, ([i]) => i), value: Float32Array.from(e, ([, v]) => v) };
}

/** `q` plus `weight` × the mean of `rows`, scaled to unit length (Rocchio's query expansion). */
export function addMean(q: SparseVector, rows: readonly SparseVector[], weight: number): SparseVector {
  const sum = new Map<number, number>();
  for (let i = 0; i < q.index.length; i++) sum.set(q.index[i]!, q.value[i]!);
  const w = rows.length > 0 ? weight / rows.length : 0;
  for (const r of rows) for (let i = 0; i < r.index.length; i++) sum.set(r.index[i]!, (sum.get(r.index[i]!) ?? 0) + w * r.value[i]!);
  return unitFromEntries(sum);
}

/** A sparse vector from distinct (index, value) pairs, scaled to unit length (all zeros stay zero). */
export function unitFromEntries(entries: Map<number, number>): SparseVector {
  let s = 0;
  for (const v of entries.values()) s += v * v;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  return fromEntries(Array.from(entries, ([i, v]): [number, number] => [i, v * inv]));
}

/** Whether a value is a SparseVector (and not a dense typed array). */
export function isSparse(v: unknown): v is SparseVector {
  return typeof v === 'object' && v !== null && (v as SparseVector).index instanceof Uint32Array && (v as SparseVector).value instanceof Float32Array;
}
