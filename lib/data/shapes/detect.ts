/**
 * The detector (SHAPES-WORLD.md, "The detector"): reads objects and sign text back from any image, so that a
 * caption's claim about a generated image becomes a yes or no.
 */
import { DalleError } from '../../errors.js';
import type { ImageRGB } from '../types.js';
import { parseCaption, queryHasHeldOut, type ObjectSpec, type Query } from './captions.js';
import { GLYPH_HEIGHT, GLYPH_WIDTH, nearestLetter } from './font.js';
import { BACKGROUND, COLORS, COLOR_NAMES, SHAPE_NAMES, objectSide, type ColorName, type ShapeName, type SizeName } from './palette.js';
import { shapeMask } from './render.js';
import { SIGN_PADDING, relationHolds, type Capability } from './scene.js';

/** Pixels farther than this (Euclidean RGB) from background and every colour are noise. */
export const NOISE_DISTANCE = 60;
export const NOISE = -1;
export const BACKGROUND_LABEL = 0;

export interface Component {
  /** Palette index + 1 (0 is background, never a component). */
  label: number;
  color: ColorName;
  x: number;
  y: number;
  width: number;
  height: number;
  pixels: number;
}

export interface DetectedObject extends Component {
  /** Null when the box is not square within 10% (at least 1 px): a sign or a smear, none of the five shapes. */
  shape: ShapeName | null;
  size: SizeName;
}

export interface Detection {
  width: number;
  height: number;
  /** The canvas side the size classes and thresholds refer to: the shorter edge. */
  side: number;
  /** Per pixel: NOISE, BACKGROUND_LABEL, or 1 + index into COLOR_NAMES. */
  labels: Int8Array;
  /** Per pixel: index into `objects`, or -1 (background, noise, or a dropped small component). */
  componentOf: Int32Array;
  objects: DetectedObject[];
  noisePixels: number;
}

const REFS: ReadonlyArray<readonly number[]> = [BACKGROUND, ...COLOR_NAMES.map((c) => COLORS[c])];

/** Step 1: nearest of background + eight colours; NOISE beyond NOISE_DISTANCE from all. */
export function labelPixels(image: ImageRGB): Int8Array {
  const n = image.width * image.height;
  if (image.data.length !== n * 3) {
    throw new DalleError('E_INVALID_ARGUMENT', `image data has ${image.data.length} bytes; ${image.width}×${image.height} RGB needs ${n * 3}`);
  }
  const labels = new Int8Array(n);
  const limit = NOISE_DISTANCE * NOISE_DISTANCE;
  for (let p = 0; p < n; p++) {
    const r = image.data[p * 3]!, g = image.data[p * 3 + 1]!, b = image.data[p * 3 + 2]!;
    let best = NOISE;
    let bestDist = Infinity;
    for (let k = 0; k < REFS.length; k++) {
      const ref = REFS[k]!;
      const dist = (r - ref[0]!) ** 2 + (g - ref[1]!) ** 2 + (b - ref[2]!) ** 2;
      if (dist < bestDist) [best, bestDist] = [k, dist];
    }
    labels[p] = bestDist <= limit ? best : NOISE;
  }
  return labels;
}

/** Components under 12 px at S = 64 are dropped; the threshold scales with S² (3 px at 32, 48 px at 128). */
export function minComponentPixels(side: number): number {
  return Math.max(1, Math.round((12 * side * side) / (64 * 64)));
}

/** Fill ratio and share of (near-)full rows: the two numbers that tell square, circle, cross and diamond apart. */
function features(mask: (i: number, j: number) => boolean, w: number, h: number): { ratio: number; fullRows: number; widestAt: number } {
  let count = 0, full = 0, widest = 0, widestSum = 0, widestRows = 0;
  for (let j = 0; j < h; j++) {
    let row = 0;
    for (let i = 0; i < w; i++) if (mask(i, j)) row++;
    count += row;
    if (row >= 0.9 * w) full++;
    if (row > widest) [widest, widestSum, widestRows] = [row, 0, 0];
    if (row === widest) [widestSum, widestRows] = [widestSum + (j + 0.5) / h, widestRows + 1];
  }
  return { ratio: count / (w * h), fullRows: full / h, widestAt: widestSum / widestRows };
}

const references = new Map<number, Array<[ShapeName, ReturnType<typeof features>]>>();

/** Features of the renderer's own symmetric shapes at box side d, computed once per d. */
function referenceFeatures(d: number): Array<[ShapeName, ReturnType<typeof features>]> {
  let refs = references.get(d);
  if (!refs) {
    refs = SHAPE_NAMES.filter((s) => s !== 'triangle').map((shape) => {
      const m = shapeMask(shape, d);
      return [shape, features((i, j) => m[j * d + i] === 1, d, d)];
    });
    references.set(d, refs);
  }
  return refs;
}

/**
 * Step 3's shape: a triangle's widest row is at the bottom (mean position of the widest rows past 3/4 of the
 * height); the others are top–bottom symmetric and told apart by fill ratio (square ≈1.0, circle ≈0.79, cross
 * ≈0.56, diamond ≈0.5). Choice: the reference ratios are those of the renderer's own masks at this box side rather
 * than the nominal values, because pixelation moves them (a 6 px circle fills 0.89, a 6 px diamond 0.67); and the
 * share of full-width rows (cross ≈1/3, diamond ≈0.1) is a second coordinate, so cross and diamond, whose ratios
 * are close at large d, stay apart in a noisy sample.
 */
export function classifyShape(mask: (i: number, j: number) => boolean, w: number, h: number): ShapeName {
  const f = features(mask, w, h);
  if (f.widestAt > 0.75) return 'triangle';
  const d = Math.max(1, Math.round((w + h) / 2));
  let best: ShapeName = 'square';
  let bestDist = Infinity;
  for (const [shape, r] of referenceFeatures(d)) {
    const dist = (f.ratio - r.ratio) ** 2 + (f.fullRows - r.fullRows) ** 2;
    if (dist < bestDist) [best, bestDist] = [shape, dist];
  }
  return best;
}

/**
 * A component's box and fill mask with single-pixel flaws of a sampled image mended (choice; the spec says nothing
 * of noise): an edge row or column holding one pixel is a stray that touched the shape, and is trimmed (every
 * rendered shape has at least 2 px on each edge of its box, d being even at S = 32/64/128); a pixel with 3 or 4 of
 * its 4 neighbours in the component is a hole and counts as filled (no rendered shape has such a gap: the convex
 * ones cannot, and the cross's inner corners have 2). Renderer images pass through unchanged.
 */
function cleanBox(inComp: (x: number, y: number) => boolean, x: number, y: number, width: number, height: number) {
  let [x0, x1, y0, y1] = [x, x + width - 1, y, y + height - 1];
  const rowCount = (j: number): number => {
    let n = 0;
    for (let i = x0; i <= x1; i++) n += inComp(i, j) ? 1 : 0;
    return n;
  };
  const colCount = (i: number): number => {
    let n = 0;
    for (let j = y0; j <= y1; j++) n += inComp(i, j) ? 1 : 0;
    return n;
  };
  while (y1 - y0 > 1 && rowCount(y0) === 1) y0++;
  while (y1 - y0 > 1 && rowCount(y1) === 1) y1--;
  while (x1 - x0 > 1 && colCount(x0) === 1) x0++;
  while (x1 - x0 > 1 && colCount(x1) === 1) x1--;
  const at = (i: number, j: number): boolean => i >= x0 && i <= x1 && j >= y0 && j <= y1 && inComp(i, j);
  const mask = (i: number, j: number): boolean => {
    const [px, py] = [x0 + i, y0 + j];
    if (at(px, py)) return true;
    return [at(px - 1, py), at(px + 1, py), at(px, py - 1), at(px, py + 1)].filter(Boolean).length >= 3;
  };
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, mask };
}

/** Steps 1–3: every component of at least minComponentPixels, classified. */
export function detect(image: ImageRGB): Detection {
  const { width: w, height: h } = image;
  const labels = labelPixels(image);
  const componentOf = new Int32Array(w * h).fill(-1);
  const seen = new Uint8Array(w * h);
  const stack: number[] = [];
  const members: number[] = [];
  const objects: DetectedObject[] = [];
  const side = Math.min(w, h);
  const minPixels = minComponentPixels(side);
  let noisePixels = 0;
  for (let start = 0; start < w * h; start++) {
    const label = labels[start]!;
    if (label === NOISE) noisePixels++;
    if (seen[start] || label <= BACKGROUND_LABEL) continue;
    // Step 2: 4-neighbour flood fill within one colour.
    members.length = 0;
    stack.push(start);
    seen[start] = 1;
    let x0 = w, y0 = h, x1 = -1, y1 = -1;
    while (stack.length > 0) {
      const p = stack.pop()!;
      members.push(p);
      const x = p % w, y = (p - x) / w;
      x0 = Math.min(x0, x), x1 = Math.max(x1, x), y0 = Math.min(y0, y), y1 = Math.max(y1, y);
      const neighbours = [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1];
      for (const q of neighbours) {
        if (q >= 0 && !seen[q] && labels[q] === label) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (members.length < minPixels) continue;
    const id = objects.length;
    for (const p of members) componentOf[p] = id;
    const box = cleanBox((i, j) => componentOf[j * w + i] === id, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    // Choice: every shape's box is d×d, so a clearly oblong component (a sign is at least 19×15) is no shape.
    const squarish = Math.abs(box.width - box.height) <= Math.max(1, Math.round(0.1 * Math.max(box.width, box.height)));
    const shape = squarish ? classifyShape(box.mask, box.width, box.height) : null;
    // Size class: the box side closest to the small or large d of this canvas.
    const boxSide = Math.max(box.width, box.height);
    const size: SizeName = Math.abs(boxSide - objectSide(side, 'small')) <= Math.abs(boxSide - objectSide(side, 'large')) ? 'small' : 'large';
    objects.push({ label, color: COLOR_NAMES[label - 1]!, x: box.x, y: box.y, width: box.width, height: box.height, pixels: members.length, shape, size });
  }
  return { width: w, height: h, side, labels, componentOf, objects, noisePixels };
}

function matches(o: DetectedObject, spec: ObjectSpec): boolean {
  return o.color === spec.color && o.shape === spec.shape && (spec.size === undefined || o.size === spec.size);
}

function inside(o: Component, box: Component): boolean {
  return o.x >= box.x && o.y >= box.y && o.x + o.width <= box.x + box.width && o.y + o.height <= box.y + box.height;
}

/**
 * The sign's rectangle: the component's box less any edge rows and columns that are under half sign (yellow or
 * black), so a stray yellow pixel touching the sign in a sampled image does not shift the text grid.
 */
function signRectangle(det: Detection, c: Component): Component {
  const yellow = 1 + COLOR_NAMES.indexOf('yellow');
  const black = 1 + COLOR_NAMES.indexOf('black');
  const onSign = (x: number, y: number): boolean => {
    const l = det.labels[y * det.width + x];
    return l === yellow || l === black;
  };
  const count = (fixed: number, vertical: boolean): number => {
    let n = 0;
    if (vertical) for (let y = c.y; y < c.y + c.height; y++) n += onSign(fixed, y) ? 1 : 0;
    else for (let x = c.x; x < c.x + c.width; x++) n += onSign(x, fixed) ? 1 : 0;
    return n;
  };
  let [x0, x1, y0, y1] = [c.x, c.x + c.width - 1, c.y, c.y + c.height - 1];
  while (x0 < x1 && count(x0, true) * 2 < c.height) x0++;
  while (x1 > x0 && count(x1, true) * 2 < c.height) x1--;
  while (y0 < y1 && count(y0, false) * 2 < c.width) y0++;
  while (y1 > y0 && count(y1, false) * 2 < c.width) y1--;
  return { ...c, x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/**
 * The word on a sign (a yellow component's box): the text starts SIGN_PADDING px in; the scale follows from the
 * sign's height, the letter count from its width; each glyph cell is read by majority vote per font pixel and
 * matched to the nearest glyph. Null when the box cannot hold text.
 */
export function readSign(det: Detection, component: Component): string | null {
  const sign = signRectangle(det, component);
  const scale = Math.round((sign.height - 2 * SIGN_PADDING) / GLYPH_HEIGHT);
  if (scale < 1) return null;
  const letters = Math.round((sign.width - 2 * SIGN_PADDING + scale) / ((GLYPH_WIDTH + 1) * scale));
  if (letters < 1) return null;
  const black = 1 + COLOR_NAMES.indexOf('black');
  let word = '';
  for (let k = 0; k < letters; k++) {
    const bits = new Uint8Array(GLYPH_WIDTH * GLYPH_HEIGHT);
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      for (let q = 0; q < GLYPH_WIDTH; q++) {
        let ink = 0, total = 0;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const x = sign.x + SIGN_PADDING + (k * (GLYPH_WIDTH + 1) + q) * scale + dx;
            const y = sign.y + SIGN_PADDING + r * scale + dy;
            if (x >= det.width || y >= det.height) continue;
            total++;
            if (det.labels[y * det.width + x] === black) ink++;
          }
        }
        bits[r * GLYPH_WIDTH + q] = total > 0 && ink * 2 > total ? 1 : 0;
      }
    }
    word += nearestLetter(bits);
  }
  return word;
}

/** Step 4: the detected objects match the query exactly (count, colour, shape, size, relation, or the word). */
export function satisfies(det: Detection, query: Query): boolean {
  const objs = det.objects;
  switch (query.capability) {
    case 'single':
      return objs.length === 1 && matches(objs[0]!, query.object);
    case 'counting':
      return objs.length === query.count && objs.every((o) => matches(o, query));
    case 'relations': {
      if (objs.length !== 2) return false;
      const [p, q] = objs as [DetectedObject, DetectedObject];
      const holds = (a: DetectedObject, b: DetectedObject): boolean =>
        matches(a, query.a) && matches(b, query.b) && relationHolds(query.relation, { x: a.x, y: a.y, w: a.width, h: a.height }, { x: b.x, y: b.y, w: b.width, h: b.height });
      return holds(p, q) || holds(q, p);
    }
    case 'text': {
      // The sign is the largest yellow component; everything else (glyphs, yellow inside letters) must lie on it.
      const yellows = objs.filter((o) => o.color === 'yellow').sort((a, b) => b.pixels - a.pixels);
      const sign = yellows[0];
      if (!sign || !objs.every((o) => o === sign || inside(o, sign))) return false;
      return readSign(det, sign) === query.word.toUpperCase();
    }
  }
}

/** Whether `image` shows what `caption` says. */
export function checkCaption(image: ImageRGB, caption: string | Query): boolean {
  return satisfies(detect(image), typeof caption === 'string' ? parseCaption(caption) : caption);
}

export type ReportCapability = Capability | 'heldout';
export interface CapabilityScore {
  samples: number;
  satisfied: number;
  /** satisfied / samples; NaN when there were none. */
  fraction: number;
}

/**
 * Fraction of samples whose caption is satisfied, per capability. Choice: a caption naming a held-out pair counts
 * under its own capability and also under 'heldout', so both "counting" and "zero-shot" are over all their cases.
 */
export function scoreSamples(samples: Iterable<{ caption: string; image: ImageRGB }>): Record<ReportCapability, CapabilityScore> {
  const report = {} as Record<ReportCapability, CapabilityScore>;
  for (const cap of ['single', 'counting', 'relations', 'text', 'heldout'] as const) report[cap] = { samples: 0, satisfied: 0, fraction: NaN };
  for (const { caption, image } of samples) {
    const query = parseCaption(caption);
    const ok = satisfies(detect(image), query) ? 1 : 0;
    const buckets: ReportCapability[] = queryHasHeldOut(query) ? [query.capability, 'heldout'] : [query.capability];
    for (const b of buckets) (report[b].samples++, (report[b].satisfied += ok));
  }
  for (const s of Object.values(report)) s.fraction = s.samples > 0 ? s.satisfied / s.samples : NaN;
  return report;
}
