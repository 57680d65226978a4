import test from 'ava';

import { Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const SHAPES: [number, number][] = [];
for (const rows of [1, 5, 13]) for (const C of [1, 7, 33]) SHAPES.push([rows, C]);

test('biasAdd forward and backward match JS on odd shapes', (t) => {
  for (const [rows, C] of SHAPES) {
    const seed = 100 + rows * 40 + C;
    const rand = rng(seed);
    const x = randomArray(rand, rows * C, -3, 3);
    const b = randomArray(rand, C, -3, 3);
    using xt = Tensor.from(x, [rows, C]);
    using bt = Tensor.from(b, [C]);
    using y = ops.biasAdd(xt, bt);
    t.deepEqual(y.shape, [rows, C]);
    assertClose(t, y.toFloat32Array(), Array.from(x, (v, i) => v + b[i % C]!), { what: `biasAdd [${rows}, ${C}]`, seed });
    using db = ops.biasAddBackward(xt);
    const ref = new Array<number>(C).fill(0);
    x.forEach((v, i) => (ref[i % C]! += v));
    t.deepEqual(db.shape, [C]);
    assertClose(t, db.toFloat32Array(), ref, { what: `biasAddBackward [${rows}, ${C}]`, seed });
  }
});

test('biasAdd broadcasts over every leading dim', (t) => {
  const seed = 7;
  const x = randomArray(rng(seed), 3 * 5 * 7);
  const b = randomArray(rng(seed + 1), 7);
  using xt = Tensor.from(x, [3, 5, 7]);
  using bt = Tensor.from(b, [7]);
  using y = ops.biasAdd(xt, bt);
  t.deepEqual(y.shape, [3, 5, 7]);
  assertClose(t, y.toFloat32Array(), Array.from(x, (v, i) => v + b[i % 7]!), { what: 'biasAdd 3-D', seed });
  using db = ops.biasAddBackward(xt);
  const ref = new Array<number>(7).fill(0);
  x.forEach((v, i) => (ref[i % 7]! += v));
  assertClose(t, db.toFloat32Array(), ref, { what: 'biasAddBackward 3-D', seed });
});

test('biasAddBackward is bit-for-bit deterministic on many rows', (t) => {
  const seed = 31;
  using dy = Tensor.from(randomArray(rng(seed), 3001 * 33), [3001, 33]);
  using a = ops.biasAddBackward(dy);
  using b = ops.biasAddBackward(dy);
  t.deepEqual(a.toFloat32Array(), b.toFloat32Array());
  const ref = new Array<number>(33).fill(0);
  dy.toFloat32Array().forEach((v, i) => (ref[i % 33]! += v));
  assertClose(t, a.toFloat32Array(), ref, { what: 'biasAddBackward 3001 rows', atol: 1e-4, seed });
});

test('biasAdd backward: finite differences w.r.t. x and b', (t) => {
  const seed = 5;
  const rand = rng(seed);
  gradcheck(t, 'biasAdd', {
    seed,
    inputs: [
      { shape: [5, 7], data: randomArray(rand, 35) },
      { shape: [7], data: randomArray(rand, 7) },
    ],
    wrt: [0, 1],
    forward: ([x, b]) => ops.biasAdd(x!, b!),
    backward: (_xs, dy) => [dy, ops.biasAddBackward(dy)],
  });
});

test('residual forward and backward match JS, default and explicit scale', (t) => {
  for (const [rows, C] of SHAPES) {
    const seed = 200 + rows * 40 + C;
    const rand = rng(seed);
    const x = randomArray(rand, rows * C);
    const r = randomArray(rand, rows * C);
    using xt = Tensor.from(x, [rows, C]);
    using rt = Tensor.from(r, [rows, C]);
    using y1 = ops.residual(xt, rt);
    assertClose(t, y1.toFloat32Array(), Array.from(x, (v, i) => v + r[i]!), { what: `residual [${rows}, ${C}]`, seed });
    using y2 = ops.residual(xt, rt, { scale: -0.375 });
    assertClose(t, y2.toFloat32Array(), Array.from(x, (v, i) => v - 0.375 * r[i]!), { what: 'residual scaled', seed });
    const g = ops.residualBackward(xt, { scale: -0.375 });
    t.deepEqual(g.dx.toFloat32Array(), x);
    assertClose(t, g.dr.toFloat32Array(), Array.from(x, (v) => -0.375 * v), { what: 'residualBackward dr', seed });
    g.dx.dispose();
    g.dr.dispose();
  }
});

test('residualBackward returns fresh tensors, not aliases of dy', (t) => {
  using dy = Tensor.from([1, 2, 3], [3]);
  const { dx, dr } = ops.residualBackward(dy);
  dy.write(new Float32Array([9, 9, 9]));
  t.deepEqual(Array.from(dx.toFloat32Array()), [1, 2, 3]);
  t.deepEqual(Array.from(dr.toFloat32Array()), [1, 2, 3]);
  dx.dispose();
  dr.dispose();
});

test('residual backward: finite differences w.r.t. x and r', (t) => {
  const seed = 9;
  const rand = rng(seed);
  gradcheck(t, 'residual', {
    seed,
    inputs: [
      { shape: [3, 11], data: randomArray(rand, 33) },
      { shape: [3, 11], data: randomArray(rand, 33) },
    ],
    wrt: [0, 1],
    forward: ([x, r]) => ops.residual(x!, r!, { scale: 0.7 }),
    backward: (_xs, dy) => {
      const { dx, dr } = ops.residualBackward(dy, { scale: 0.7 });
      return [dx, dr];
    },
  });
});

test('residual: non-finite scale is rejected', (t) => {
  using x = Tensor.from([1, 2], [2]);
  for (const scale of [Number.NaN, Number.POSITIVE_INFINITY]) {
    assertDalleError(t, () => ops.residual(x, x, { scale }), 'E_INVALID_ARGUMENT', `residual scale ${scale}`);
    assertDalleError(t, () => ops.residualBackward(x, { scale }), 'E_INVALID_ARGUMENT', `residualBackward scale ${scale}`);
  }
});

test('elementwise ops: bad inputs throw typed errors', (t) => {
  const xb = () => [Tensor.from(randomArray(rng(1), 15), [3, 5]), Tensor.from(randomArray(rng(2), 5), [5])];
  badInputBattery(t, 'bias_add_forward', ([x, b]) => ops.biasAdd(x!, b!), xb, {
    wrongShape: (i) => (i === 1 ? [4] : null),
  });
  badInputBattery(t, 'bias_add_forward (2-D bias)', ([x, b]) => ops.biasAdd(x!, b!), xb, {
    wrongShape: (i) => (i === 1 ? [1, 5] : null),
  });
  nanBattery(t, 'bias_add_forward', ([x, b]) => ops.biasAdd(x!, b!), xb);
  const dy = () => [Tensor.from(randomArray(rng(3), 15), [3, 5])];
  badInputBattery(t, 'bias_add_backward', ([d]) => ops.biasAddBackward(d!), dy);
  nanBattery(t, 'bias_add_backward', ([d]) => ops.biasAddBackward(d!), dy);
  const xr = () => [Tensor.from(randomArray(rng(4), 15), [3, 5]), Tensor.from(randomArray(rng(5), 15), [3, 5])];
  badInputBattery(t, 'residual_forward', ([x, r]) => ops.residual(x!, r!), xr, {
    wrongShape: (i) => (i === 1 ? [5, 3] : [3, 5, 1]),
  });
  nanBattery(t, 'residual_forward', ([x, r]) => ops.residual(x!, r!), xr);
  const unwrap = (g: { dx: Tensor; dr: Tensor }) => [g.dx, g.dr];
  badInputBattery(t, 'residual_backward', ([d]) => unwrap(ops.residualBackward(d!)), dy);
  nanBattery(t, 'residual_backward', ([d]) => unwrap(ops.residualBackward(d!)), dy);
});
