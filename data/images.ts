/** A set of images held as one contiguous Float32Array (n × height × width × channels, values in [0,1]). */
export interface ImageSet {
  kind: 'image';
  /** the source spec it was read from, e.g. `mnist:train` */
  source: string;
  width: number;
  height: number;
  channels: number;
  keys: string[];
  /** label per item as text (digit, class folder name), null when unknown */
  labels: (string | null)[];
  uris: string[];
  pixels: Float32Array;
}

export function imageDim(s: Pick<ImageSet, 'width' | 'height' | 'channels'>): number {
  return s.width * s.height * s.channels;
}

export function imageRow(s: ImageSet, i: number): Float32Array {
  const d = imageDim(s);
  return s.pixels.subarray(i * d, (i + 1) * d);
}

/** Keeps the items whose index passes `keep`, in order. */
export function filterImages(s: ImageSet, keep: (i: number) => boolean, source = s.source): ImageSet {
  const idx: number[] = [];
  for (let i = 0; i < s.keys.length; i++) if (keep(i)) idx.push(i);
  return selectImages(s, idx, source);
}

export function selectImages(s: ImageSet, idx: readonly number[], source = s.source): ImageSet {
  const d = imageDim(s);
  const pixels = new Float32Array(idx.length * d);
  idx.forEach((i, j) => pixels.set(s.pixels.subarray(i * d, (i + 1) * d), j * d));
  return {
    ...s,
    source,
    keys: idx.map((i) => s.keys[i]!),
    labels: idx.map((i) => s.labels[i]!),
    uris: idx.map((i) => s.uris[i]!),
    pixels,
  };
}
