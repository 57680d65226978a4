import test from 'ava';

import { Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const SHAPES: [number, number][] = [];
for (const rows of [1, 5, 13]) for (const C of [1, 7, 33]) SHAPES.push([rows, C]);

/** LayerNorm in float64, biased variance. */
function layerNormRef(x: Float32Array, w: Float32Array, b: Float32Array, C: number, eps = 1e-5) {
  const rows = x.length / C;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c]! - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c]! - m) * rs * w[c]! + b[c]!;
    mean[r] = m;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

function softmaxRef(x: Float32Array, C: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    const row = Array.from(x.subarray(r * C, (r + 1) * C));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, c) => (y[r * C + c] = v / s));
  }
  return y;
}

test('layerNorm forward matches JS on odd shapes (offset inputs)', (t) => {
  for (const [rows, C] of SHAPES) {
    const seed = 300 + rows * 40 + C;
    const rand = rng(seed);
    // An offset of 4 with spread ±1 exercises the mean subtraction, not just the scaling.
    const x = randomArray(rand, rows * C, 3, 5);
    const w = randomArray(rand, C, 0.5, 1.5);
    const b = randomArray(rand, C);
    using xt = Tensor.from(x, [rows, C]);
    using wt = Tensor.from(w, [C]);
    using bt = Tensor.from(b, [C]);
    const out = ops.layerNorm(xt, wt, bt);
    const ref = layerNormRef(x, w, b, C);
    t.deepEqual(out.y.shape, [rows, C]);
    t.deepEqual(out.mean.shape, [rows]);
    t.deepEqual(out.rstd.shape, [rows]);
    const what = `layerNorm [${rows}, ${C}]`;
    assertClose(t, out.y.toFloat32Array(), ref.y, { what: `${what} y`, atol: 1e-4, rtol: 1e-4, seed });
    assertClose(t, out.mean.toFloat32Array(), ref.mean, { what: `${what} mean`, seed });
    assertClose(t, out.rstd.toFloat32Array(), ref.rstd, { what: `${what} rstd`, rtol: 1e-4, seed });
    for (const v of Object.values(out)) v.dispose();
  }
});

test('layerNorm eps attribute is honoured and validated', (t) => {
  const seed = 17;
  const x = randomArray(rng(seed), 2 * 7, -0.01, 0.01);
  const w = new Float32Array(7).fill(1);
  const b = new Float32Array(7);
  using xt = Tensor.from(x, [2, 7]);
  using wt = Tensor.from(w, [7]);
  using bt = Tensor.from(b, [7]);
  // Variance ~3e-5, so eps = 1e-3 changes the result a lot: a real check that eps is used.
  const out = ops.layerNorm(xt, wt, bt, { eps: 1e-3 });
  assertClose(t, out.y.toFloat32Array(), layerNormRef(x, w, b, 7, 1e-3).y, { what: 'layerNorm eps 1e-3', seed });
  for (const v of Object.values(out)) v.dispose();
  for (const eps of [0, -1e-5, 1, Number.NaN])
    assertDalleError(t, () => ops.layerNorm(xt, wt, bt, { eps }), 'E_INVALID_ARGUMENT', `layerNorm eps ${eps}`);
});

test('layerNorm with C = 1: y = bias, rstd = 1/sqrt(eps), only dbias is nonzero', (t) => {
  using x = Tensor.from([3, -2, 0.5, 1e6, -7], [5, 1]);
  using w = Tensor.from([2.5], [1]);
  using b = Tensor.from([0.25], [1]);
  const out = ops.layerNorm(x, w, b);
  t.deepEqual(Array.from(out.y.toFloat32Array()), [0.25, 0.25, 0.25, 0.25, 0.25]);
  t.deepEqual(Array.from(out.mean.toFloat32Array()), [3, -2, 0.5, 1e6, -7]);
  assertClose(t, out.rstd.toFloat32Array(), new Array(5).fill(1 / Math.sqrt(1e-5)), { what: 'C=1 rstd' });
  using dy = Tensor.from([1, 2, 3, 4, 5], [5, 1]);
  const g = ops.layerNormBackward(x, w, out.mean, out.rstd, dy);
  t.deepEqual(Array.from(g.dx.toFloat32Array()), [0, 0, 0, 0, 0]);
  t.deepEqual(Array.from(g.dweight.toFloat32Array()), [0]);
  t.deepEqual(Array.from(g.dbias.toFloat32Array()), [15]);
  for (const v of [...Object.values(out), ...Object.values(g)]) v.dispose();
});

for (const shape of [[5, 7], [2, 3, 33], [13, 1]] as number[][]) {
  test(`layerNorm backward: finite differences, shape [${shape.join(', ')}]`, (t) => {
    const seed = 400 + shape.reduce((a, b) => a * b, 1);
    const rand = rng(seed);
    const C = shape[shape.length - 1]!;
    const n = shape.reduce((a, b) => a * b, 1);
    gradcheck(t, `layerNorm [${shape.join(', ')}]`, {
      seed,
      inputs: [
        { shape, data: randomArray(rand, n, -2, 2) },
        { shape: [C], data: randomArray(rand, C, 0.5, 1.5) },
        { shape: [C], data: randomArray(rand, C) },
      ],
      wrt: [0, 1, 2],
      samples: 48,
      eps: 5e-3,
      forward: ([x, w, b]) => {
        const o = ops.layerNorm(x!, w!, b!);
        o.mean.dispose();
        o.rstd.dispose();
        return o.y;
      },
      backward: ([x, w, b], dy) => {
        const o = ops.layerNorm(x!, w!, b!);
        const g = ops.layerNormBackward(x!, w!, o.mean, o.rstd, dy);
        for (const v of Object.values(o)) v.dispose();
        return [g.dx, g.dweight, g.dbias];
      },
    });
  });
}

test('layerNormBackward is bit-for-bit deterministic on many rows', (t) => {
  const seed = 23;
  const rand = rng(seed);
  using x = Tensor.from(randomArray(rand, 2001 * 33), [2001, 33]);
  using w = Tensor.from(randomArray(rand, 33), [33]);
  using b = Tensor.from(randomArray(rand, 33), [33]);
  using dy = Tensor.from(randomArray(rand, 2001 * 33), [2001, 33]);
  const o = ops.layerNorm(x, w, b);
  const g1 = ops.layerNormBackward(x, w, o.mean, o.rstd, dy);
  const g2 = ops.layerNormBackward(x, w, o.mean, o.rstd, dy);
  t.deepEqual(g1.dweight.toFloat32Array(), g2.dweight.toFloat32Array());
  t.deepEqual(g1.dbias.toFloat32Array(), g2.dbias.toFloat32Array());
  t.deepEqual(g1.dx.toFloat32Array(), g2.dx.toFloat32Array());
  const ref = new Array<number>(33).fill(0);
  dy.toFloat32Array().forEach((v, i) => (ref[i % 33]! += v));
  assertClose(t, g1.dbias.toFloat32Array(), ref, { what: 'dbias 2001 rows', atol: 1e-4, seed });
  for (const v of [...Object.values(o), ...Object.values(g1), ...Object.values(g2)]) v.dispose();
});

test('softmax forward matches JS on odd shapes', (t) => {
  for (const [rows, C] of SHAPES) {
    const seed = 500 + rows * 40 + C;
    const x = randomArray(rng(seed), rows * C, -5, 5);
    using xt = Tensor.from(x, [rows, C]);
    using y = ops.softmax(xt);
    t.deepEqual(y.shape, [rows, C]);
    assertClose(t, y.toFloat32Array(), softmaxRef(x, C), { what: `softmax [${rows}, ${C}]`, atol: 1e-6, seed });
  }
});

test('softmax of huge logits stays finite and exact; -Infinity rows give zeros', (t) => {
  const x = new Float32Array([1e4, 1e4 - 1, -1e4, 1e4, 3e4, 3e4, -3e4, 0, -Infinity, -Infinity, 2, -Infinity]);
  using xt = Tensor.from(x, [3, 4]);
  using y = ops.softmax(xt);
  const v = y.toFloat32Array();
  t.true(v.every((p) => Number.isFinite(p)), `softmax 1e4: ${Array.from(v).join(', ')}`);
  const e = Math.exp(-1);
  assertClose(t, v.subarray(0, 8), [1 / (2 + e), e / (2 + e), 0, 1 / (2 + e), 0.5, 0.5, 0, 0], { what: 'softmax huge', atol: 1e-6 });
  t.deepEqual(Array.from(v.subarray(8)), [0, 0, 1, 0]);
  using all = Tensor.from([-Infinity, -Infinity, -Infinity], [1, 3]);
  using z = ops.softmax(all);
  t.deepEqual(Array.from(z.toFloat32Array()), [0, 0, 0]);
});

test('softmax backward: finite differences', (t) => {
  for (const shape of [[5, 7], [3, 1], [2, 3, 33]] as number[][]) {
    const seed = 600 + shape.length;
    const n = shape.reduce((a, b) => a * b, 1);
    gradcheck(t, `softmax [${shape.join(', ')}]`, {
      seed,
      inputs: [{ shape, data: randomArray(rng(seed), n, -3, 3) }],
      wrt: [0],
      samples: 48,
      eps: 5e-3,
      forward: ([x]) => ops.softmax(x!),
      backward: ([x], dy) => {
        using y = ops.softmax(x!);
        return [ops.softmaxBackward(y, dy)];
      },
    });
  }
});

test('norm ops: bad inputs throw typed errors', (t) => {
  const rand = rng(41);
  const fwd = () => [
    Tensor.from(randomArray(rand, 15), [3, 5]),
    Tensor.from(randomArray(rand, 5), [5]),
    Tensor.from(randomArray(rand, 5), [5]),
  ];
  const lnF = ([x, w, b]: Tensor[]) => Object.values(ops.layerNorm(x!, w!, b!));
  badInputBattery(t, 'layernorm_forward', lnF, fwd, { wrongShape: (i) => (i === 0 ? [3, 6] : [6]) });
  badInputBattery(t, 'layernorm_forward (2-D weight)', lnF, fwd, { wrongShape: (i) => (i === 0 ? null : [1, 5]) });
  nanBattery(t, 'layernorm_forward', lnF, fwd);
  const bwd = () => {
    const [x, w, b] = fwd();
    const o = ops.layerNorm(x!, w!, b!);
    o.y.dispose();
    b!.dispose();
    return [x!, w!, o.mean, o.rstd, Tensor.from(randomArray(rand, 15), [3, 5])];
  };
  const lnB = ([x, w, m, r, dy]: Tensor[]) => Object.values(ops.layerNormBackward(x!, w!, m!, r!, dy!));
  badInputBattery(t, 'layernorm_backward', lnB, bwd, {
    wrongShape: (i) => [[3, 6], [4], [4], [3, 1], [5, 3]][i]!,
  });
  nanBattery(t, 'layernorm_backward', lnB, bwd);
  const sm = () => [Tensor.from(randomArray(rand, 21), [3, 7])];
  badInputBattery(t, 'softmax_forward', ([x]) => ops.softmax(x!), sm);
  nanBattery(t, 'softmax_forward', ([x]) => ops.softmax(x!), sm);
  const smB = () => [Tensor.from(randomArray(rand, 21, 0, 1), [3, 7]), Tensor.from(randomArray(rand, 21), [3, 7])];
  badInputBattery(t, 'softmax_backward', ([y, dy]) => ops.softmaxBackward(y!, dy!), smB, {
    wrongShape: (i) => (i === 1 ? [7, 3] : [21]),
  });
  nanBattery(t, 'softmax_backward', ([y, dy]) => ops.softmaxBackward(y!, dy!), smB);
});
