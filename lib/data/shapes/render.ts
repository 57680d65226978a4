/** Draws a scene: white canvas, shapes filled in exact palette colours, no anti-aliasing. */
import type { ImageRGB } from '../types.js';
import { GLYPHS, GLYPH_HEIGHT, GLYPH_WIDTH } from './font.js';
import { BACKGROUND, COLORS, type ColorName, type ShapeName } from './palette.js';
import { SIGN_PADDING, type Scene } from './scene.js';

const masks = new Map<string, Uint8Array>();

/**
 * The d×d fill mask of a shape; a pixel is inside when its centre is. Choices where the spec leaves them: the
 * triangle's row j spans half-width (j+1)/2 around the centre, so its apex row has pixels and the box is exactly d
 * tall; the cross's arms are centred with any odd leftover pixel on the far side.
 */
export function shapeMask(shape: ShapeName, d: number): Uint8Array {
  const cacheKey = `${shape}:${d}`;
  const cached = masks.get(cacheKey);
  if (cached) return cached;
  const mask = new Uint8Array(d * d);
  const c = d / 2;
  const arm = Math.round(d / 3);
  const armLo = Math.floor((d - arm) / 2);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < d; i++) {
      const u = Math.abs(i + 0.5 - c);
      const v = Math.abs(j + 0.5 - c);
      let inside: boolean;
      switch (shape) {
        case 'square':
          inside = true;
          break;
        case 'circle':
          inside = u * u + v * v <= c * c;
          break;
        case 'triangle':
          inside = u <= (j + 1) / 2;
          break;
        case 'diamond':
          inside = u + v <= c;
          break;
        case 'cross':
          inside = (i >= armLo && i < armLo + arm) || (j >= armLo && j < armLo + arm);
          break;
      }
      mask[j * d + i] = inside ? 1 : 0;
    }
  }
  masks.set(cacheKey, mask);
  return mask;
}

function fillRect(img: ImageRGB, x: number, y: number, w: number, h: number, rgb: readonly number[]): void {
  for (let j = y; j < y + h; j++) {
    for (let i = x; i < x + w; i++) {
      const o = (j * img.width + i) * 3;
      img.data[o] = rgb[0]!;
      img.data[o + 1] = rgb[1]!;
      img.data[o + 2] = rgb[2]!;
    }
  }
}

export function renderScene(scene: Scene): ImageRGB {
  const side = scene.side;
  const img: ImageRGB = { width: side, height: side, data: new Uint8Array(side * side * 3) };
  fillRect(img, 0, 0, side, side, BACKGROUND);
  if (scene.capability === 'text') {
    const { word, x, y, width, height, scale } = scene.sign;
    fillRect(img, x, y, width, height, COLORS.yellow);
    word.split('').forEach((ch, k) => {
      const glyph = GLYPHS.get(ch)!;
      const gx = x + SIGN_PADDING + k * (GLYPH_WIDTH + 1) * scale;
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let q = 0; q < GLYPH_WIDTH; q++) {
          if (glyph[r * GLYPH_WIDTH + q]) fillRect(img, gx + q * scale, y + SIGN_PADDING + r * scale, scale, scale, COLORS.black);
        }
      }
    });
    return img;
  }
  for (const o of scene.objects) {
    const mask = shapeMask(o.shape, o.d);
    for (let j = 0; j < o.d; j++) for (let i = 0; i < o.d; i++) if (mask[j * o.d + i]) fillRect(img, o.x + i, o.y + j, 1, 1, COLORS[o.color as ColorName]);
  }
  return img;
}
