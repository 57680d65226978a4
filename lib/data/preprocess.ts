/**
 * Seeded augmentation per DALLE-SPEC.md, scaled from the paper's 256 px to any target size S.
 *
 * transformer: near-centre square crop (offset drawn from [3/8, 5/8] of the slack), area resize to
 *   t ∈ [S, min(s, S·288/256)], random S crop, no flip (captions may describe text in the image).
 * dvae: random square crop, area resize to t ∈ [min(s, S·288/256), min(s, S·384/256)] (never below S),
 *   random S crop, random horizontal flip.
 * s is the short side. When s < S the image is upsampled to S: a small image is still usable data.
 */
import { DalleError } from '../errors.js';
import type { ImageRGB } from './types.js';

export type Preset = 'transformer' | 'dvae';

export { mulberry32 } from '../rng.js';
import { mulberry32 } from '../rng.js';

/**
 * A per-example seed from the run seed and the example key, so an example's augmentation does not depend on which
 * worker handles it or in what order (FNV-1a over the key, mixed with the seed and epoch).
 */
export function exampleSeed(seed: number, key: string, epoch = 0): number {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch >>> 0, 0x85ebca6b);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** An integer drawn uniformly from [lo, hi]. */
function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export function crop(img: ImageRGB, x: number, y: number, w: number, h: number): ImageRGB {
  if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > img.width || y + h > img.height) {
    throw new DalleError('E_INVALID_ARGUMENT', `crop ${w}x${h}+${x}+${y} outside ${img.width}x${img.height}`);
  }
  const data = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) {
    const from = ((y + r) * img.width + x) * 3;
    data.set(img.data.subarray(from, from + w * 3), r * w * 3);
  }
  return { width: w, height: h, data };
}

export function flipHorizontal(img: ImageRGB): ImageRGB {
  const { width, height } = img;
  const data = new Uint8Array(img.data.length);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const from = (r * width + c) * 3;
      const to = (r * width + (width - 1 - c)) * 3;
      data[to] = img.data[from]!;
      data[to + 1] = img.data[from + 1]!;
      data[to + 2] = img.data[from + 2]!;
    }
  }
  return { width, height, data };
}

/**
 * For each output index, the source indices it covers and their weights (the overlap of the output cell
 * [i·k, (i+1)·k) with each source pixel, divided by k). For an integer factor every weight is exactly 1/k.
 */
function boxWeights(inLen: number, outLen: number): { start: Int32Array; count: Int32Array; weight: Float64Array; stride: number } {
  const k = inLen / outLen;
  const stride = Math.ceil(k) + 1;
  const start = new Int32Array(outLen);
  const count = new Int32Array(outLen);
  const weight = new Float64Array(outLen * stride);
  for (let i = 0; i < outLen; i++) {
    const lo = i * k;
    const hi = (i + 1) * k;
    const first = Math.floor(lo);
    const last = Math.min(inLen - 1, Math.ceil(hi) - 1);
    start[i] = first;
    count[i] = last - first + 1;
    for (let j = first; j <= last; j++) weight[i * stride + j - first] = (Math.min(hi, j + 1) - Math.max(lo, j)) / k;
  }
  return { start, count, weight, stride };
}

/** Area (box-filter) resize; exact averages for integer factors, nearest-like replication when upsampling. */
export function areaResize(img: ImageRGB, outW: number, outH: number): ImageRGB {
  if (!(outW > 0 && outH > 0)) throw new DalleError('E_INVALID_ARGUMENT', `resize to ${outW}x${outH}`);
  if (outW === img.width && outH === img.height) return img;
  const { width: inW, height: inH } = img;
  const wx = boxWeights(inW, outW);
  const wy = boxWeights(inH, outH);
  // Horizontal pass into floats, then vertical pass with a single rounding at the end.
  const tmp = new Float64Array(outW * inH * 3);
  for (let r = 0; r < inH; r++) {
    const row = r * inW * 3;
    for (let i = 0; i < outW; i++) {
      let a = 0, b = 0, c = 0;
      const s = wx.start[i]!, n = wx.count[i]!, base = i * wx.stride;
      for (let j = 0; j < n; j++) {
        const w = wx.weight[base + j]!;
        const p = row + (s + j) * 3;
        a += w * img.data[p]!;
        b += w * img.data[p + 1]!;
        c += w * img.data[p + 2]!;
      }
      const q = (r * outW + i) * 3;
      tmp[q] = a;
      tmp[q + 1] = b;
      tmp[q + 2] = c;
    }
  }
  const rowLen = outW * 3;
  const data = new Uint8Array(outW * outH * 3);
  const acc = new Float64Array(rowLen);
  for (let i = 0; i < outH; i++) {
    const s = wy.start[i]!, n = wy.count[i]!, base = i * wy.stride;
    acc.fill(0);
    for (let j = 0; j < n; j++) {
      const w = wy.weight[base + j]!;
      const src = (s + j) * rowLen;
      for (let x = 0; x < rowLen; x++) acc[x] = acc[x]! + w * tmp[src + x]!;
    }
    // Half rounds up; the epsilon keeps exact halves (1.5 from 1 and 2) from landing at 1.4999… and rounding down.
    const out = i * rowLen;
    for (let x = 0; x < rowLen; x++) data[out + x] = Math.min(255, Math.floor(acc[x]! + 0.5 + 1e-7));
  }
  return { width: outW, height: outH, data };
}

/**
 * The spec's augmentation for one image, scaled to target side `size`. `rand` decides every random choice, so a
 * fixed seed gives the same output.
 */
export function preprocess(img: ImageRGB, preset: Preset, size: number, rand: () => number): ImageRGB {
  if (!Number.isInteger(size) || size <= 0) throw new DalleError('E_INVALID_ARGUMENT', `size must be a positive integer, got ${size}`);
  const s = Math.min(img.width, img.height);
  const slackX = img.width - s;
  const slackY = img.height - s;
  let x0: number, y0: number, lo: number, hi: number;
  if (preset === 'transformer') {
    // Offset fraction in [3/8, 5/8]: close to the centre, where the caption's subject usually is.
    const f = 3 / 8 + rand() / 4;
    x0 = Math.round(slackX * f);
    y0 = Math.round(slackY * f);
    lo = size;
    hi = Math.max(lo, Math.min(s, Math.floor((size * 288) / 256)));
  } else if (preset === 'dvae') {
    x0 = randInt(rand, 0, slackX);
    y0 = randInt(rand, 0, slackY);
    lo = Math.max(size, Math.min(s, Math.floor((size * 288) / 256)));
    hi = Math.max(lo, Math.min(s, Math.floor((size * 384) / 256)));
  } else {
    throw new DalleError('E_INVALID_ARGUMENT', `unknown preset ${String(preset)}`);
  }
  const t = randInt(rand, lo, hi);
  const square = slackX === 0 && slackY === 0 ? img : crop(img, x0, y0, s, s);
  const resized = areaResize(square, t, t);
  const cx = randInt(rand, 0, t - size);
  const cy = randInt(rand, 0, t - size);
  const out = t === size ? resized : crop(resized, cx, cy, size, size);
  return preset === 'dvae' && rand() < 0.5 ? flipHorizontal(out) : out;
}

/** The centred square of an image, area-resized to `size` × `size`: how a user's picture becomes a model input. */
export function centerSquare(img: ImageRGB, size: number): ImageRGB {
  if (!Number.isInteger(size) || size <= 0) throw new DalleError('E_INVALID_ARGUMENT', `size must be a positive integer, got ${size}`);
  const s = Math.min(img.width, img.height);
  const square = img.width === img.height ? img : crop(img, Math.floor((img.width - s) / 2), Math.floor((img.height - s) / 2), s, s);
  return s === size ? square : areaResize(square, size, size);
}
