import { PNG } from 'pngjs';

/** Pixels to draw: bytes, or floats in [0,1]. */
type Drawable = Uint8Array | ArrayLike<number>;

/** Encodes one image (bytes or floats in [0,1], HWC, 1 or 3 channels) as PNG, scaled up by an integer factor. */
export function imagePng(pixels: Drawable, width: number, height: number, channels: number, scale = 1): Buffer {
  return gridPng([[pixels]], width, height, channels, scale, 0);
}

/** Lays rows of images out as one PNG grid, with `gap` pixels of mid-grey between cells. */
export function gridPng(rows: Drawable[][], width: number, height: number, channels: number, scale = 2, gap = 2): Buffer {
  const cols = Math.max(1, ...rows.map((r) => r.length));
  const cw = width * scale + gap;
  const ch = height * scale + gap;
  const png = rgba(Math.max(1, cols * cw - gap), Math.max(1, rows.length * ch - gap));
  png.data.fill(128);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      const bytes = img instanceof Uint8Array;
      for (let y = 0; y < height * scale; y++) {
        for (let x = 0; x < width * scale; x++) {
          const src = (Math.floor(y / scale) * width + Math.floor(x / scale)) * channels;
          const dst = ((r * ch + y) * png.width + (c * cw + x)) * 4;
          for (let k = 0; k < 3; k++) {
            const v = img[src + (channels === 1 ? 0 : k)]!;
            png.data[dst + k] = bytes ? v : Math.max(0, Math.min(255, Math.round(v * 255)));
          }
        }
      }
    }),
  );
  return encodePng(png);
}

/** An RGBA image: `data` holds width × height × 4 bytes. */
export interface Rgba {
  width: number;
  height: number;
  data: Buffer;
}

/** A blank RGBA image (all zero) of this size. */
export function rgba(width: number, height: number): Rgba {
  return { width, height, data: Buffer.alloc(width * height * 4) };
}

/**
 * Encodes an RGBA image as PNG. pngjs's encoder is given the bare image, not a `new PNG()`: every PNG instance
 * keeps about 35 KB that no collection frees (measured: 1.4 GB after 40,960 thumbnails), which a build of a million
 * items or a long-running server cannot afford.
 */
export function encodePng(img: Rgba): Buffer {
  // the sync encoder reads only width, height and data
  return PNG.sync.write(img as unknown as PNG);
}
