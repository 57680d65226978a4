import test from 'ava';

import { DalleError, Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Random pixels in (0, 1) (away from the ends) and NHWC decoder params [..., 2C]. */
function makeCase(seed: number, shape: readonly number[]): { x: Float32Array; params: Float32Array; pshape: number[] } {
  const rand = rng(seed);
  const C = shape[shape.length - 1]!;
  const rows = size(shape) / C;
  const x = randomArray(rand, rows * C, 0.01, 0.99);
  const params = new Float32Array(rows * 2 * C);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < C; c++) {
      params[r * 2 * C + c] = -3 + 6 * rand(); // μ
      params[r * 2 * C + C + c] = -1.5 + 3 * rand(); // ln b
    }
  return { x, params, pshape: [...shape.slice(0, -1), 2 * C] };
}

const logit = (v: number) => Math.log(v) - Math.log1p(-v);

/** The NLL straight from the formula, in double. */
function nllRef(x: Float32Array, params: Float32Array, C: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const r = Math.floor(i / C);
    const c = i % C;
    const mu = params[r * 2 * C + c]!;
    const lnb = params[r * 2 * C + C + c]!;
    const v = x[i]!;
    s += Math.abs(logit(v) - mu) * Math.exp(-lnb) + lnb + Math.LN2 + Math.log(v * (1 - v));
  }
  return s;
}

/** dparams from the formula, in double. */
function gradRef(x: Float32Array, params: Float32Array, C: number, dnll: number): Float64Array {
  const g = new Float64Array(params.length);
  for (let i = 0; i < x.length; i++) {
    const r = Math.floor(i / C);
    const c = i % C;
    const d = logit(x[i]!) - params[r * 2 * C + c]!;
    const s = Math.exp(-params[r * 2 * C + C + c]!);
    g[r * 2 * C + c] = -dnll * Math.sign(d) * s;
    g[r * 2 * C + C + c] = dnll * (1 - Math.abs(d) * s);
  }
  return g;
}

for (const shape of [
  [2, 3, 5, 3],
  [1, 7, 1, 3],
  [11, 1],
  [5],
  [3, 4, 2, 7],
]) {
  test(`logit_laplace forward and backward match the formula on [${shape.join(', ')}]`, (t) => {
    const seed = 1000 + size(shape);
    const C = shape[shape.length - 1]!;
    const { x, params, pshape } = makeCase(seed, shape);
    using xt = Tensor.from(x, shape);
    using pt = Tensor.from(params, pshape);
    using nll = ops.logitLaplace(xt, pt);
    t.deepEqual(nll.shape, [1]);
    assertClose(t, nll.toFloat32Array(), [nllRef(x, params, C)], { what: `nll [${shape}]`, atol: 1e-5, rtol: 1e-6, seed });
    for (const dnll of [1, -2.5]) {
      using d = Tensor.from([dnll], [1]);
      using g = ops.logitLaplaceBackward(xt, pt, d);
      t.deepEqual(g.shape, pshape);
      assertClose(t, g.toFloat32Array(), gradRef(x, params, C, dnll), { what: `dparams [${shape}] dnll ${dnll}`, atol: 1e-6, rtol: 1e-6, seed });
    }
    t.deepEqual(xt.toFloat32Array(), x, 'x is read-only');
    t.deepEqual(pt.toFloat32Array(), params, 'params are read-only');
  });
}

test('logit_laplace: hand-computed values on one element', (t) => {
  // x = 1/2, μ = 0, ln b = 0: logit(x) = 0, so nll = 0 + 0 + ln 2 + ln(1/4) = −ln 2, and dμ = 0 (sign 0).
  using x0 = Tensor.from([0.5], [1]);
  using p0 = Tensor.from([0, 0], [2]);
  using n0 = ops.logitLaplace(x0, p0);
  assertClose(t, n0.toFloat32Array(), [-Math.LN2], { what: 'nll(1/2; 0, 0)', atol: 1e-7, rtol: 0 });
  using one = Tensor.from([1], [1]);
  using g0 = ops.logitLaplaceBackward(x0, p0, one);
  t.deepEqual(Array.from(g0.toFloat32Array()), [0, 1], 'dμ = 0 at d = 0, d ln b = 1');

  // x = 3/4, μ = 1/2, ln b = −1: logit(x) = ln 3, x(1 − x) = 3/16.
  //   nll = (ln 3 − 1/2)·e − 1 + ln 2 + ln(3/16) ≈ −0.353633
  //   dμ = −e, d ln b = 1 − (ln 3 − 1/2)·e ≈ −0.627197
  using x1 = Tensor.from([0.75], [1, 1]);
  using p1 = Tensor.from([0.5, -1], [1, 2]);
  using n1 = ops.logitLaplace(x1, p1);
  const want = (Math.log(3) - 0.5) * Math.E - 1 + Math.LN2 + Math.log(3 / 16);
  t.true(Math.abs(want - -0.353633) < 1e-6);
  assertClose(t, n1.toFloat32Array(), [want], { what: 'nll(3/4; 1/2, −1)', atol: 1e-7, rtol: 1e-7 });
  using g1 = ops.logitLaplaceBackward(x1, p1, one);
  t.deepEqual(g1.shape, [1, 2]);
  assertClose(t, g1.toFloat32Array(), [-Math.E, 1 - (Math.log(3) - 0.5) * Math.E], { what: 'grad(3/4; 1/2, −1)', atol: 1e-7, rtol: 1e-7 });
  // μ above logit(x) flips the sign of dμ; dnll scales both.
  using p2 = Tensor.from([2, -1], [1, 2]);
  using minus3 = Tensor.from([-3], [1]);
  using g2 = ops.logitLaplaceBackward(x1, p2, minus3);
  assertClose(t, g2.toFloat32Array(), [-3 * Math.E, -3 * (1 - (2 - Math.log(3)) * Math.E)], { what: 'grad, μ > logit(x)', atol: 1e-6, rtol: 1e-7 });
});

test('logit_laplace: pixels near 0 and 1 stay accurate (logit and ln(x(1 − x)) in double)', (t) => {
  const x = Float32Array.from([1e-7, 1 - 2 ** -24, 0.1, 0.9]); // ε = 0.1 is the paper's mapping
  const params = Float32Array.from([-16, 16.6, -2, 2, 0.5, 0.5, -0.3, 0.2]);
  using xt = Tensor.from(x, [1, 1, 4]);
  using pt = Tensor.from(params, [1, 1, 8]);
  using nll = ops.logitLaplace(xt, pt);
  assertClose(t, nll.toFloat32Array(), [nllRef(x, params, 4)], { what: 'nll near the ends', atol: 1e-5, rtol: 1e-6 });
  t.true(Number.isFinite(nll.toFloat32Array()[0]!));
});

test('logit_laplace backward: finite differences', (t) => {
  const seed = 77;
  const shape = [2, 3, 3];
  const C = 3;
  const { x, params, pshape } = makeCase(seed, shape);
  // Keep every |logit(x) − μ| clear of the kink at 0, so central differences see a smooth function.
  for (let i = 0; i < x.length; i++) {
    const k = Math.floor(i / C) * 2 * C + (i % C);
    if (Math.abs(logit(x[i]!) - params[k]!) < 0.2) params[k] = logit(x[i]!) + 0.5;
  }
  gradcheck(t, 'logit_laplace', {
    seed,
    inputs: [
      { shape, data: x },
      { shape: pshape, data: params },
    ],
    wrt: [1],
    forward: ([xt, pt]) => ops.logitLaplace(xt!, pt!),
    backward: ([xt, pt], dy) => [ops.logitLaplaceBackward(xt!, pt!, dy)],
    eps: 1e-2,
    atol: 2e-3,
    rtol: 1e-2,
  });
});

test('logit_laplace: the sum is the same every call, sync or on workers (fixed blocks)', async (t) => {
  const seed = 88;
  const shape = [4, 64, 64, 3]; // 49152 pixels: several accumulation blocks
  const { x, params, pshape } = makeCase(seed, shape);
  using xt = Tensor.from(x, shape);
  using pt = Tensor.from(params, pshape);
  using first = ops.logitLaplace(xt, pt);
  const want = first.toFloat32Array()[0]!;
  assertClose(t, [want], [nllRef(x, params, 3)], { what: 'large nll', atol: 0, rtol: 1e-6, seed });
  const results = await Promise.all(Array.from({ length: 4 }, () => ops.runOpAsync('logit_laplace_forward', [xt, pt])));
  for (const [r] of results) {
    t.is(r!.toFloat32Array()[0], want);
    r!.dispose();
  }
  for (let i = 0; i < 3; i++) {
    using again = ops.logitLaplace(xt, pt);
    t.is(again.toFloat32Array()[0], want);
  }
});

test('logit_laplace: x outside (0, 1) is E_INVALID_ARGUMENT naming the first flat index', (t) => {
  const shape = [2, 3, 5, 3];
  const { x, params, pshape } = makeCase(5, shape);
  using pt = Tensor.from(params, pshape);
  using dnll = Tensor.from([1], [1]);
  for (const bad of [0, 1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0]) {
    const xb = Float32Array.from(x);
    xb[41] = bad;
    xb[77] = bad;
    using xt = Tensor.from(xb, shape);
    for (const [what, call] of [
      ['forward', () => ops.logitLaplace(xt, pt)],
      ['backward', () => ops.logitLaplaceBackward(xt, pt, dnll)],
    ] as const) {
      const err = t.throws(call, undefined, `${what} x = ${bad}`);
      t.true(err instanceof DalleError, `${what} x = ${bad}: ${String(err)}`);
      t.is((err as DalleError).code, 'E_INVALID_ARGUMENT', `${what} x = ${bad}`);
      t.regex(err!.message, /logit_laplace_(forward|backward).*flat index 41\b/, `${what} x = ${bad}: ${err!.message}`);
    }
  }
  // The first bad index wins across accumulation blocks too.
  const big = makeCase(6, [40000, 1]);
  big.x[35000] = 1;
  big.x[20000] = 0;
  using xt = Tensor.from(big.x, [40000, 1]);
  using pb = Tensor.from(big.params, big.pshape);
  const err = t.throws(() => ops.logitLaplace(xt, pb));
  t.regex(err!.message, /flat index 20000\b/);
});

test('logit_laplace: bad inputs throw typed errors', (t) => {
  const good = () => {
    const { x, params, pshape } = makeCase(9, [2, 3, 4]);
    return [Tensor.from(x, [2, 3, 4]), Tensor.from(params, pshape)];
  };
  const goodBwd = () => [...good(), Tensor.from([1], [1])];
  const wrong = (i: number) => [[2, 3, 5], [2, 3, 7], [2]][i]!;
  badInputBattery(t, 'logit_laplace_forward', ([x, p]) => ops.logitLaplace(x!, p!), good, { wrongShape: wrong });
  nanBattery(t, 'logit_laplace_forward', ([x, p]) => ops.logitLaplace(x!, p!), good);
  badInputBattery(t, 'logit_laplace_backward', ([x, p, d]) => ops.logitLaplaceBackward(x!, p!, d!), goodBwd, { wrongShape: wrong });
  nanBattery(t, 'logit_laplace_backward', ([x, p, d]) => ops.logitLaplaceBackward(x!, p!, d!), goodBwd);

  // Shape mismatches: leading dims, rank, last dim C vs 2C, params with C channels.
  using x = Tensor.from(new Float32Array(24).fill(0.5), [2, 3, 4]);
  using d = Tensor.from([1], [1]);
  for (const pshape of [
    [2, 4, 8],
    [3, 3, 8],
    [6, 8],
    [1, 2, 3, 8],
    [2, 3, 4],
    [2, 3, 9],
  ]) {
    using p = Tensor.zeros(pshape);
    assertDalleError(t, () => ops.logitLaplace(x, p), 'E_INVALID_ARGUMENT', `forward params [${pshape}]`);
    assertDalleError(t, () => ops.logitLaplaceBackward(x, p, d), 'E_INVALID_ARGUMENT', `backward params [${pshape}]`);
  }
  using p = Tensor.zeros([2, 3, 8]);
  using d2 = Tensor.from([1, 1], [2]);
  using d11 = Tensor.from([1], [1, 1]);
  assertDalleError(t, () => ops.logitLaplaceBackward(x, p, d2), 'E_INVALID_ARGUMENT', 'dnll [2]');
  assertDalleError(t, () => ops.logitLaplaceBackward(x, p, d11), 'E_INVALID_ARGUMENT', 'dnll [1, 1]');
  using xbf = Tensor.from(new Float32Array(24).fill(0.5), [2, 3, 4], { dtype: 'bf16' });
  assertDalleError(t, () => ops.logitLaplace(xbf, p), 'E_DTYPE', 'bf16 x');
  assertDalleError(t, () => ops.runOp('logit_laplace_forward', [x]), 'E_INVALID_ARGUMENT', 'missing params');
});

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

test('sigmoid_mse forward and backward match the formula; ln b gets no gradient', (t) => {
  for (const shape of [[2, 3, 5, 3], [11, 1], [3, 4, 2, 7]]) {
    const seed = 2000 + size(shape);
    const C = shape[shape.length - 1]!;
    const { x, params, pshape } = makeCase(seed, shape);
    using xt = Tensor.from(x, shape);
    using pt = Tensor.from(params, pshape);
    let want = 0;
    const grad = new Float64Array(params.length);
    const dloss = -1.5;
    for (let i = 0; i < x.length; i++) {
      const k = Math.floor(i / C) * 2 * C + (i % C);
      const s = sigmoid(params[k]!);
      want += (s - x[i]!) ** 2;
      grad[k] = dloss * 2 * (s - x[i]!) * s * (1 - s);
    }
    using loss = ops.sigmoidMse(xt, pt);
    assertClose(t, loss.toFloat32Array(), [want], { what: `loss [${shape}]`, atol: 1e-5, rtol: 1e-6, seed });
    using d = Tensor.from([dloss], [1]);
    using g = ops.sigmoidMseBackward(xt, pt, d);
    t.deepEqual(g.shape, pshape);
    assertClose(t, g.toFloat32Array(), grad, { what: `dparams [${shape}]`, atol: 1e-7, rtol: 1e-6, seed });
  }
  // Hand value: μ = 0 → σ = 1/2; x = 0.9 → (0.4)² = 0.16, dμ = 2·(−0.4)·(1/4) = −0.2.
  using x1 = Tensor.from([0.9], [1]);
  using p1 = Tensor.from([0, 3], [2]);
  using l1 = ops.sigmoidMse(x1, p1);
  assertClose(t, l1.toFloat32Array(), [0.16], { what: 'hand loss', atol: 1e-7, rtol: 0 });
  using one = Tensor.from([1], [1]);
  using g1 = ops.sigmoidMseBackward(x1, p1, one);
  assertClose(t, g1.toFloat32Array(), [-0.2, 0], { what: 'hand grad', atol: 1e-7, rtol: 0 });
});

test('sigmoid_mse backward: finite differences; x outside (0, 1) is E_INVALID_ARGUMENT', (t) => {
  const seed = 78;
  const shape = [2, 3, 3];
  const { x, params, pshape } = makeCase(seed, shape);
  gradcheck(t, 'sigmoid_mse', {
    seed,
    inputs: [
      { shape, data: x },
      { shape: pshape, data: params },
    ],
    wrt: [1],
    forward: ([xt, pt]) => ops.sigmoidMse(xt!, pt!),
    backward: ([xt, pt], dy) => [ops.sigmoidMseBackward(xt!, pt!, dy)],
    eps: 1e-2,
    atol: 2e-3,
    rtol: 1e-2,
  });
  const xb = Float32Array.from(x);
  xb[4] = 1;
  using xt = Tensor.from(xb, shape);
  using pt = Tensor.from(params, pshape);
  const err = t.throws(() => ops.sigmoidMse(xt, pt));
  t.regex(err!.message, /sigmoid_mse_forward.*flat index 4\b/);
  const good = () => [Tensor.from(x, shape), Tensor.from(params, pshape)];
  badInputBattery(t, 'sigmoid_mse_forward', ([a, b]) => ops.sigmoidMse(a!, b!), good, { wrongShape: (i) => [[2, 3, 5], [2, 3, 7], [2]][i]! });
  nanBattery(t, 'sigmoid_mse_forward', ([a, b]) => ops.sigmoidMse(a!, b!), good);
});
