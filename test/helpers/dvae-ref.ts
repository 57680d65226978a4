/**
 * Straightforward JS references for the dVAE's layers (NHWC activations, HWIO weights), written for clarity:
 * direct loops, double accumulation. The model's native path is checked against these.
 */
import type { BlockPlan, ConvPlan, NetPlan } from '../../lib/models/dvae/config.js';

export interface Img {
  n: number;
  h: number;
  w: number;
  c: number;
  data: Float64Array;
}

export type ParamLookup = (name: string) => Float32Array;

export function img(n: number, h: number, w: number, c: number, data?: ArrayLike<number>): Img {
  return { n, h, w, c, data: data ? Float64Array.from(data) : new Float64Array(n * h * w * c) };
}

export function conv(x: Img, p: ParamLookup, plan: ConvPlan): Img {
  const w = p(`${plan.name}.w`);
  const b = p(`${plan.name}.b`);
  const { k, cin, cout } = plan;
  const pad = (k - 1) / 2;
  const y = img(x.n, x.h, x.w, cout);
  for (let n = 0; n < x.n; n++)
    for (let i = 0; i < x.h; i++)
      for (let j = 0; j < x.w; j++)
        for (let o = 0; o < cout; o++) {
          let s = b[o]!;
          for (let di = 0; di < k; di++)
            for (let dj = 0; dj < k; dj++) {
              const ii = i + di - pad;
              const jj = j + dj - pad;
              if (ii < 0 || jj < 0 || ii >= x.h || jj >= x.w) continue;
              for (let c = 0; c < cin; c++) s += x.data[((n * x.h + ii) * x.w + jj) * cin + c]! * w[((di * k + dj) * cin + c) * cout + o]!;
            }
          y.data[((n * x.h + i) * x.w + j) * cout + o] = s;
        }
  return y;
}

export function relu(x: Img): Img {
  return { ...x, data: x.data.map((v) => Math.max(0, v)) };
}

export function add(a: Img, b: Img, scale: number): Img {
  return { ...a, data: a.data.map((v, i) => v + scale * b.data[i]!) };
}

export function maxpool(x: Img): Img {
  const y = img(x.n, x.h / 2, x.w / 2, x.c);
  for (let n = 0; n < x.n; n++)
    for (let i = 0; i < y.h; i++)
      for (let j = 0; j < y.w; j++)
        for (let c = 0; c < x.c; c++) {
          let m = -Infinity;
          for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) m = Math.max(m, x.data[((n * x.h + 2 * i + di) * x.w + 2 * j + dj) * x.c + c]!);
          y.data[((n * y.h + i) * y.w + j) * x.c + c] = m;
        }
  return y;
}

export function upsample(x: Img): Img {
  const y = img(x.n, x.h * 2, x.w * 2, x.c);
  for (let n = 0; n < x.n; n++)
    for (let i = 0; i < y.h; i++)
      for (let j = 0; j < y.w; j++)
        for (let c = 0; c < x.c; c++) y.data[((n * y.h + i) * y.w + j) * x.c + c] = x.data[((n * x.h + (i >> 1)) * x.w + (j >> 1)) * x.c + c]!;
  return y;
}

export function block(x: Img, p: ParamLookup, b: BlockPlan, gain: number): Img {
  let h = x;
  for (const c of b.resPath) h = conv(relu(h), p, c);
  return add(b.idPath ? conv(x, p, b.idPath) : x, h, gain);
}

export function net(x: Img, p: ParamLookup, plan: NetPlan): Img {
  let h = conv(x, p, plan.input);
  for (const g of plan.groups) {
    for (const b of g.blocks) h = block(h, p, b, plan.postGain);
    if (g.resample === 'maxpool') h = maxpool(h);
    if (g.resample === 'upsample') h = upsample(h);
  }
  return conv(relu(h), p, plan.output);
}

/** The input of test/fixtures/torch/forward_tiny.json, NHWC [1, 16, 16, 3]: x[c, i, j] = 0.1 + 0.8·((7c + 3i + 5j) mod 17)/16. */
export function torchFixtureInput(): Float32Array {
  const x = new Float32Array(16 * 16 * 3);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) x[(i * 16 + j) * 3 + c] = 0.1 + (0.8 * ((c * 7 + i * 3 + j * 5) % 17)) / 16;
  return x;
}
