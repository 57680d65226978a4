import test from 'ava';

import { Arena, Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW as documented, in double: decay, moments, bias-corrected update. */
function adamwRef(p: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, h: Hyper, step: number): void {
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! - h.lr * h.weightDecay * p[i]!;
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g[i]!;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g[i]! * g[i]!;
    const mHat = m[i]! / (1 - h.beta1 ** step);
    const vHat = v[i]! / (1 - h.beta2 ** step);
    p[i] = p[i]! - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

test('adamw_step matches the PyTorch AdamW update over several steps, in place', (t) => {
  const seed = 71;
  const rand = rng(seed);
  const shape = [7, 13];
  const n = 91;
  const h: Hyper = { lr: 3e-2, beta1: 0.9, beta2: 0.96, eps: 1e-8, weightDecay: 0.1 };
  const p0 = randomArray(rand, n, -2, 2);
  // Gradients of very different scales (Adam's update must not care); moments compared per scale.
  const scale = (i: number) => 10 ** ((i % 5) - 2);
  const unscale = (a: ArrayLike<number>, power: number) => Array.from(a, (x, i) => x / scale(i) ** power);
  const refP = Float64Array.from(p0);
  const refM = new Float64Array(n);
  const refV = new Float64Array(n);
  using p = Tensor.from(p0, shape);
  using m = Tensor.zeros(shape);
  using v = Tensor.zeros(shape);
  for (let step = 1; step <= 6; step++) {
    const gData = randomArray(rand, n, -1, 1).map((x, i) => x * scale(i));
    using g = Tensor.from(gData, shape);
    const result = ops.adamwStep(p, g, m, v, { ...h, step }) as unknown;
    t.is(result, undefined);
    adamwRef(refP, gData, refM, refV, h, step);
    t.deepEqual(g.toFloat32Array(), gData, 'grad is read-only');
    assertClose(t, unscale(m.toFloat32Array(), 1), unscale(refM, 1), { what: `m/scale after step ${step}`, atol: 1e-6, rtol: 1e-5, seed });
    assertClose(t, unscale(v.toFloat32Array(), 2), unscale(refV, 2), { what: `v/scale² after step ${step}`, atol: 1e-7, rtol: 1e-5, seed });
    assertClose(t, p.toFloat32Array(), refP, { what: `param after step ${step}`, atol: 1e-6, rtol: 1e-5, seed });
  }
});

test('adamw_step: the first step moves each weight by about lr·sign(g), after decoupled decay', (t) => {
  // Bias correction makes m̂ = g and v̂ = g² at t = 1, so the Adam part is lr·g/(|g| + eps).
  using p = Tensor.from([1, -2, 0.5, 4], [4]);
  using g = Tensor.from([1e-3, -50, 2, -0.25], [4]);
  using m = Tensor.zeros([4]);
  using v = Tensor.zeros([4]);
  ops.adamwStep(p, g, m, v, { lr: 0.1, step: 1, weightDecay: 0.5 });
  const decayed = [1, -2, 0.5, 4].map((x) => x * (1 - 0.1 * 0.5));
  assertClose(t, p.toFloat32Array(), [decayed[0]! - 0.1, decayed[1]! + 0.1, decayed[2]! - 0.1, decayed[3]! + 0.1], {
    what: 'first step',
    atol: 1e-6,
  });
  // Defaults are PyTorch's: weight decay 1e-2, beta1 0.9 (m = 0.1·g at step 1), beta2 0.999.
  using p2 = Tensor.from([2], [1]);
  using g2 = Tensor.from([3], [1]);
  using m2 = Tensor.zeros([1]);
  using v2 = Tensor.zeros([1]);
  ops.adamwStep(p2, g2, m2, v2, { lr: 1, step: 1 });
  assertClose(t, p2.toFloat32Array(), [2 * 0.99 - 1], { what: 'defaults: param', atol: 1e-6 });
  assertClose(t, m2.toFloat32Array(), [0.3], { what: 'defaults: m', atol: 1e-7 });
  assertClose(t, v2.toFloat32Array(), [0.009], { what: 'defaults: v', atol: 1e-8 });
});

test('one flat step over arenas equals per-tensor steps, visible through the views', (t) => {
  const specs = [
    { name: 'w', shape: [3, 5] },
    { name: 'b', shape: [7] },
  ];
  const arenas = () => ['p', 'g', 'm', 'v'].map(() => new Arena(specs));
  const fill = (as: Arena[]) => {
    let s = 20;
    for (const a of as.slice(0, 2)) for (const x of a.tensors.values()) x.write(randomArray(rng(s++), x.size));
  };
  const [fp, fg, fm, fv] = arenas() as [Arena, Arena, Arena, Arena];
  const [tp, tg, tm, tv] = arenas() as [Arena, Arena, Arena, Arena];
  fill([fp, fg]);
  fill([tp, tg]);
  const opts = { lr: 0.05, step: 1, weightDecay: 0.1 };
  const wBefore = fp.get('w').toFloat32Array();
  for (let step = 1; step <= 3; step++) {
    ops.adamwStep(fp.flat, fg.flat, fm.flat, fv.flat, { ...opts, step });
    for (const name of ['w', 'b']) ops.adamwStep(tp.get(name), tg.get(name), tm.get(name), tv.get(name), { ...opts, step });
  }
  t.notDeepEqual(fp.get('w').toFloat32Array(), wBefore, 'the flat update is visible through the view');
  for (const name of ['w', 'b']) {
    t.deepEqual(fp.get(name).toFloat32Array(), tp.get(name).toFloat32Array(), `param ${name}`);
    t.deepEqual(fm.get(name).toFloat32Array(), tm.get(name).toFloat32Array(), `m ${name}`);
    t.deepEqual(fv.get(name).toFloat32Array(), tv.get(name).toFloat32Array(), `v ${name}`);
  }
  // Clipping the flat gradient scales every view by one factor.
  const before = fg.get('b').toFloat32Array();
  using norm = ops.clipGradNorm(fg.flat, 0.5);
  const factor = 0.5 / (norm.toFloat32Array()[0]! + 1e-6);
  assertClose(t, fg.get('b').toFloat32Array(), Array.from(before, (x) => x * factor), { what: 'clipped view', atol: 1e-8, rtol: 1e-6 });
  for (const a of [fp, fg, fm, fv, tp, tg, tm, tv]) a.dispose();
});

test('grad_norm: double accumulation over 1e6 elements, no f32 overflow or underflow', (t) => {
  const seed = 81;
  const n = 1_000_000;
  const x = randomArray(rng(seed), n, -1, 1).map((v, i) => (i % 1000 === 0 ? v * 1e3 : v * 1e-2));
  let s = 0;
  for (const v of x) s += v * v;
  using xt = Tensor.from(x, [1000, 1000]);
  using norm = ops.gradNorm(xt);
  t.deepEqual(norm.shape, [1]);
  assertClose(t, norm.toFloat32Array(), [Math.sqrt(s)], { what: 'norm of 1e6', atol: 0, rtol: 2e-7, seed });

  for (const [vals, want] of [
    [[3e30, 4e30], 5e30],
    [[3e-30, -4e-30], 5e-30],
    [[-2], 2],
  ] as const) {
    using tt = Tensor.from(vals, [vals.length]);
    using nn = ops.gradNorm(tt);
    assertClose(t, nn.toFloat32Array(), [want], { what: `norm of ${vals}`, atol: 0, rtol: 1e-6 });
  }
});

test('clip_grad_norm leaves small gradients alone and scales large ones to max_norm', (t) => {
  const seed = 91;
  const x = randomArray(rng(seed), 1001, -1, 1);
  let s = 0;
  for (const v of x) s += v * v;
  const norm = Math.sqrt(s);

  using small = Tensor.from(x, [7, 11, 13]);
  using n1 = ops.clipGradNorm(small, norm * 1.01);
  assertClose(t, n1.toFloat32Array(), [norm], { what: 'returned norm (no clip)', atol: 0, rtol: 1e-6, seed });
  t.deepEqual(small.toFloat32Array(), x, 'untouched below max_norm');

  using large = Tensor.from(x, [1001]);
  const maxNorm = norm / 3;
  using n2 = ops.clipGradNorm(large, maxNorm);
  assertClose(t, n2.toFloat32Array(), [norm], { what: 'returned norm is the one before clipping', atol: 0, rtol: 1e-6, seed });
  const scale = maxNorm / (norm + 1e-6);
  assertClose(t, large.toFloat32Array(), Array.from(x, (v) => v * scale), { what: 'clipped values', atol: 1e-9, rtol: 1e-6, seed });
  using after = ops.gradNorm(large);
  assertClose(t, after.toFloat32Array(), [maxNorm], { what: 'norm after clipping', atol: 0, rtol: 1e-5, seed });

  // Non-finite norms leave the gradient alone so the caller can skip the step.
  const inf = Float32Array.from([1, Number.POSITIVE_INFINITY, 2]);
  using bad = Tensor.from(inf, [3]);
  using n3 = ops.clipGradNorm(bad, 1);
  t.is(n3.toFloat32Array()[0], Number.POSITIVE_INFINITY);
  t.deepEqual(bad.toFloat32Array(), inf);
});

test('adamw_step: bad inputs and hyperparameters throw typed errors and change nothing', (t) => {
  const good = () => [7, 8, 9, 10].map((s) => Tensor.from(randomArray(rng(s), 15), [3, 5]));
  const call = ([p, g, m, v]: Tensor[]) => ops.adamwStep(p!, g!, m!, v!, { lr: 1e-3, step: 1 });
  badInputBattery(t, 'adamw_step', call, good, { wrongShape: (i) => [[15], [5, 3], [3, 6], [1, 3, 5]][i]! });
  nanBattery(t, 'adamw_step', call, good);

  const [p, g, m, v] = good() as [Tensor, Tensor, Tensor, Tensor];
  const before = [p, m, v].map((x) => x.toFloat32Array());
  const base = { lr: 1e-3, step: 1 };
  for (const [what, opts] of [
    ['lr -1', { ...base, lr: -1 }],
    ['lr NaN', { ...base, lr: Number.NaN }],
    ['step 0', { ...base, step: 0 }],
    ['step 1.5', { ...base, step: 1.5 }],
    ['step -3', { ...base, step: -3 }],
    ['beta1 1', { ...base, beta1: 1 }],
    ['beta2 1.5', { ...base, beta2: 1.5 }],
    ['beta2 -0.1', { ...base, beta2: -0.1 }],
    ['eps -1', { ...base, eps: -1 }],
    ['weight decay -0.1', { ...base, weightDecay: -0.1 }],
    ['lr Infinity', { ...base, lr: Number.POSITIVE_INFINITY }],
  ] as const)
    assertDalleError(t, () => ops.adamwStep(p, g, m, v, opts), 'E_INVALID_ARGUMENT', `adamw ${what}`);
  assertDalleError(t, () => ops.runOp('adamw_step', [p, g, m, v], { lr: 1 }), 'E_INVALID_ARGUMENT', 'missing attributes');
  // Shared buffers would mix the updates.
  assertDalleError(t, () => ops.adamwStep(p, g, p, v, base), 'E_INVALID_ARGUMENT', 'm aliases param');
  using pv = p.reshape([15]);
  using pv35 = pv.reshape([3, 5]);
  assertDalleError(t, () => ops.adamwStep(p, pv35, m, v, base), 'E_INVALID_ARGUMENT', 'grad aliases param');
  t.deepEqual([p, m, v].map((x) => x.toFloat32Array()), before, 'nothing changed');
  for (const x of [p, g, m, v]) x.dispose();
});

test('grad_norm and clip_grad_norm: bad inputs throw typed errors', (t) => {
  const good = () => [Tensor.from(randomArray(rng(12), 15), [3, 5])];
  badInputBattery(t, 'grad_norm', ([x]) => ops.gradNorm(x!), good);
  nanBattery(t, 'grad_norm', ([x]) => ops.gradNorm(x!), good);
  badInputBattery(t, 'clip_grad_norm', ([x]) => ops.clipGradNorm(x!, 1), good);
  nanBattery(t, 'clip_grad_norm', ([x]) => ops.clipGradNorm(x!, 1), good);
  using x = Tensor.from([1, 2, 3], [3]);
  for (const maxNorm of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
    assertDalleError(t, () => ops.clipGradNorm(x, maxNorm), 'E_INVALID_ARGUMENT', `max_norm ${maxNorm}`);
  assertDalleError(t, () => ops.runOp('clip_grad_norm', [x]), 'E_INVALID_ARGUMENT', 'missing max_norm');
  using bf = Tensor.from([1, 2], [2], { dtype: 'bf16' });
  assertDalleError(t, () => ops.gradNorm(bf), 'E_DTYPE', 'bf16 input');
  t.deepEqual(Array.from(x.toFloat32Array()), [1, 2, 3]);
});

/** ema = decay·ema + (1 − decay)·param in double, rounded once to f32, as the kernel does. */
function emaRef(ema: Float32Array, param: ArrayLike<number>, decay: number): Float32Array {
  return Float32Array.from(ema, (e, i) => decay * e + (1 - decay) * param[i]!);
}

test('ema_update: ema = decay·ema + (1 − decay)·param in place, exactly, on odd sizes', (t) => {
  const seed = 101;
  const rand = rng(seed);
  for (const shape of [[1], [7], [3, 5, 7], [100_003]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    let want = randomArray(rand, n, -3, 3);
    using ema = Tensor.from(want, shape);
    for (const decay of [0.999, 0.9, 0.5, 1 / 3, 0.9999]) {
      const pData = randomArray(rand, n, -5, 5);
      using param = Tensor.from(pData, shape);
      const result = ops.emaUpdate(ema, param, decay) as unknown;
      t.is(result, undefined);
      want = emaRef(want, pData, decay);
      t.deepEqual(ema.toFloat32Array(), want, `[${shape}] decay ${decay}, seed ${seed}`);
      t.deepEqual(param.toFloat32Array(), pData, 'param is read-only');
    }
  }
  // The ends of the range: decay 1 keeps ema, decay 0 copies param, bit for bit.
  const e0 = randomArray(rand, 13);
  const p0 = randomArray(rand, 13);
  using ema = Tensor.from(e0, [13]);
  using param = Tensor.from(p0, [13]);
  ops.emaUpdate(ema, param, 1);
  t.deepEqual(ema.toFloat32Array(), e0, 'decay 1');
  ops.emaUpdate(ema, param, 0);
  t.deepEqual(ema.toFloat32Array(), p0, 'decay 0');
});

test('ema_update over an arena equals per-tensor updates, visible through the views', (t) => {
  const specs = [
    { name: 'w', shape: [3, 5] },
    { name: 'b', shape: [7] },
  ];
  const flatEma = new Arena(specs);
  const viewEma = new Arena(specs);
  const params = new Arena(specs);
  let s = 40;
  for (const a of [flatEma, params])
    for (const x of a.tensors.values()) x.write(randomArray(rng(s++), x.size));
  for (const name of ['w', 'b']) viewEma.get(name).write(flatEma.get(name).toFloat32Array());
  ops.emaUpdate(flatEma.flat, params.flat, 0.97);
  for (const name of ['w', 'b']) ops.emaUpdate(viewEma.get(name), params.get(name), 0.97);
  for (const name of ['w', 'b']) t.deepEqual(flatEma.get(name).toFloat32Array(), viewEma.get(name).toFloat32Array(), name);
  for (const a of [flatEma, viewEma, params]) a.dispose();
});

test('ema_update: bad decay, mismatched shapes and bad inputs throw typed errors and change nothing', (t) => {
  const good = () => [Tensor.from(randomArray(rng(13), 15), [3, 5]), Tensor.from(randomArray(rng(14), 15), [3, 5])];
  const call = ([e, p]: Tensor[]) => ops.emaUpdate(e!, p!, 0.9);
  badInputBattery(t, 'ema_update', call, good, { wrongShape: (i) => [[15], [5, 3]][i]! });
  nanBattery(t, 'ema_update', call, good);

  const [ema, param] = good() as [Tensor, Tensor];
  const before = ema.toFloat32Array();
  for (const decay of [-0.1, 1.0000001, 2, -1e-300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
    assertDalleError(t, () => ops.emaUpdate(ema, param, decay), 'E_INVALID_ARGUMENT', `decay ${decay}`);
  assertDalleError(t, () => ops.runOp('ema_update', [ema, param]), 'E_INVALID_ARGUMENT', 'missing decay');
  for (const shape of [[15], [5, 3], [3, 6], [1, 3, 5], [3, 5, 1]]) {
    using other = Tensor.zeros(shape);
    assertDalleError(t, () => ops.emaUpdate(ema, other, 0.5), 'E_INVALID_ARGUMENT', `param [${shape}]`);
  }
  using bf = Tensor.zeros([3, 5], { dtype: 'bf16' });
  assertDalleError(t, () => ops.emaUpdate(ema, bf, 0.5), 'E_DTYPE', 'bf16 param');
  assertDalleError(t, () => ops.emaUpdate(ema, ema, 0.5), 'E_INVALID_ARGUMENT', 'param aliases ema');
  using view = ema.reshape([3, 5]);
  assertDalleError(t, () => ops.emaUpdate(ema, view, 0.5), 'E_INVALID_ARGUMENT', 'param is a view of ema');
  t.deepEqual(ema.toFloat32Array(), before, 'nothing changed');
  ema.dispose();
  param.dispose();
});
