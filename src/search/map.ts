import { fitPca, pcaProject } from '../encoder/pca.js';
import type { Collection } from '../indexer/collection.js';

export interface CodeMap {
  points: { key: string; label: string | null; x: number; y: number }[];
  labels: string[];
  sampled: boolean;
}

const cache = new WeakMap<Collection, { gen: string; map: CodeMap }>();

/** The collection's codes projected to 2-D by PCA (at most `max` evenly spaced items), for the page's map. */
export function projectCodes(c: Collection, max = 4000): CodeMap {
  const gen = c.manifest.updatedAt;
  const hit = cache.get(c);
  if (hit && hit.gen === gen) return hit.map;
  const meta = c.catalogue.allMeta();
  const { data } = c.codeMatrix();
  const d = c.manifest.codeDim;
  const n = meta.length;
  const take = n > max ? Array.from({ length: max }, (_, i) => Math.floor((i * n) / max)) : meta.map((_, i) => i);
  const sub = new Float32Array(take.length * d);
  take.forEach((i, j) => sub.set(data.subarray(i * d, (i + 1) * d), j * d));
  const pca = fitPca(sub, take.length, d, 2);
  const xy = pcaProject(pca, sub, take.length);
  const points = take.map((i, j) => ({ key: meta[i]!.key, label: meta[i]!.label, x: xy[j * pca.k]!, y: pca.k > 1 ? xy[j * pca.k + 1]! : 0 }));
  const map = { points, labels: [...new Set(points.map((p) => p.label).filter((l): l is string => l !== null))].sort(), sampled: n > max };
  cache.set(c, { gen, map });
  return map;
}
