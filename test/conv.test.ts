import test from 'ava';

import { DalleError, Tensor, ops } from '../lib/index.js';
import {
  assertClose,
  assertDalleError,
  badInputBattery,
  gradcheck,
  nanBattery,
  randomArray,
  rng,
} from './helpers/gradcheck.js';

interface ConvShape {
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  K: number;
}

/** Flat index of [a, b, c, d] in a row-major [_, B, C, D] array. */
const idx4 = (a: number, b: number, c: number, d: number, B: number, C: number, D: number) =>
  ((a * B + b) * C + c) * D + d;

/** Direct NHWC convolution, stride 1, same zero padding, double accumulation. */
function convRef(x: Float32Array, w: Float32Array, b: Float32Array, s: ConvShape): Float64Array {
  const { B, H, W, Cin, Cout, K } = s;
  const P = (K - 1) / 2;
  const y = new Float64Array(B * H * W * Cout);
  for (let n = 0; n < B; n++)
    for (let h = 0; h < H; h++)
      for (let v = 0; v < W; v++)
        for (let co = 0; co < Cout; co++) {
          let acc = b[co]!;
          for (let kh = 0; kh < K; kh++) {
            const ih = h + kh - P;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < K; kw++) {
              const iw = v + kw - P;
              if (iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < Cin; ci++)
                acc += x[idx4(n, ih, iw, ci, H, W, Cin)]! * w[idx4(kh, kw, ci, co, K, Cin, Cout)]!;
            }
          }
          y[idx4(n, h, v, co, H, W, Cout)] = acc;
        }
  return y;
}

/** Direct gradients of convRef: the same loops, scattering instead of gathering. */
function convBackwardRef(x: Float32Array, w: Float32Array, dy: Float32Array, s: ConvShape) {
  const { B, H, W, Cin, Cout, K } = s;
  const P = (K - 1) / 2;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(Cout);
  for (let n = 0; n < B; n++)
    for (let h = 0; h < H; h++)
      for (let v = 0; v < W; v++)
        for (let co = 0; co < Cout; co++) {
          const g = dy[idx4(n, h, v, co, H, W, Cout)]!;
          db[co] = db[co]! + g;
          for (let kh = 0; kh < K; kh++) {
            const ih = h + kh - P;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < K; kw++) {
              const iw = v + kw - P;
              if (iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < Cin; ci++) {
                const xi = idx4(n, ih, iw, ci, H, W, Cin);
                const wi = idx4(kh, kw, ci, co, K, Cin, Cout);
                dx[xi] = dx[xi]! + g * w[wi]!;
                dw[wi] = dw[wi]! + g * x[xi]!;
              }
            }
          }
        }
  return { dx, dw, db };
}

function convData(seed: number, s: ConvShape) {
  const rand = rng(seed);
  return {
    x: randomArray(rand, s.B * s.H * s.W * s.Cin),
    w: randomArray(rand, s.K * s.K * s.Cin * s.Cout),
    b: randomArray(rand, s.Cout),
  };
}

const label = (s: ConvShape) => `K=${s.K} B=${s.B} H=${s.H} W=${s.W} Cin=${s.Cin} Cout=${s.Cout}`;

// Odd sizes; the 1x1 images make every tap but the centre fall in the padding; B*H*W = 2442 is
// more than the 2048-row im2col chunk, so chunk boundaries fall inside an image.
const forwardCases: ConvShape[] = [];
for (const K of [1, 3, 7]) {
  forwardCases.push({ B: 2, H: 5, W: 7, Cin: 3, Cout: 4, K });
  forwardCases.push({ B: 3, H: 1, W: 1, Cin: 2, Cout: 5, K });
}
const chunked: ConvShape[] = [
  { B: 2, H: 33, W: 37, Cin: 2, Cout: 3, K: 3 },
  { B: 2, H: 33, W: 37, Cin: 3, Cout: 2, K: 7 },
];

for (const [i, s] of [...forwardCases, ...chunked].entries()) {
  test(`conv2d forward matches a direct convolution: ${label(s)}`, (t) => {
    const seed = 1000 + i;
    const { x, w, b } = convData(seed, s);
    using xt = Tensor.from(x, [s.B, s.H, s.W, s.Cin]);
    using wt = Tensor.from(w, [s.K, s.K, s.Cin, s.Cout]);
    using bt = Tensor.from(b, [s.Cout]);
    using y = ops.conv2d(xt, wt, bt);
    t.deepEqual(y.shape, [s.B, s.H, s.W, s.Cout]);
    const what = `conv2d ${label(s)}`;
    assertClose(t, y.toFloat32Array(), convRef(x, w, b, s), { what, atol: 1e-5, rtol: 1e-4, seed });
  });
}

for (const [i, s] of chunked.entries()) {
  test(`conv2d backward matches direct gradients across im2col chunks: ${label(s)}`, (t) => {
    const seed = 2000 + i;
    const { x, w } = convData(seed, s);
    const dy = randomArray(rng(seed + 1), s.B * s.H * s.W * s.Cout);
    using xt = Tensor.from(x, [s.B, s.H, s.W, s.Cin]);
    using wt = Tensor.from(w, [s.K, s.K, s.Cin, s.Cout]);
    using dyt = Tensor.from(dy, [s.B, s.H, s.W, s.Cout]);
    const g = ops.conv2dBackward(xt, wt, dyt);
    using dx = g.dx;
    using dw = g.dw;
    using db = g.db;
    t.deepEqual(dx.shape, xt.shape);
    t.deepEqual(dw.shape, wt.shape);
    t.deepEqual(db.shape, [s.Cout]);
    const ref = convBackwardRef(x, w, dy, s);
    // dw and db sum thousands of products: allow for f32 accumulation.
    assertClose(t, dx.toFloat32Array(), ref.dx, { what: `conv2d dx ${label(s)}`, atol: 1e-4, rtol: 1e-4, seed });
    assertClose(t, dw.toFloat32Array(), ref.dw, { what: `conv2d dw ${label(s)}`, atol: 1e-3, rtol: 1e-4, seed });
    assertClose(t, db.toFloat32Array(), ref.db, { what: `conv2d db ${label(s)}`, atol: 1e-3, rtol: 1e-4, seed });
  });
}

for (const K of [1, 3, 7]) {
  test(`conv2d backward: finite differences for x, w and b, K=${K}`, (t) => {
    const s: ConvShape = { B: 2, H: 5, W: 7, Cin: 3, Cout: 4, K };
    const seed = 3000 + K;
    const { x, w, b } = convData(seed, s);
    gradcheck(t, `conv2d ${label(s)}`, {
      seed,
      inputs: [
        { shape: [s.B, s.H, s.W, s.Cin], data: x },
        { shape: [K, K, s.Cin, s.Cout], data: w },
        { shape: [s.Cout], data: b },
      ],
      wrt: [0, 1, 2],
      forward: ([xt, wt, bt]) => ops.conv2d(xt!, wt!, bt!),
      backward: ([xt, wt], dy) => {
        const g = ops.conv2dBackward(xt!, wt!, dy);
        return [g.dx, g.dw, g.db];
      },
      samples: 40,
    });
  });
}

test('conv2d rejects unsupported kernels and mismatched shapes with typed errors', (t) => {
  const rand = rng(7);
  const mk = (shape: number[]) => Tensor.from(randomArray(rand, shape.reduce((a, v) => a * v, 1)), shape);
  const x = mk([2, 5, 7, 3]);
  const b = mk([4]);
  for (const wShape of [
    [5, 5, 3, 4], // K = 5 unsupported
    [2, 2, 3, 4], // even K
    [3, 1, 3, 4], // not square
    [3, 3, 2, 4], // Cin mismatch
    [3, 3, 3, 5], // Cout != b's length
    [3, 3, 12], // rank 3
  ]) {
    const w = mk(wShape);
    assertDalleError(t, () => ops.conv2d(x, w, b), 'E_INVALID_ARGUMENT', `conv2d w [${wShape.join(', ')}]`);
    using dy = mk([2, 5, 7, 4]);
    const what = `conv2d_backward w [${wShape.join(', ')}]`;
    assertDalleError(t, () => ops.conv2dBackward(x, w, dy), 'E_INVALID_ARGUMENT', what);
    w.dispose();
  }
  using w5 = mk([5, 5, 3, 4]);
  const err = t.throws(() => ops.conv2d(x, w5, b));
  t.true(err instanceof DalleError && /K = 5/.test(err.message) && /1, 3 or 7/.test(err.message), String(err));
  using x3 = mk([5, 7, 3]);
  using w3 = mk([3, 3, 3, 4]);
  assertDalleError(t, () => ops.conv2d(x3, w3, b), 'E_INVALID_ARGUMENT', 'conv2d x of rank 3');
  x.dispose();
  b.dispose();
});

test('conv2d: bad inputs throw typed errors', (t) => {
  const rand = rng(8);
  const mk = (shape: number[]) => Tensor.from(randomArray(rand, shape.reduce((a, v) => a * v, 1)), shape);
  const fwd = () => [mk([2, 5, 7, 3]), mk([3, 3, 3, 4]), mk([4])];
  const bwd = () => [mk([2, 5, 7, 3]), mk([3, 3, 3, 4]), mk([2, 5, 7, 4])];
  // x with the wrong channel count, w with K = 5, b of the wrong length.
  const fwdWrong = (i: number) => [[2, 5, 7, 2], [5, 5, 3, 4], [5]][i]!;
  const bwdWrong = (i: number) => [[2, 5, 7, 2], [5, 5, 3, 4], [2, 5, 6, 4]][i]!;
  badInputBattery(t, 'conv2d_forward', ([x, w, b]) => ops.conv2d(x!, w!, b!), fwd, { wrongShape: fwdWrong });
  badInputBattery(t, 'conv2d_backward', ([x, w, dy]) => ops.conv2dBackward(x!, w!, dy!), bwd, { wrongShape: bwdWrong });
  nanBattery(t, 'conv2d_forward', ([x, w, b]) => ops.conv2d(x!, w!, b!), fwd);
  nanBattery(t, 'conv2d_backward', ([x, w, dy]) => Object.values(ops.conv2dBackward(x!, w!, dy!)), bwd);
});

test('conv2d_backward_weights equals conv2d_backward\'s dw and db, bit for bit, at odd shapes', (t) => {
  const rand = rng(21);
  const shapes: ConvShape[] = [
    { B: 1, H: 1, W: 1, Cin: 1, Cout: 1, K: 1 },
    { B: 2, H: 5, W: 7, Cin: 3, Cout: 4, K: 1 },
    { B: 3, H: 5, W: 3, Cin: 5, Cout: 7, K: 3 },
    { B: 2, H: 9, W: 11, Cin: 3, Cout: 5, K: 7 },
    { B: 1, H: 3, W: 2, Cin: 2, Cout: 3, K: 7 }, // kernel larger than the image
    { B: 3, H: 33, W: 35, Cin: 3, Cout: 17, K: 7 }, // several im2col chunks (npix > 2048)
  ];
  for (const s of shapes) {
    const { B, H, W, Cin, Cout, K } = s;
    using x = Tensor.from(randomArray(rand, B * H * W * Cin), [B, H, W, Cin]);
    using w = Tensor.from(randomArray(rand, K * K * Cin * Cout), [K, K, Cin, Cout]);
    using dy = Tensor.from(randomArray(rand, B * H * W * Cout), [B, H, W, Cout]);
    const full = ops.conv2dBackward(x, w, dy);
    const g = ops.conv2dBackwardWeights(x, w, dy);
    const what = `B${B} H${H} W${W} Cin${Cin} Cout${Cout} K${K}`;
    t.deepEqual(g.dw.shape, [K, K, Cin, Cout], what);
    t.deepEqual(g.db.shape, [Cout], what);
    t.deepEqual(g.dw.toFloat32Array(), full.dw.toFloat32Array(), `dw ${what}`);
    t.deepEqual(g.db.toFloat32Array(), full.db.toFloat32Array(), `db ${what}`);
    g.dw.dispose();
    g.db.dispose();
    full.dx.dispose();
    full.dw.dispose();
    full.db.dispose();
  }
});

test('conv2d_backward_weights: bad inputs throw typed errors', (t) => {
  const rand = rng(22);
  const mk = (shape: number[]) => Tensor.from(randomArray(rand, shape.reduce((a, v) => a * v, 1)), shape);
  const bwd = () => [mk([2, 5, 7, 3]), mk([3, 3, 3, 4]), mk([2, 5, 7, 4])];
  const bwdWrong = (i: number) => [[2, 5, 7, 2], [5, 5, 3, 4], [2, 5, 6, 4]][i]!;
  const call = ([x, w, dy]: Tensor[]) => Object.values(ops.conv2dBackwardWeights(x!, w!, dy!));
  badInputBattery(t, 'conv2d_backward_weights', call, bwd, { wrongShape: bwdWrong });
  nanBattery(t, 'conv2d_backward_weights', call, bwd);
});

// ---- max-pool and upsample ------------------------------------------------------------------

function maxPoolRef(x: Float32Array, B: number, H: number, W: number, C: number): Float32Array {
  const y = new Float32Array((B * H * W * C) / 4);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < H / 2; i++)
      for (let j = 0; j < W / 2; j++)
        for (let c = 0; c < C; c++) {
          let m = -Infinity;
          for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const)
            m = Math.max(m, x[idx4(n, 2 * i + di, 2 * j + dj, c, H, W, C)]!);
          y[idx4(n, i, j, c, H / 2, W / 2, C)] = m;
        }
  return y;
}

/** Distinct values 0.05 apart in random order: no ties, and a 1e-3 nudge never changes an argmax. */
function distinctValues(seed: number, n: number): Float32Array {
  const rand = rng(seed);
  const v = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

test('maxPool2x2 forward matches JS on several shapes', (t) => {
  for (const [B, H, W, C] of [
    [2, 6, 4, 3],
    [1, 2, 2, 1],
    [3, 10, 14, 5],
  ] as const) {
    const seed = 40 + B * H;
    const x = randomArray(rng(seed), B * H * W * C);
    using xt = Tensor.from(x, [B, H, W, C]);
    using y = ops.maxPool2x2(xt);
    t.deepEqual(y.shape, [B, H / 2, W / 2, C]);
    const what = `maxpool [${B},${H},${W},${C}]`;
    assertClose(t, y.toFloat32Array(), maxPoolRef(x, B, H, W, C), { what, atol: 0, rtol: 0, seed });
  }
});

test('maxPool2x2 backward: finite differences (no ties)', (t) => {
  const shape = [2, 6, 4, 3];
  const seed = 51;
  gradcheck(t, 'maxpool2x2', {
    seed,
    inputs: [{ shape, data: distinctValues(seed, 2 * 6 * 4 * 3) }],
    wrt: [0],
    forward: ([x]) => ops.maxPool2x2(x!),
    backward: ([x], dy) => [ops.maxPool2x2Backward(x!, dy)],
    eps: 1e-3,
    samples: 144,
  });
});

test('maxPool2x2 backward sends the gradient to the first maximal element of a tie', (t) => {
  // One 2x2 window per channel: channel 0 all equal, channel 1 maxima at window positions 1 and 3,
  // channel 2 a single maximum at position 2.
  const win = [
    [1, 1, 1, 1],
    [0, 5, 2, 5],
    [-3, -2, -1, -4],
  ];
  const x = new Float32Array(12);
  for (let k = 0; k < 4; k++) for (let c = 0; c < 3; c++) x[k * 3 + c] = win[c]![k]!;
  using xt = Tensor.from(x, [1, 2, 2, 3]);
  using dy = Tensor.from([10, 20, 30], [1, 1, 1, 3]);
  using y = ops.maxPool2x2(xt);
  t.deepEqual(Array.from(y.toFloat32Array()), [1, 5, -1]);
  using dx = ops.maxPool2x2Backward(xt, dy);
  const got = dx.toFloat32Array();
  const perChannel = [0, 1, 2].map((c) => [0, 1, 2, 3].map((k) => got[k * 3 + c]));
  t.deepEqual(perChannel, [
    [10, 0, 0, 0],
    [0, 20, 0, 0],
    [0, 0, 30, 0],
  ]);
});

function upsampleRef(x: Float32Array, B: number, H: number, W: number, C: number): Float32Array {
  const y = new Float32Array(x.length * 4);
  for (let n = 0; n < B; n++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++)
        for (let c = 0; c < C; c++) y[idx4(n, i, j, c, 2 * H, 2 * W, C)] = x[idx4(n, i >> 1, j >> 1, c, H, W, C)]!;
  return y;
}

test('upsample2x forward matches JS and its backward sums the four copies', (t) => {
  for (const [B, H, W, C] of [
    [2, 3, 5, 3],
    [1, 1, 1, 7],
  ] as const) {
    const seed = 60 + H;
    const x = randomArray(rng(seed), B * H * W * C);
    using xt = Tensor.from(x, [B, H, W, C]);
    using y = ops.upsample2x(xt);
    t.deepEqual(y.shape, [B, 2 * H, 2 * W, C]);
    const what = `upsample [${B},${H},${W},${C}]`;
    assertClose(t, y.toFloat32Array(), upsampleRef(x, B, H, W, C), { what, atol: 0, rtol: 0, seed });

    const dy = randomArray(rng(seed + 1), y.size);
    const want = new Float64Array(x.length);
    for (let n = 0; n < B; n++)
      for (let i = 0; i < 2 * H; i++)
        for (let j = 0; j < 2 * W; j++)
          for (let c = 0; c < C; c++) {
            const k = idx4(n, i >> 1, j >> 1, c, H, W, C);
            want[k] = want[k]! + dy[idx4(n, i, j, c, 2 * H, 2 * W, C)]!;
          }
    using dyt = Tensor.from(dy, y.shape);
    using dx = ops.upsample2xBackward(dyt);
    t.deepEqual(dx.shape, [B, H, W, C]);
    assertClose(t, dx.toFloat32Array(), want, { what: `${what} backward`, atol: 1e-6, rtol: 1e-6, seed });
  }
});

test('upsample2x backward: finite differences', (t) => {
  const seed = 71;
  gradcheck(t, 'upsample2x', {
    seed,
    inputs: [{ shape: [2, 3, 5, 3], data: randomArray(rng(seed), 90) }],
    wrt: [0],
    forward: ([x]) => ops.upsample2x(x!),
    backward: (_xs, dy) => [ops.upsample2xBackward(dy)],
  });
});

test('max-pool and upsample: bad inputs throw typed errors', (t) => {
  const rand = rng(9);
  const mk = (shape: number[]) => Tensor.from(randomArray(rand, shape.reduce((a, v) => a * v, 1)), shape);
  const poolFwd = () => [mk([2, 4, 6, 3])];
  const poolBwd = () => [mk([2, 4, 6, 3]), mk([2, 2, 3, 3])];
  badInputBattery(t, 'maxpool2x2_forward', ([x]) => ops.maxPool2x2(x!), poolFwd, { wrongShape: () => [2, 5, 6, 3] });
  badInputBattery(t, 'maxpool2x2_backward', ([x, dy]) => ops.maxPool2x2Backward(x!, dy!), poolBwd, {
    wrongShape: (i) => (i === 0 ? [2, 4, 7, 3] : [2, 2, 3, 4]),
  });
  nanBattery(t, 'maxpool2x2_forward', ([x]) => ops.maxPool2x2(x!), poolFwd);
  nanBattery(t, 'maxpool2x2_backward', ([x, dy]) => ops.maxPool2x2Backward(x!, dy!), poolBwd);

  const upFwd = () => [mk([2, 3, 5, 3])];
  const upBwd = () => [mk([2, 6, 10, 3])];
  badInputBattery(t, 'upsample2x_forward', ([x]) => ops.upsample2x(x!), upFwd, { wrongShape: () => [3, 5, 3] });
  badInputBattery(t, 'upsample2x_backward', ([dy]) => ops.upsample2xBackward(dy!), upBwd, {
    wrongShape: () => [2, 5, 10, 3],
  });
  nanBattery(t, 'upsample2x_forward', ([x]) => ops.upsample2x(x!), upFwd);
  nanBattery(t, 'upsample2x_backward', ([dy]) => ops.upsample2xBackward(dy!), upBwd);
});

test('maxPool2x2 propagates NaN and routes its gradient to the NaN', (t) => {
  using x = Tensor.from([1, Number.NaN, 3, 2], [1, 2, 2, 1]);
  using y = ops.maxPool2x2(x);
  t.true(Number.isNaN(y.toFloat32Array()[0]));
  using dy = Tensor.from([1], [1, 1, 1, 1]);
  using dx = ops.maxPool2x2Backward(x, dy);
  t.deepEqual(Array.from(dx.toFloat32Array()), [0, 1, 0, 0]);
});
