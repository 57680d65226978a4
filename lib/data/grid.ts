/** Several equal-sized RGB images tiled into one, each scaled up by an integer factor (nearest neighbour). */
import { DalleError } from '../errors.js';
import type { ImageRGB } from './types.js';

export interface GridOptions {
  /** Images per row; default ⌈√count⌉. */
  columns?: number;
  /** Integer upscaling of every image; default 1. */
  scale?: number;
  /** Pixels between images (and around them), filled light grey so white-background images stay apart; default 0. */
  gap?: number;
}

export function imageGrid(images: readonly Uint8Array[], size: number, options: GridOptions = {}): ImageRGB {
  const count = images.length;
  if (count === 0) throw new DalleError('E_INVALID_ARGUMENT', 'imageGrid: no images');
  const columns = options.columns ?? Math.ceil(Math.sqrt(count));
  const scale = options.scale ?? 1;
  const gap = options.gap ?? 0;
  for (const [name, v, min] of [['columns', columns, 1], ['scale', scale, 1], ['gap', gap, 0]] as const) {
    if (!(Number.isInteger(v) && v >= min && v <= 64)) throw new DalleError('E_INVALID_ARGUMENT', `imageGrid: ${name} must be an integer in [${min}, 64], got ${String(v)}`);
  }
  images.forEach((im, i) => {
    if (im.length !== size * size * 3) throw new DalleError('E_INVALID_ARGUMENT', `imageGrid: image ${i} has ${im.length} bytes, expected ${size}×${size}×3`);
  });
  const rows = Math.ceil(count / columns);
  const cell = size * scale;
  const width = columns * cell + (columns + 1) * gap;
  const height = rows * cell + (rows + 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(200);
  images.forEach((im, i) => {
    const x0 = gap + (i % columns) * (cell + gap);
    const y0 = gap + Math.floor(i / columns) * (cell + gap);
    for (let y = 0; y < cell; y++) {
      const src = Math.floor(y / scale) * size * 3;
      const dst = ((y0 + y) * width + x0) * 3;
      for (let x = 0; x < cell; x++) {
        const s = src + Math.floor(x / scale) * 3;
        data[dst + x * 3] = im[s]!;
        data[dst + x * 3 + 1] = im[s + 1]!;
        data[dst + x * 3 + 2] = im[s + 2]!;
      }
    }
  });
  return { width, height, data };
}
