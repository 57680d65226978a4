import test from 'ava';

import { DalleError, Tensor, ops } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

function randomIds(rand: () => number, n: number, V: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * V));
}

/** Scatter-add in float64, in position order. */
function embeddingBackwardRef(ids: Int32Array, dy: Float32Array, V: number, C: number): Float64Array {
  const out = new Float64Array(V * C);
  ids.forEach((id, i) => {
    for (let c = 0; c < C; c++) out[id * C + c]! += dy[i * C + c]!;
  });
  return out;
}

test('embedding forward copies table rows, for [N] and [B, N] ids', (t) => {
  for (const C of [1, 7, 33]) {
    for (const idsShape of [[1], [13], [5, 3]]) {
      const seed = 700 + C * 10 + idsShape.length;
      const rand = rng(seed);
      const V = 11;
      const n = idsShape.reduce((a, b) => a * b, 1);
      const ids = randomIds(rand, n, V);
      const table = randomArray(rand, V * C);
      using it = Tensor.from(ids, idsShape);
      using tt = Tensor.from(table, [V, C]);
      using y = ops.embedding(it, tt);
      t.deepEqual(y.shape, [...idsShape, C]);
      const ref = Array.from(ids).flatMap((id) => Array.from(table.subarray(id * C, (id + 1) * C)));
      t.deepEqual(Array.from(y.toFloat32Array()), ref, `embedding C=${C} ids [${idsShape.join(', ')}], seed ${seed}`);
    }
  }
});

test('embedding backward accumulates repeated ids and leaves unused rows zero', (t) => {
  for (const C of [1, 7, 33]) {
    const seed = 800 + C;
    const rand = rng(seed);
    const V = 9;
    // Ids drawn from [0, 4) with V = 9: plenty of repeats, and rows 4..8 must stay exactly 0.
    const ids = randomIds(rand, 5 * 13, 4);
    ids[0] = 2;
    ids[1] = 2;
    const dy = randomArray(rand, ids.length * C);
    using it = Tensor.from(ids, [5, 13]);
    using dyt = Tensor.from(dy, [5, 13, C]);
    using g = ops.embeddingBackward(it, dyt, { vocab: V });
    t.deepEqual(g.shape, [V, C]);
    const v = g.toFloat32Array();
    assertClose(t, v, embeddingBackwardRef(ids, dy, V, C), { what: `embeddingBackward C=${C}`, seed });
    t.true(v.subarray(4 * C).every((x) => x === 0), 'unused rows are zero');
  }
});

test('embeddingBackward is bit-for-bit deterministic with heavy repetition', (t) => {
  const seed = 901;
  const rand = rng(seed);
  const ids = randomIds(rand, 4001, 3);
  using it = Tensor.from(ids, [4001]);
  using dy = Tensor.from(randomArray(rand, 4001 * 33), [4001, 33]);
  using a = ops.embeddingBackward(it, dy, { vocab: 17 });
  using b = ops.embeddingBackward(it, dy, { vocab: 17 });
  t.deepEqual(a.toFloat32Array(), b.toFloat32Array());
  assertClose(t, a.toFloat32Array(), embeddingBackwardRef(ids, dy.toFloat32Array(), 17, 33), {
    what: 'embeddingBackward 4001 positions',
    atol: 1e-3,
    seed,
  });
});

test('embedding backward: finite differences w.r.t. the table', (t) => {
  const seed = 77;
  const rand = rng(seed);
  const V = 6;
  const C = 5;
  const ids = Int32Array.from([0, 3, 3, 5, 0, 3, 1]);
  gradcheck(t, 'embedding', {
    seed,
    inputs: [
      { shape: [7], data: ids },
      { shape: [V, C], data: randomArray(rand, V * C) },
    ],
    wrt: [1],
    forward: ([i, table]) => ops.embedding(i!, table!),
    backward: ([i], dy) => [ops.embeddingBackward(i!, dy, { vocab: V })],
  });
});

test('ids outside [0, V) fail with the position and value, before any output is written', (t) => {
  const V = 4;
  const C = 3;
  using table = Tensor.from(randomArray(rng(3), V * C), [V, C]);
  for (const [bad, where] of [
    [4, 'ids[1, 2] = 4'],
    [-1, 'ids[1, 2] = -1'],
  ] as const) {
    using ids = Tensor.from(Int32Array.from([0, 1, 2, 3, 1, bad]), [2, 3]);
    const sentinel = new Float32Array(6 * C).fill(42);
    using out = Tensor.from(sentinel, [2, 3, C]);
    const err = t.throws(() => ops.runOp1('embedding_forward', [ids, table], undefined, out));
    t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', String(err));
    t.true(err!.message.includes(where), err!.message);
    t.deepEqual(out.toFloat32Array(), sentinel, 'forward output untouched');
    using dy = Tensor.from(randomArray(rng(4), 6 * C), [2, 3, C]);
    const dsentinel = new Float32Array(V * C).fill(42);
    using dout = Tensor.from(dsentinel, [V, C]);
    const err2 = t.throws(() => ops.runOp1('embedding_backward', [ids, dy], { vocab: V }, dout));
    t.true(err2 instanceof DalleError && err2.code === 'E_INVALID_ARGUMENT', String(err2));
    t.true(err2!.message.includes(where), err2!.message);
    t.deepEqual(dout.toFloat32Array(), dsentinel, 'backward output untouched');
  }
  using flat = Tensor.from(Int32Array.from([0, 7]), [2]);
  const err = t.throws(() => ops.embedding(flat, table));
  t.true(err!.message.includes('ids[1] = 7'), err!.message);
});

test('embeddingBackward validates the vocab attribute', (t) => {
  using ids = Tensor.from(Int32Array.from([0, 1]), [2]);
  using dy = Tensor.from([1, 2, 3, 4], [2, 2]);
  for (const vocab of [0, -3, 1.5, Number.NaN])
    assertDalleError(t, () => ops.embeddingBackward(ids, dy, { vocab }), 'E_INVALID_ARGUMENT', `vocab ${vocab}`);
  assertDalleError(t, () => ops.runOp1('embedding_backward', [ids, dy]), 'E_INVALID_ARGUMENT', 'vocab missing');
});

test('embedding ops: bad inputs throw typed errors', (t) => {
  const rand = rng(55);
  const fwd = () => [Tensor.from(randomIds(rand, 6, 5), [2, 3]), Tensor.from(randomArray(rand, 5 * 4), [5, 4])];
  badInputBattery(t, 'embedding_forward', ([i, tb]) => ops.embedding(i!, tb!), fwd, {
    wrongShape: (i) => (i === 0 ? [1, 2, 3] : [20]),
  });
  nanBattery(t, 'embedding_forward', ([i, tb]) => ops.embedding(i!, tb!), fwd);
  const bwd = () => [Tensor.from(randomIds(rand, 6, 5), [2, 3]), Tensor.from(randomArray(rand, 6 * 4), [2, 3, 4])];
  const call = ([i, dy]: Tensor[]) => ops.embeddingBackward(i!, dy!, { vocab: 5 });
  badInputBattery(t, 'embedding_backward', call, bwd, { wrongShape: (i) => (i === 0 ? [6] : [3, 2, 4]) });
  badInputBattery(t, 'embedding_backward (rank)', call, bwd, { wrongShape: (i) => (i === 0 ? null : [6, 4]) });
  nanBattery(t, 'embedding_backward', call, bwd);
});
