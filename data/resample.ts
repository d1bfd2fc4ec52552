import type { Fit } from './decode.js';

/** RGB or RGBA bytes of an image, row-major (`channels` 4 when it has alpha; default 4). */
export interface Rgba {
  data: Uint8Array;
  width: number;
  height: number;
  channels?: 3 | 4;
}

/**
 * For each of `m` outputs spanning source samples [start, start + len) of a row of `n`: the first source sample it
 * reads and the weights from there. Shrinking averages the source samples an output covers (area, the right filter
 * for thumbnails: every source pixel counts once); enlarging interpolates linearly between the two nearest.
 */
function axisWeights(n: number, start: number, len: number, m: number): { first: Int32Array; weights: Float32Array[] } {
  const first = new Int32Array(m);
  const weights: Float32Array[] = [];
  const step = len / m;
  for (let i = 0; i < m; i++) {
    const a = start + i * step;
    const b = a + step;
    if (step >= 1) {
      const j0 = Math.max(0, Math.floor(a));
      const j1 = Math.min(n, Math.ceil(b));
      const w = new Float32Array(Math.max(1, j1 - j0));
      let sum = 0;
      for (let j = j0; j < j1; j++) sum += w[j - j0] = Math.min(b, j + 1) - Math.max(a, j);
      for (let k = 0; k < w.length; k++) w[k]! /= sum || 1;
      first[i] = Math.min(j0, n - 1);
      weights.push(w);
    } else {
      const c = (a + b) / 2 - 0.5;
      const j = Math.floor(c);
      const t = c - j;
      const j0 = Math.min(n - 1, Math.max(0, j));
      const j1 = Math.min(n - 1, Math.max(0, j + 1));
      first[i] = j0;
      weights.push(j1 === j0 ? Float32Array.of(1) : Float32Array.of(1 - t, t));
    }
  }
  return { first, weights };
}

function hexColour(hex: string): [number, number, number] {
  const v = Number.parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/**
 * The model's pixels from a small RGBA image, in JavaScript: alpha composited on `background`, the aspect ratio
 * handled by `fit` (cover crops the centre, contain letterboxes on the background, fill stretches), then resampled
 * by area (linear where it enlarges) to width × height × channels bytes (grey: Rec. 709 luma). One pass over at most
 * a preview-sized image: several times cheaper than a second libvips pipeline per file.
 */
export function resampleArea(src: Rgba, target: { width: number; height: number; channels: number; fit: Fit; background: string }): Uint8Array {
  const { width: W, height: H, channels: C } = target;
  const { width: w, height: h, data } = src;
  const bg = hexColour(target.background);
  // the source window read and the box of the output it fills
  let [sx, sy, sw, sh] = [0, 0, w, h];
  let [ox, oy, ow, oh] = [0, 0, W, H];
  if (target.fit === 'cover') {
    const s = Math.max(W / w, H / h);
    sw = Math.min(w, W / s);
    sh = Math.min(h, H / s);
    sx = (w - sw) / 2;
    sy = (h - sh) / 2;
  } else if (target.fit === 'contain') {
    const s = Math.min(W / w, H / h);
    ow = Math.max(1, Math.min(W, Math.round(w * s)));
    oh = Math.max(1, Math.min(H, Math.round(h * s)));
    ox = Math.floor((W - ow) / 2);
    oy = Math.floor((H - oh) / 2);
  }
  const xs = axisWeights(w, sx, sw, ow);
  const ys = axisWeights(h, sy, sh, oh);
  // alpha composited first, so that transparent pixels become the background and never noise
  const flat = new Float32Array(w * h * 3);
  if (src.channels === 3) flat.set(data.subarray(0, w * h * 3));
  else {
    for (let p = 0; p < w * h; p++) {
      const a = data[p * 4 + 3]! / 255;
      for (let k = 0; k < 3; k++) flat[p * 3 + k] = a * data[p * 4 + k]! + (1 - a) * bg[k]!;
    }
  }
  // rows first (every source row, output columns), then columns
  const rows = new Float32Array(h * ow * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      const wts = xs.weights[x]!;
      const j0 = xs.first[x]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < wts.length; k++) {
        const q = (y * w + Math.min(w - 1, j0 + k)) * 3;
        r += wts[k]! * flat[q]!;
        g += wts[k]! * flat[q + 1]!;
        b += wts[k]! * flat[q + 2]!;
      }
      const o = (y * ow + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  const out = new Uint8Array(W * H * C);
  const put = (x: number, y: number, r: number, g: number, b: number) => {
    const o = (y * W + x) * C;
    if (C === 1) out[o] = Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
    else {
      out[o] = Math.round(r);
      out[o + 1] = Math.round(g);
      out[o + 2] = Math.round(b);
    }
  };
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) put(x, y, bg[0], bg[1], bg[2]);
  for (let y = 0; y < oh; y++) {
    const wts = ys.weights[y]!;
    const j0 = ys.first[y]!;
    for (let x = 0; x < ow; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < wts.length; k++) {
        const q = (Math.min(h - 1, j0 + k) * ow + x) * 3;
        r += wts[k]! * rows[q]!;
        g += wts[k]! * rows[q + 1]!;
        b += wts[k]! * rows[q + 2]!;
      }
      put(ox + x, oy + y, Math.min(255, Math.max(0, r)), Math.min(255, Math.max(0, g)), Math.min(255, Math.max(0, b)));
    }
  }
  return out;
}

/** RGB bytes of an RGB or RGBA image with its alpha composited on `background`: what a preview shows. */
export function flattenRgb(src: Rgba, background: string): Uint8Array {
  const { width: w, height: h, data } = src;
  if (src.channels === 3) return data.subarray(0, w * h * 3);
  const bg = hexColour(background);
  const out = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) {
    const a = data[p * 4 + 3]!;
    for (let k = 0; k < 3; k++) out[p * 3 + k] = (a * data[p * 4 + k]! + (255 - a) * bg[k]! + 127) / 255;
  }
  return out;
}
