/**
 * Test helpers in the style of ggml's test-backend-ops: seeded random inputs (the seed is in every
 * failure message), finite-difference gradient checks, and the bad-input battery every op faces.
 */
import type { ExecutionContext } from 'ava';

import { DalleError, Tensor, setCheckFinite, type DalleErrorCode } from '../../lib/index.js';
import { mulberry32 } from '../../lib/rng.js';

/** Seeded randomness for tests: the library's mulberry32, so a printed seed reproduces a failure. */
export const rng = mulberry32;

/** Uniform values in [lo, hi). */
export function randomArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

export function randomTensor(rand: () => number, shape: readonly number[], lo = -1, hi = 1): Tensor {
  return Tensor.from(randomArray(rand, shape.reduce((a, b) => a * b, 1), lo, hi), shape);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Asserts |a-b| <= atol + rtol·|b| elementwise, reporting the worst index and the seed. */
export function assertClose(
  t: ExecutionContext,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; what: string; seed?: number },
): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-4;
  if (actual.length !== expected.length) {
    t.fail(`${opts.what}: length ${actual.length} != ${expected.length}`);
    return;
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0)
    t.fail(
      `${opts.what}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${atol}, rtol ${rtol})${opts.seed !== undefined ? `, seed ${opts.seed}` : ''}`,
    );
  else t.pass();
}

export interface GradCheckCase {
  seed: number;
  /** Input values; those listed in `wrt` are perturbed. */
  inputs: { shape: readonly number[]; data: Float32Array | Int32Array }[];
  /** Indices of inputs to check (float inputs only). */
  wrt: number[];
  /** The op under test: returns its (first) output. */
  forward: (xs: Tensor[]) => Tensor;
  /** Analytic gradients w.r.t. each `wrt` input, given dL/dy. */
  backward: (xs: Tensor[], dy: Tensor) => Tensor[];
  /** Coordinates checked per input (random subset when larger). */
  samples?: number;
  eps?: number;
  atol?: number;
  rtol?: number;
}

/**
 * Central-difference check of backward against forward on the scalar L = Σ y·r, r a fixed random
 * projection, so every output element contributes with its own weight.
 */
export function gradcheck(t: ExecutionContext, what: string, c: GradCheckCase): void {
  const rand = rng(c.seed ^ 0x9e3779b9);
  const make = (data: Float32Array | Int32Array, shape: readonly number[]) => Tensor.from(data, shape);
  const xs = c.inputs.map((i) => make(i.data, i.shape));
  const y0 = c.forward(xs);
  const r = randomArray(rand, y0.size);
  const dy = Tensor.from(r, y0.shape);
  const grads = c.backward(xs, dy).map((g) => g.toFloat32Array());
  y0.dispose();
  const loss = (inputs: Tensor[]): number => {
    const y = c.forward(inputs);
    const v = y.toFloat32Array();
    y.dispose();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * r[i]!;
    return s;
  };
  const eps = c.eps ?? 1e-2;
  c.wrt.forEach((inputIndex, gi) => {
    const base = c.inputs[inputIndex]!.data as Float32Array;
    const n = base.length;
    const picks = n <= (c.samples ?? 64) ? [...Array(n).keys()] : Array.from({ length: c.samples ?? 64 }, () => Math.floor(rand() * n));
    const numeric: number[] = [];
    const analytic: number[] = [];
    for (const k of picks) {
      const perturbed = (delta: number) => {
        const d = Float32Array.from(base);
        d[k]! += delta;
        const inputs = xs.map((x, j) => (j === inputIndex ? make(d, c.inputs[j]!.shape) : x));
        const v = loss(inputs);
        inputs[inputIndex]!.dispose();
        return v;
      };
      numeric.push((perturbed(eps) - perturbed(-eps)) / (2 * eps));
      analytic.push(grads[gi]![k]!);
    }
    assertClose(t, analytic, numeric, {
      what: `${what}: d/d input ${inputIndex}`,
      atol: c.atol ?? 2e-2,
      rtol: c.rtol ?? 2e-2,
      seed: c.seed,
    });
  });
  for (const x of xs) x.dispose();
  dy.dispose();
}

/** Asserts fn throws a DalleError with the given code (never a crash, never another error). */
export function assertDalleError(t: ExecutionContext, fn: () => unknown, code: DalleErrorCode, what: string): void {
  const err = t.throws(fn, undefined, what);
  if (!(err instanceof DalleError)) {
    t.fail(`${what}: threw ${String(err)}, not a DalleError`);
    return;
  }
  t.is(err.code, code, `${what}: ${err.message}`);
}

/**
 * The bad-input battery: a disposed tensor, an empty tensor, wrong dtype and (when `reshape` is
 * given) a wrong shape for each input; each must throw a DalleError with the right code. NaN must
 * either propagate or, with setCheckFinite(true), throw E_NON_FINITE.
 */
export function badInputBattery(
  t: ExecutionContext,
  op: string,
  call: (xs: Tensor[]) => unknown,
  good: () => Tensor[],
  opts: { wrongShape?: (i: number, shape: readonly number[]) => readonly number[] | null; floatInputs?: number[] } = {},
): void {
  const n = good().length;
  for (let i = 0; i < n; i++) {
    const xs = good();
    const victim = xs[i]!;
    const shape = victim.shape;
    const dtype = victim.dtype;
    // disposed
    victim.dispose();
    assertDalleError(t, () => call(xs), 'E_DISPOSED', `${op}: input ${i} disposed`);
    // empty
    xs[i] = Tensor.zeros([0, ...shape.slice(1)], { dtype });
    assertDalleError(t, () => call(xs), 'E_EMPTY_TENSOR', `${op}: input ${i} empty`);
    xs[i]!.dispose();
    // wrong dtype
    xs[i] = Tensor.zeros(shape, { dtype: dtype === 'i32' ? 'f32' : 'i32' });
    assertDalleError(t, () => call(xs), 'E_DTYPE', `${op}: input ${i} wrong dtype`);
    xs[i]!.dispose();
    // wrong shape
    const bad = opts.wrongShape?.(i, shape);
    if (bad) {
      xs[i] = Tensor.zeros(bad, { dtype });
      assertDalleError(t, () => call(xs), 'E_INVALID_ARGUMENT', `${op}: input ${i} shape [${bad.join(', ')}]`);
      xs[i]!.dispose();
    }
    for (const x of xs) x.dispose();
  }
}

/**
 * NaN in any float input: with finite checking off the op must return (NaN may propagate) or
 * throw a DalleError; with it on, it must throw E_NON_FINITE.
 */
export function nanBattery(t: ExecutionContext, op: string, call: (xs: Tensor[]) => unknown, good: () => Tensor[]): void {
  const n = good().length;
  for (let i = 0; i < n; i++) {
    const xs = good();
    const victim = xs[i]!;
    if (victim.dtype !== 'f32') {
      for (const x of xs) x.dispose();
      continue;
    }
    const v = victim.toFloat32Array();
    v[v.length >> 1] = Number.NaN;
    victim.write(v);
    try {
      const out = call(xs);
      for (const o of Array.isArray(out) ? out : [out]) if (o instanceof Tensor) o.dispose();
    } catch (err) {
      t.true(err instanceof DalleError, `${op}: NaN in input ${i} threw ${String(err)}`);
    }
    setCheckFinite(true);
    try {
      assertDalleError(t, () => call(xs), 'E_NON_FINITE', `${op}: NaN in input ${i} with finite checks`);
    } finally {
      setCheckFinite(false);
    }
    for (const x of xs) x.dispose();
  }
}
