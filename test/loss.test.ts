import test from 'ava';

import { DalleError, Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

interface Case {
  N: number;
  V: number;
  logits: Float32Array;
  targets: Int32Array;
  weights: Float32Array;
  ranges: Int32Array;
}

/** Mixed ranges (text-like, image-like, a single-id range, the full vocab) and weights with a 0. */
function makeCase(seed: number, N = 13, V = 33, lo = -4, hi = 4): Case {
  const rand = rng(seed);
  const split = 20;
  const ranges = new Int32Array(2 * N);
  const targets = new Int32Array(N);
  const weights = randomArray(rand, N, 0.1, 1);
  for (let n = 0; n < N; n++) {
    const kind = n % 4;
    const [a, b] = kind === 0 ? [0, split] : kind === 1 ? [split, V] : kind === 2 ? [5, 6] : [0, V];
    ranges[2 * n] = a;
    ranges[2 * n + 1] = b;
    targets[n] = a + Math.floor(rand() * (b - a));
  }
  weights[Math.min(3, N - 1)] = 0;
  return { N, V, logits: randomArray(rand, N * V, lo, hi), targets, weights, ranges };
}

function ceRef(c: Case): { loss: number; per: number[] } {
  const per: number[] = [];
  let loss = 0;
  for (let n = 0; n < c.N; n++) {
    const a = c.ranges[2 * n]!;
    const b = c.ranges[2 * n + 1]!;
    const row = Array.from(c.logits.subarray(n * c.V + a, n * c.V + b));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const ce = lse - c.logits[n * c.V + c.targets[n]!]!;
    per.push(ce);
    loss += c.weights[n]! * ce;
  }
  return { loss, per };
}

function tensors(c: Case): Tensor[] {
  return [
    Tensor.from(c.logits, [c.N, c.V]),
    Tensor.from(c.targets, [c.N]),
    Tensor.from(c.weights, [c.N]),
    Tensor.from(c.ranges, [c.N, 2]),
  ];
}

function run(c: Case): { loss: number; per: Float32Array } {
  const xs = tensors(c);
  const { loss, perPosition } = ops.crossEntropy(xs[0]!, xs[1]!, xs[2]!, xs[3]!);
  const out = { loss: loss.toFloat32Array()[0]!, per: perPosition.toFloat32Array() };
  for (const x of [...xs, loss, perPosition]) x.dispose();
  return out;
}

test('crossEntropy forward matches JS with mixed ranges and weights', (t) => {
  for (const [N, V] of [[1, 33], [5, 33], [13, 33], [13, 41]] as const) {
    const seed = 1000 + N * 50 + V;
    const c = makeCase(seed, N, V);
    const ref = ceRef(c);
    const got = run(c);
    assertClose(t, got.per, ref.per, { what: `CE per position N=${N} V=${V}`, seed });
    assertClose(t, [got.loss], [ref.loss], { what: `CE loss N=${N} V=${V}`, seed });
  }
});

test('crossEntropy ignores logits outside each range, and huge logits stay finite', (t) => {
  const seed = 1101;
  const c = makeCase(seed);
  const base = run(c);
  const outside = Float32Array.from(c.logits);
  for (let n = 0; n < c.N; n++)
    for (let j = 0; j < c.V; j++)
      if (j < c.ranges[2 * n]! || j >= c.ranges[2 * n + 1]!) outside[n * c.V + j] = 3e38;
  const masked = run({ ...c, logits: outside });
  t.deepEqual(masked.per, base.per, `seed ${seed}`);
  t.is(masked.loss, base.loss);
  // A single-id range has CE exactly 0 whatever its logit.
  for (let n = 2; n < c.N; n += 4) t.is(base.per[n], 0);

  const huge = makeCase(seed + 1, 13, 33, -1e4, 1e4);
  const got = run(huge);
  t.true(got.per.every(Number.isFinite) && Number.isFinite(got.loss), 'finite with |logits| ~ 1e4');
  assertClose(t, got.per, ceRef(huge).per, { what: 'CE 1e4 logits', rtol: 1e-5, atol: 1e-2, seed: seed + 1 });
});

test('crossEntropy backward: finite differences w.r.t. logits; zero outside ranges and at weight 0', (t) => {
  const seed = 1201;
  const c = makeCase(seed, 9, 23);
  gradcheck(t, 'crossEntropy', {
    seed,
    inputs: [
      { shape: [c.N, c.V], data: c.logits },
      { shape: [c.N], data: c.targets },
      { shape: [c.N], data: c.weights },
      { shape: [c.N, 2], data: c.ranges },
    ],
    wrt: [0],
    samples: 96,
    eps: 5e-3,
    forward: ([l, tg, w, r]) => {
      const o = ops.crossEntropy(l!, tg!, w!, r!);
      o.perPosition.dispose();
      return o.loss;
    },
    backward: ([l, tg, w, r], dy) => [ops.crossEntropyBackward(l!, tg!, w!, r!, dy)],
  });
  const xs = tensors(c);
  using dloss = Tensor.from([2], [1]);
  using g = ops.crossEntropyBackward(xs[0]!, xs[1]!, xs[2]!, xs[3]!, dloss);
  const d = g.toFloat32Array();
  for (let n = 0; n < c.N; n++) {
    const [a, b] = [c.ranges[2 * n]!, c.ranges[2 * n + 1]!];
    let rowSum = 0;
    for (let j = 0; j < c.V; j++) {
      const v = d[n * c.V + j]!;
      if (j < a || j >= b || c.weights[n] === 0) t.is(v, 0, `dlogits[${n}, ${j}], seed ${seed}`);
      rowSum += v;
    }
    // softmax − onehot sums to zero over the range.
    t.true(Math.abs(rowSum) < 1e-5, `row ${n} sums to ${rowSum}`);
  }
  for (const x of xs) x.dispose();
});

test('dalleLossWeights: layout, exactly 1/8 and 7/8 of the total, and the loss it gives', (t) => {
  const layout = { textLen: 3, imageLen: 5, batch: 2, textVocab: 7 + 3, imageVocab: 6 };
  const { weights, ranges } = ops.dalleLossWeights(layout);
  const rows = 2 * (3 + 5);
  t.deepEqual(weights.shape, [rows]);
  t.deepEqual(ranges.shape, [rows, 2]);
  const w = weights.toFloat32Array();
  const r = ranges.toInt32Array();
  let text = 0;
  let image = 0;
  for (let row = 0; row < rows; row++) {
    const isText = row % 8 < 3;
    t.deepEqual([r[2 * row], r[2 * row + 1]], isText ? [0, 10] : [10, 16], `range of row ${row}`);
    if (isText) text += w[row]!;
    else image += w[row]!;
  }
  t.true(Math.abs(text - 1 / 8) < 1e-7, `text weights sum to ${text}`);
  t.true(Math.abs(image - 7 / 8) < 1e-7, `image weights sum to ${image}`);
  // Uniform logits: every text CE is ln 10 and every image CE ln 6, so L = ln(10)/8 + 7·ln(6)/8.
  using logits = Tensor.zeros([rows, 16]);
  using targets = Tensor.from(Int32Array.from({ length: rows }, (_, row) => (row % 8 < 3 ? row % 10 : 10 + (row % 6))), [rows]);
  const { loss, perPosition } = ops.crossEntropy(logits, targets, weights, ranges);
  assertClose(t, loss.toFloat32Array(), [Math.log(10) / 8 + (7 * Math.log(6)) / 8], { what: 'dalle loss', rtol: 1e-6 });
  for (const x of [weights, ranges, loss, perPosition]) x.dispose();
  for (const bad of [{ textLen: 0 }, { imageLen: 1.5 }, { batch: -1 }, { textVocab: Number.NaN }, { imageVocab: 2 ** 31 }])
    assertDalleError(t, () => ops.dalleLossWeights({ ...layout, ...bad }), 'E_INVALID_ARGUMENT', JSON.stringify(bad));
});

test('targets outside their range and bad ranges fail, naming the position, before writing', (t) => {
  const seed = 1301;
  const c = makeCase(seed, 5, 33);
  const cases: [string, (k: Case) => void, string][] = [
    ['target above its range', (k) => (k.targets[0] = 20), 'targets[0] = 20'],
    ['target below its range', (k) => (k.targets[1] = 19), 'targets[1] = 19'],
    ['negative target', (k) => (k.targets[4] = -1), 'targets[4] = -1'],
    ['empty range', (k) => k.ranges.set([5, 5], 4), 'ranges[2] = [5, 5)'],
    ['reversed range', (k) => k.ranges.set([9, 3], 4), 'ranges[2]'],
    ['range past V', (k) => k.ranges.set([20, 34], 2), 'ranges[1] = [20, 34)'],
    ['negative range start', (k) => k.ranges.set([-1, 20], 0), 'ranges[0] = [-1, 20)'],
  ];
  for (const [what, mutate, where] of cases) {
    const k: Case = { ...c, targets: Int32Array.from(c.targets), ranges: Int32Array.from(c.ranges) };
    mutate(k);
    const xs = tensors(k);
    const loss = Tensor.from([7], [1]);
    const per = Tensor.from(new Float32Array(k.N).fill(7), [k.N]);
    const err = t.throws(() => ops.runOp('cross_entropy_forward', xs, undefined, [loss, per]));
    t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', `${what}: ${String(err)}`);
    t.true(err!.message.includes(where), `${what}: ${err!.message}`);
    t.true(loss.toFloat32Array()[0] === 7 && per.toFloat32Array().every((v) => v === 7), `${what}: outputs untouched`);
    const dloss = Tensor.from([1], [1]);
    const dl = Tensor.from(new Float32Array(k.N * k.V).fill(7), [k.N, k.V]);
    const err2 = t.throws(() => ops.runOp('cross_entropy_backward', [...xs, dloss], undefined, [dl]));
    t.true(err2 instanceof DalleError && err2.code === 'E_INVALID_ARGUMENT', `${what} (backward): ${String(err2)}`);
    t.true(dl.toFloat32Array().every((v) => v === 7), `${what}: dlogits untouched`);
    for (const x of [...xs, loss, per, dloss, dl]) x.dispose();
  }
});

test('cross-entropy ops: bad inputs throw typed errors', (t) => {
  const c = makeCase(1401, 5, 33);
  const fwd = () => tensors(c);
  const callF = ([l, tg, w, r]: Tensor[]) => Object.values(ops.crossEntropy(l!, tg!, w!, r!));
  badInputBattery(t, 'cross_entropy_forward', callF, fwd, {
    wrongShape: (i) => [[6, 33], [6], [6], [5, 3]][i]!,
  });
  badInputBattery(t, 'cross_entropy_forward (rank)', callF, fwd, {
    wrongShape: (i) => [[5 * 33], [5, 1], [1, 5], [10]][i]!,
  });
  nanBattery(t, 'cross_entropy_forward', callF, fwd);
  const bwd = () => [...tensors(c), Tensor.from([1], [1])];
  const callB = ([l, tg, w, r, d]: Tensor[]) => ops.crossEntropyBackward(l!, tg!, w!, r!, d!);
  badInputBattery(t, 'cross_entropy_backward', callB, bwd, {
    wrongShape: (i) => [[4, 33], [4], [4], [5, 1], [2]][i]!,
  });
  nanBattery(t, 'cross_entropy_backward', callB, bwd);
});
