/** The shapes world's fixed vocabulary (SHAPES-WORLD.md, "Canvas and palette"): colours, shapes, sizes. */
import { DalleError } from '../../errors.js';

export const BACKGROUND: readonly [number, number, number] = [255, 255, 255];

export const COLORS = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 200, 30],
  purple: [140, 60, 190],
  orange: [245, 130, 30],
  black: [30, 30, 30],
  cyan: [40, 190, 200],
} as const satisfies Record<string, readonly [number, number, number]>;

export type ColorName = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as ColorName[];

export const SHAPE_NAMES = ['circle', 'square', 'triangle', 'diamond', 'cross'] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

export const SIZE_NAMES = ['small', 'large'] as const;
export type SizeName = (typeof SIZE_NAMES)[number];

/** Canvas sides the renderer draws; the detector reads any side. */
export const CANVAS_SIDES = [32, 64, 128] as const;

/** Bounding-box side d of an object: small = round(S·3/16), large = round(S·5/16). */
export function objectSide(canvas: number, size: SizeName): number {
  return Math.round((canvas * (size === 'small' ? 3 : 5)) / 16);
}

/** Never in a training split, so that drawing them is zero-shot composition. */
export const HELD_OUT: ReadonlyArray<readonly [ColorName, ShapeName]> = [
  ['purple', 'triangle'],
  ['orange', 'circle'],
  ['cyan', 'square'],
  ['green', 'diamond'],
  ['yellow', 'cross'],
];

export function isHeldOut(color: ColorName, shape: ShapeName): boolean {
  return HELD_OUT.some(([c, s]) => c === color && s === shape);
}

export function checkCanvas(side: unknown): number {
  if (!CANVAS_SIDES.includes(side as 32)) {
    throw new DalleError('E_INVALID_ARGUMENT', `shapes world canvas side must be one of ${CANVAS_SIDES.join(', ')}; got ${String(side)}`);
  }
  return side as number;
}
