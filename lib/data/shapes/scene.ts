/**
 * Scenes of the shapes world (SHAPES-WORLD.md, "Scenes and captions") and the seeded generator that places their
 * objects: inside the border, apart from each other, and, for relations, where the relation holds.
 */
import { DalleError } from '../../errors.js';
import { textExtent } from './font.js';
import { COLOR_NAMES, SHAPE_NAMES, checkCanvas, objectSide, type ColorName, type ShapeName, type SizeName } from './palette.js';
import { pick, randInt } from './rng.js';

export type Capability = 'single' | 'counting' | 'relations' | 'text';
export const CAPABILITIES: readonly Capability[] = ['single', 'counting', 'relations', 'text'];

export type Relation = 'left' | 'right' | 'above' | 'below';
export const RELATIONS: readonly Relation[] = ['left', 'right', 'above', 'below'];

/** An object's bounding box is the square [x, x+d) × [y, y+d); every shape touches all four of its edges. */
export interface PlacedObject {
  color: ColorName;
  shape: ShapeName;
  size: SizeName;
  x: number;
  y: number;
  d: number;
}

/** A yellow rectangle [x, x+width) × [y, y+height) with `word` drawn in black at `scale`, 4 px in from each edge. */
export interface Sign {
  word: string;
  x: number;
  y: number;
  width: number;
  height: number;
  scale: number;
}

export type Scene =
  | { capability: 'single'; side: number; objects: [PlacedObject] }
  | { capability: 'counting'; side: number; objects: PlacedObject[] }
  | { capability: 'relations'; side: number; objects: [PlacedObject, PlacedObject]; relation: Relation }
  | { capability: 'text'; side: number; sign: Sign };

/** Gap kept between boxes and from the canvas edge. */
export const MARGIN = 2;
/** Padding of the sign around its text, on each side ("4 px larger than the text"). */
export const SIGN_PADDING = 4;

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Boxes at least MARGIN px apart along some axis: no overlap and the required gap. */
export function boxesApart(a: Box, b: Box): boolean {
  return a.x + a.w + MARGIN <= b.x || b.x + b.w + MARGIN <= a.x || a.y + a.h + MARGIN <= b.y || b.y + b.h + MARGIN <= a.y;
}

/**
 * "A {relation} B" between box centres: B lies on the far side of A by at least half the larger d, and the offset
 * is more along that axis than across it. Image y grows downwards, so "A above B" means B's centre is lower.
 */
export function relationHolds(relation: Relation, a: Box, b: Box): boolean {
  const dx = b.x + b.w / 2 - (a.x + a.w / 2);
  const dy = b.y + b.h / 2 - (a.y + a.h / 2);
  const half = Math.max(a.w, a.h, b.w, b.h) / 2;
  switch (relation) {
    case 'left':
      return dx >= half && Math.abs(dx) > Math.abs(dy);
    case 'right':
      return -dx >= half && Math.abs(dx) > Math.abs(dy);
    case 'above':
      return dy >= half && Math.abs(dy) > Math.abs(dx);
    case 'below':
      return -dy >= half && Math.abs(dy) > Math.abs(dx);
  }
}

// Rejection sampling always succeeds within a few dozen tries at the sizes allowed (three large objects at S = 32 is
// the tightest case); the bound only turns a logic error into an error instead of a hang.
const MAX_TRIES = 10_000;

/** Top-left corners for boxes of sides `ds`, uniformly at random among valid placements, accepted by `accept`. */
function place(side: number, ds: readonly number[], rand: () => number, accept: (boxes: Box[]) => boolean = () => true): Box[] {
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const boxes = ds.map((d) => ({ x: randInt(rand, MARGIN, side - MARGIN - d), y: randInt(rand, MARGIN, side - MARGIN - d), w: d, h: d }));
    let ok = true;
    for (let i = 0; i < boxes.length && ok; i++) for (let j = 0; j < i && ok; j++) ok = boxesApart(boxes[i]!, boxes[j]!);
    if (ok && accept(boxes)) return boxes;
  }
  throw new DalleError('E_INTERNAL', `could not place ${ds.length} objects on a ${side}px canvas`);
}

function object(color: ColorName, shape: ShapeName, size: SizeName, box: Box): PlacedObject {
  return { color, shape, size, x: box.x, y: box.y, d: box.w };
}

/** Draws one scene of the given capability from `rand`; all colour–shape pairs are possible (splits filter). */
export function generateScene(side: number, capability: Capability, rand: () => number): Scene {
  checkCanvas(side);
  const color = (): ColorName => pick(rand, COLOR_NAMES);
  const shape = (): ShapeName => pick(rand, SHAPE_NAMES);
  const size = (): SizeName => (rand() < 0.5 ? 'small' : 'large');
  switch (capability) {
    case 'single': {
      const [c, s, z] = [color(), shape(), size()];
      const [box] = place(side, [objectSide(side, z)], rand);
      return { capability, side, objects: [object(c, s, z, box!)] };
    }
    case 'counting': {
      const n = randInt(rand, 2, 3);
      const [c, s, z] = [color(), shape(), size()];
      const boxes = place(side, Array<number>(n).fill(objectSide(side, z)), rand);
      return { capability, side, objects: boxes.map((b) => object(c, s, z, b)) };
    }
    case 'relations': {
      // The two objects differ in colour or shape: with identical descriptions "A left of B" would also read as
      // "B left of A", and a caption's relation could not be told from its opposite.
      const a = { c: color(), s: shape(), z: size() };
      let b = { c: color(), s: shape(), z: size() };
      while (b.c === a.c && b.s === a.s) b = { c: color(), s: shape(), z: size() };
      const relation = pick(rand, RELATIONS);
      const [ba, bb] = place(side, [objectSide(side, a.z), objectSide(side, b.z)], rand, ([p, q]) => relationHolds(relation, p!, q!));
      return { capability, side, objects: [object(a.c, a.s, a.z, ba!), object(b.c, b.s, b.z, bb!)], relation };
    }
    case 'text':
      return { capability, side, sign: placeSign(side, randomWord(rand), rand) };
  }
}

function randomWord(rand: () => number): string {
  let word = '';
  for (let n = randInt(rand, 2, 4); n > 0; n--) word += String.fromCharCode(65 + Math.floor(rand() * 26));
  return word;
}

/** Text scale: 1 at S = 32 and 64, 2 at 128. */
export function signScale(side: number): number {
  return side >= 128 ? 2 : 1;
}

/**
 * A sign for `word` at a random position that keeps the 2 px border. Choice: where it cannot (a 4-letter sign is
 * 31 px wide, and S = 32 leaves 28 px inside the border) the sign is centred, with 0–1 px to spare, rather than
 * shrinking the padding or the font, which the spec fixes.
 */
export function placeSign(side: number, word: string, rand: () => number): Sign {
  const scale = signScale(side);
  const text = textExtent(word.length, scale);
  const width = text.width + 2 * SIGN_PADDING;
  const height = text.height + 2 * SIGN_PADDING;
  const at = (extent: number): number =>
    extent + 2 * MARGIN <= side ? randInt(rand, MARGIN, side - MARGIN - extent) : Math.floor((side - extent) / 2);
  return { word, x: at(width), y: at(height), width, height, scale };
}
