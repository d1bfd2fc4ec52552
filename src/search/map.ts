import { encodePng, rgba } from '../encoder/png.js';
import { fitPca, pcaProject } from '../encoder/pca.js';
import type { Collection } from '../indexer/collection.js';

export interface CodeMap {
  points: { key: string; label: string | null; x: number; y: number }[];
  labels: string[];
  sampled: boolean;
}

/** The collection's codes projected to 2-D by PCA (at most `max` evenly spaced items), for the page's map. */
export function projectCodes(c: Collection, max = 12000): CodeMap {
  return c.derived(`code-map:${max}`, () => project(c, max));
}

function project(c: Collection, max: number): CodeMap {
  const { rows: meta, data } = c.itemsWithCodes();
  const d = c.manifest.codeDim;
  const n = meta.length;
  const take = n > max ? Array.from({ length: max }, (_, i) => Math.floor((i * n) / max)) : meta.map((_, i) => i);
  const sub = new Float32Array(take.length * d);
  take.forEach((i, j) => sub.set(data.subarray(i * d, (i + 1) * d), j * d));
  const pca = fitPca(sub, take.length, d, 2);
  const xy = pcaProject(pca, sub, take.length);
  const points = take.map((i, j) => ({ key: meta[i]!.key, label: meta[i]!.label, x: xy[j * pca.k]!, y: pca.k > 1 ? xy[j * pca.k + 1]! : 0 }));
  return { points, labels: [...new Set(points.map((p) => p.label).filter((l): l is string => l !== null))].sort(), sampled: n > max };
}

const PALETTE = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
  [188, 189, 34], [23, 190, 207], [57, 59, 121], [99, 121, 57], [140, 109, 49], [132, 60, 57], [123, 65, 115],
] as const;

/** Draws a code map as a PNG scatter plot, one colour per label (grey when unlabelled), with a legend strip. */
export function renderMapPng(map: CodeMap, width = 800, height = 600): Buffer {
  const legend = 18;
  const png = rgba(width, height + legend);
  png.data.fill(255);
  const xs = map.points.map((p) => p.x);
  const ys = map.points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const pad = 10;
  const dot = (cx: number, cy: number, rgb: readonly number[], r: number) => {
    for (let y = Math.max(0, cy - r); y <= Math.min(png.height - 1, cy + r); y++) {
      for (let x = Math.max(0, cx - r); x <= Math.min(width - 1, cx + r); x++) {
        const o = (y * width + x) * 4;
        for (let k = 0; k < 3; k++) png.data[o + k] = Math.round(png.data[o + k]! * 0.45 + rgb[k]! * 0.55);
      }
    }
  };
  const colour = (label: string | null) => (label === null ? [150, 150, 150] : PALETTE[map.labels.indexOf(label) % PALETTE.length]!);
  for (const p of map.points) {
    const cx = Math.round(pad + ((p.x - x0) / (x1 - x0 || 1)) * (width - 2 * pad));
    const cy = Math.round(height - pad - ((p.y - y0) / (y1 - y0 || 1)) * (height - 2 * pad));
    dot(cx, cy, colour(p.label), 1);
  }
  // Legend: one swatch per label, in label order, along the bottom.
  const sw = Math.floor(width / Math.max(1, map.labels.length));
  map.labels.forEach((l, i) => {
    for (let y = height + 4; y < height + legend - 4; y++) for (let x = i * sw + 2; x < (i + 1) * sw - 2; x++) {
      const o = (y * width + x) * 4;
      const c = colour(l);
      for (let k = 0; k < 3; k++) png.data[o + k] = c[k]!;
    }
  });
  return encodePng(png);
}
