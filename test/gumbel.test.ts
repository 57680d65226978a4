import test from 'ava';

import { Tensor, ops, setSimdLevel, type SimdLevel } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';
import { philoxWords, unitOpen } from './helpers/philox.js';

/** softmax((logits + g)/tau) per row in double, g from the same Philox stream words. */
function gumbelRef(logits: Float32Array, N: number, K: number, tau: number, seed: number, offset: number): Float64Array {
  const words = philoxWords(seed, offset, N * K);
  const y = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      y[i] = (logits[i]! - Math.log(-Math.log(unitOpen(words[i]!)))) / tau;
      m = Math.max(m, y[i]!);
    }
    let s = 0;
    for (let k = 0; k < K; k++) s += y[n * K + k] = Math.exp(y[n * K + k]! - m);
    for (let k = 0; k < K; k++) y[n * K + k]! /= s;
  }
  return y;
}

function klRef(logits: Float32Array, N: number, K: number): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const row = Array.from(logits.subarray(n * K, (n + 1) * K));
    const m = Math.max(...row);
    const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
    for (const v of row) {
      const logp = v - m - Math.log(s);
      total += Math.exp(logp) * logp;
    }
    total += Math.log(K);
  }
  return total;
}

for (const tau of [1, 1 / 16]) {
  test(`gumbel_softmax forward matches the JS reference (tau ${tau})`, (t) => {
    const seed = 31;
    const [N, K] = [13, 37];
    const logits = randomArray(rng(seed), N * K, -3, 3);
    using x = Tensor.from(logits, [N, K]);
    for (const [pseed, offset] of [
      [0, 0],
      [9, 1001],
      [2 ** 40 + 3, 2 ** 45 + 2],
    ] as const) {
      using y = ops.gumbelSoftmax(x, { tau, seed: pseed, offset });
      t.deepEqual(y.shape, [N, K]);
      const want = gumbelRef(logits, N, K, tau, pseed, offset);
      assertClose(t, y.toFloat32Array(), want, { what: `gumbel tau ${tau} philox seed ${pseed} offset ${offset}`, atol: 2e-6, rtol: 1e-4, seed });
      const got = y.toFloat32Array();
      for (let n = 0; n < N; n++) {
        const s = got.subarray(n * K, (n + 1) * K).reduce((a, v) => a + v, 0);
        t.true(Math.abs(s - 1) < 1e-5, `row ${n} sums to ${s}`);
      }
    }
  });

  test(`gumbel_softmax backward: finite differences (tau ${tau})`, (t) => {
    const seed = tau === 1 ? 401 : 402;
    const [N, K] = [5, 11];
    const opts = { tau, seed: 17, offset: 5 };
    // logits = -g + small: the perturbed logits nearly tie, so even at tau 1/16 the rows are far
    // from one-hot and the gradient is not trivially ~0.
    const g = Array.from(philoxWords(opts.seed, opts.offset, N * K), (w) => -Math.log(-Math.log(unitOpen(w))));
    const data = randomArray(rng(seed), N * K, -3 * tau, 3 * tau).map((v, i) => v - g[i]!);
    gradcheck(t, `gumbel_softmax tau ${tau}`, {
      seed,
      inputs: [{ shape: [N, K], data }],
      wrt: [0],
      forward: ([l]) => ops.gumbelSoftmax(l!, opts),
      backward: ([l], dy) => {
        using y = ops.gumbelSoftmax(l!, opts);
        return [ops.gumbelSoftmaxBackward(y, dy, tau)];
      },
      eps: tau === 1 ? 1e-2 : 1e-3,
      samples: 55,
      atol: 2e-3,
      rtol: 1e-2,
    });
    using l = Tensor.from(data, [N, K]);
    using y = ops.gumbelSoftmax(l, opts);
    using dy = Tensor.from(randomArray(rng(seed + 1), N * K), [N, K]);
    using dl = ops.gumbelSoftmaxBackward(y, dy, tau);
    const big = dl.toFloat32Array().reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    t.true(big > 0.1 / tau / K, `largest |dlogits| ${big}: the check would be vacuous`);
    t.true(y.toFloat32Array().every((v) => v < 0.99), 'some row is one-hot');
  });
}

test('gumbel_softmax: the noise is a pure function of (seed, offset), row offsets are n·K + k', (t) => {
  const [N, K] = [4, 9];
  const logits = randomArray(rng(3), N * K);
  using x = Tensor.from(logits, [N, K]);
  using a = ops.gumbelSoftmax(x, { tau: 0.5, seed: 8, offset: 100 });
  using b = ops.gumbelSoftmax(x, { tau: 0.5, seed: 8, offset: 100 });
  using c = ops.gumbelSoftmax(x, { tau: 0.5, seed: 8, offset: 101 });
  t.deepEqual(a.toFloat32Array(), b.toFloat32Array());
  t.notDeepEqual(a.toFloat32Array(), c.toFloat32Array());
  // Rows 1.. of a draw at offset 100 are the draw of rows 1.. at offset 100 + K.
  using tail = Tensor.from(logits.subarray(K), [N - 1, K]);
  using d = ops.gumbelSoftmax(tail, { tau: 0.5, seed: 8, offset: 100 + K });
  t.deepEqual(a.toFloat32Array().subarray(K), d.toFloat32Array());
});

test('gumbel_softmax: large logits and tiny tau stay finite (one-hot rows)', (t) => {
  using x = Tensor.from([1000, -1000, 0, 50, 60, 70], [2, 3]);
  using y = ops.gumbelSoftmax(x, { tau: 1e-30, seed: 1, offset: 0 });
  const v = Array.from(y.toFloat32Array());
  t.true(v.every(Number.isFinite), `y = ${v}`);
  t.deepEqual(v.slice(0, 3), [1, 0, 0]);
  t.is(v.slice(3).reduce((a, b) => a + b, 0), 1);
});

test('kl_uniform forward matches the reference; 0 for uniform logits, → N·log K for one-hot', (t) => {
  const seed = 55;
  const [N, K] = [7, 29];
  const logits = randomArray(rng(seed), N * K, -4, 4);
  using x = Tensor.from(logits, [N, K]);
  using kl = ops.klUniform(x);
  t.deepEqual(kl.shape, [1]);
  assertClose(t, kl.toFloat32Array(), [klRef(logits, N, K)], { what: 'kl', atol: 1e-5, rtol: 1e-5, seed });

  using flat = Tensor.from(new Float32Array(3 * 8192).fill(2.5), [3, 8192]);
  using k0 = ops.klUniform(flat);
  t.true(Math.abs(k0.toFloat32Array()[0]!) < 1e-6, `uniform logits: kl ${k0.toFloat32Array()[0]}`);

  const oneHot = new Float32Array(2 * 8192);
  oneHot[17] = 100;
  oneHot[8192 + 4000] = 100;
  using oh = Tensor.from(oneHot, [2, 8192]);
  using k1 = ops.klUniform(oh);
  assertClose(t, k1.toFloat32Array(), [2 * Math.log(8192)], { what: 'kl one-hot', atol: 1e-4, rtol: 1e-5 });
});

test('kl_uniform backward: finite differences', (t) => {
  const seed = 66;
  const [N, K] = [3, 13];
  gradcheck(t, 'kl_uniform', {
    seed,
    inputs: [{ shape: [N, K], data: randomArray(rng(seed), N * K, -2, 2) }],
    wrt: [0],
    forward: ([l]) => ops.klUniform(l!),
    backward: ([l], dy) => [ops.klUniformBackward(l!, dy)],
    eps: 1e-2,
    atol: 1e-3,
    rtol: 1e-2,
  });
  // The gradient scales with dkl.
  using l = Tensor.from(randomArray(rng(seed), N * K), [N, K]);
  using g1 = Tensor.from([1], [1]);
  using g3 = Tensor.from([-3], [1]);
  using d1 = ops.klUniformBackward(l, g1);
  using d3 = ops.klUniformBackward(l, g3);
  assertClose(t, d3.toFloat32Array(), Array.from(d1.toFloat32Array(), (v) => -3 * v), { what: 'kl grad scaling', atol: 1e-7 });
});

test('gumbel and kl: bad inputs and attributes throw typed errors', (t) => {
  const opts = { tau: 0.5, seed: 1, offset: 0 };
  const logits = () => [Tensor.from(randomArray(rng(1), 15), [3, 5])];
  const pair = () => [Tensor.from(randomArray(rng(2), 15, 0, 1), [3, 5]), Tensor.from(randomArray(rng(3), 15), [3, 5])];
  const rank1 = (_i: number, shape: readonly number[]) => [shape.reduce((a, b) => a * b, 1)];

  badInputBattery(t, 'gumbel_softmax_forward', ([l]) => ops.gumbelSoftmax(l!, opts), logits, { wrongShape: rank1 });
  nanBattery(t, 'gumbel_softmax_forward', ([l]) => ops.gumbelSoftmax(l!, opts), logits);
  badInputBattery(t, 'gumbel_softmax_backward', ([y, dy]) => ops.gumbelSoftmaxBackward(y!, dy!, 0.5), pair, {
    wrongShape: (i) => (i === 1 ? [5, 3] : [15]),
  });
  nanBattery(t, 'gumbel_softmax_backward', ([y, dy]) => ops.gumbelSoftmaxBackward(y!, dy!, 0.5), pair);
  badInputBattery(t, 'kl_uniform_forward', ([l]) => ops.klUniform(l!), logits, { wrongShape: rank1 });
  nanBattery(t, 'kl_uniform_forward', ([l]) => ops.klUniform(l!), logits);
  const klPair = () => [Tensor.from(randomArray(rng(4), 15), [3, 5]), Tensor.from([1], [1])];
  badInputBattery(t, 'kl_uniform_backward', ([l, d]) => ops.klUniformBackward(l!, d!), klPair, {
    wrongShape: (i) => (i === 0 ? [15] : [2]),
  });
  nanBattery(t, 'kl_uniform_backward', ([l, d]) => ops.klUniformBackward(l!, d!), klPair);

  using x = Tensor.from(randomArray(rng(5), 6), [2, 3]);
  for (const tau of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-46, 1e39]) {
    assertDalleError(t, () => ops.gumbelSoftmax(x, { ...opts, tau }), 'E_INVALID_ARGUMENT', `forward tau ${tau}`);
    assertDalleError(t, () => ops.gumbelSoftmaxBackward(x, x, tau), 'E_INVALID_ARGUMENT', `backward tau ${tau}`);
  }
  for (const seed of [-1, 0.5, 2 ** 53])
    assertDalleError(t, () => ops.gumbelSoftmax(x, { ...opts, seed }), 'E_INVALID_ARGUMENT', `seed ${seed}`);
  assertDalleError(t, () => ops.gumbelSoftmax(x, { ...opts, offset: -4 }), 'E_INVALID_ARGUMENT', 'offset -4');
  assertDalleError(t, () => ops.runOp('gumbel_softmax_forward', [x], { tau: 1, seed: 1 }), 'E_INVALID_ARGUMENT', 'no offset');
  assertDalleError(t, () => ops.runOp('gumbel_softmax_backward', [x, x]), 'E_INVALID_ARGUMENT', 'no tau');
});

// ---- every SIMD level: the vectorised exp/log (native/kernels/fastmath.h) against doubles -----

/** Runs fn with the SIMD level forced; false when the CPU lacks it. */
function withLevel(level: SimdLevel, fn: () => void): boolean {
  try {
    if (setSimdLevel(level) !== level) return false;
    fn();
    return true;
  } finally {
    setSimdLevel(null);
  }
}
const levels = ['scalar', 'avx2-fma', 'avx512'] as const;

/** Per row in double: p = softmax(logits), log p, and Σ p log p. */
function softmaxRef(logits: Float32Array, N: number, K: number) {
  const p = new Float64Array(N * K);
  const logp = new Float64Array(N * K);
  const negH = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, logits[n * K + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(logits[n * K + k]! - m);
    const ls = Math.log(s);
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      logp[i] = logits[i]! - m - ls;
      p[i] = Math.exp(logp[i]!);
      negH[n] = negH[n]! + p[i]! * logp[i]!;
    }
  }
  return { p, logp, negH };
}

// Shapes: a row wider than the 1024-word noise block and not a multiple of the 16 sum lanes; the
// dVAE's 512; narrow rows with only a tail.
const wide: Array<[number, number]> = [
  [9, 1500],
  [6, 512],
  [17, 37],
  [4, 5],
];

test('gumbel_softmax forward and backward match double references at every SIMD level', (t) => {
  const ran: string[] = [];
  for (const level of levels) {
    const did = withLevel(level, () => {
      for (const [N, K] of wide)
        for (const tau of [1, 1 / 16]) {
          const logits = randomArray(rng(N * K), N * K, -4, 4);
          using x = Tensor.from(logits, [N, K]);
          const opts = { tau, seed: 77, offset: 3 + K }; // not a multiple of 4: blocks start mid-Philox-block
          using y = ops.gumbelSoftmax(x, opts);
          const want = gumbelRef(logits, N, K, tau, opts.seed, opts.offset);
          const what = `${level} [${N}, ${K}] tau ${tau}`;
          // (z - max)/tau in f32 is good to half an ulp of z, times 1/tau: as the scalar libm version was.
          assertClose(t, y.toFloat32Array(), want, { what: `gumbel ${what}`, atol: 1e-9, rtol: tau === 1 ? 4e-6 : 4e-5 });
          const dyData = randomArray(rng(N + K), N * K);
          using dy = Tensor.from(dyData, [N, K]);
          using dl = ops.gumbelSoftmaxBackward(y, dy, tau);
          const yv = y.toFloat32Array();
          const dlWant = new Float64Array(N * K);
          for (let n = 0; n < N; n++) {
            let dot = 0;
            for (let k = 0; k < K; k++) dot += yv[n * K + k]! * dyData[n * K + k]!;
            for (let k = 0; k < K; k++) dlWant[n * K + k] = (yv[n * K + k]! * (dyData[n * K + k]! - dot)) / tau;
          }
          assertClose(t, dl.toFloat32Array(), dlWant, { what: `gumbel backward ${what}`, atol: 1e-7 / tau, rtol: 1e-5 });
        }
    });
    if (did) ran.push(level);
  }
  t.true(ran.includes('scalar'), `ran at ${ran.join(', ')}`);
});

test('kl_uniform forward and backward match double references at every SIMD level, wide logit ranges', (t) => {
  const ran: string[] = [];
  for (const level of levels) {
    const did = withLevel(level, () => {
      for (const [N, K] of wide)
        for (const spread of [1, 8, 80]) {
          const logits = randomArray(rng(N * K + spread), N * K, -spread, spread);
          using x = Tensor.from(logits, [N, K]);
          const what = `${level} [${N}, ${K}] logits in ±${spread}`;
          using kl = ops.klUniform(x);
          const want = klRef(logits, N, K);
          assertClose(t, kl.toFloat32Array(), [want], { what: `kl ${what}`, atol: 1e-5, rtol: 2e-6 });
          using g = Tensor.from([-1.5], [1]);
          using dl = ops.klUniformBackward(x, g);
          const { p, logp, negH } = softmaxRef(logits, N, K);
          const got = dl.toFloat32Array();
          let worst = 0;
          for (let i = 0; i < N * K; i++) {
            const n = Math.floor(i / K);
            const ref = -1.5 * p[i]! * (logp[i]! - negH[n]!);
            // The f32 exp is good to 2 ulp; log p - Σ p log p then loses what cancels.
            const tol = 1e-6 * p[i]! * (Math.abs(logp[i]!) + Math.abs(negH[n]!) + 1) + 1e-30;
            worst = Math.max(worst, Math.abs(got[i]! - ref) / tol);
          }
          t.true(worst <= 1, `kl backward ${what}: worst error ${worst} of tolerance`);
        }
    });
    if (did) ran.push(level);
  }
  t.true(ran.includes('scalar'), `ran at ${ran.join(', ')}`);
});

test('gumbel_softmax agrees across SIMD levels', (t) => {
  // Not bitwise (FMA contraction in the AVX builds), but every level within 2 ulp-ish of scalar.
  const [N, K] = [8, 700];
  const logits = randomArray(rng(5), N * K, -6, 6);
  const outs: Float32Array[] = [];
  for (const level of levels)
    withLevel(level, () => {
      using x = Tensor.from(logits, [N, K]);
      using y = ops.gumbelSoftmax(x, { tau: 0.5, seed: 4, offset: 1 });
      outs.push(y.toFloat32Array());
    });
  for (const o of outs.slice(1)) assertClose(t, o, outs[0]!, { what: 'level vs scalar', atol: 1e-10, rtol: 2e-6 });
  t.true(outs.length >= 1);
});
