import test from 'ava';

import { DalleError, Tensor, ops, setSimdLevel, type SimdLevel } from '../lib/index.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

/** Row-major c = op(a)·op(b) in float64; a is [M, K] or [K, M], b is [K, N] or [N, K]. */
function matmulRef(
  a: Float32Array,
  b: Float32Array,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  offA = 0,
  offB = 0,
): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const av = transA ? a[offA + k * M + i]! : a[offA + i * K + k]!;
      if (av === 0) continue;
      for (let j = 0; j < N; j++) c[i * N + j]! += av * (transB ? b[offB + j * K + k]! : b[offB + k * N + j]!);
    }
  return c;
}

const shapeA = (M: number, K: number, transA: boolean) => (transA ? [K, M] : [M, K]);
const shapeB = (K: number, N: number, transB: boolean) => (transB ? [N, K] : [K, N]);
/** f32 accumulation over K terms of size <= 1, against a float64 reference. */
const tolerance = (K: number) => ({ atol: 2e-6 * K + 1e-5, rtol: 1e-5 });
const transposes = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

// Every size in every position, none a multiple of a tile (14×32, 6×16, 4×8). The last three
// run threaded: in many column panels; in too few column panels (rows split instead); and with
// K deeper than one packed slice at every level (beta = 1 on the later slices).
const sizes = [1, 3, 7, 17, 33, 65, 131, 300];
const triples = sizes.map((s, i) => [s, sizes[(i + 3) % sizes.length]!, sizes[(i + 5) % sizes.length]!] as const);
triples.push([299, 301, 300], [1100, 33, 131], [65, 131, 700]);

function withLevel(level: SimdLevel, fn: () => void): boolean {
  try {
    if (setSimdLevel(level) !== level) return false; // the CPU lacks it
    fn();
    return true;
  } finally {
    setSimdLevel(null);
  }
}

for (const [transA, transB] of transposes) {
  test(`matmul forward vs reference at odd sizes, transA=${transA} transB=${transB}, every SIMD level`, (t) => {
    const seed = 1000 + (transA ? 2 : 0) + (transB ? 1 : 0);
    const rand = rng(seed);
    const cases = triples.map(([M, N, K]) => {
      const a = randomArray(rand, M * K);
      const b = randomArray(rand, K * N);
      return { M, N, K, a, b, ref: matmulRef(a, b, M, N, K, transA, transB) };
    });
    const ran: string[] = [];
    for (const level of ['scalar', 'avx2-fma', 'avx512'] as const) {
      const did = withLevel(level, () => {
        for (const { M, N, K, a, b, ref } of cases) {
          using at = Tensor.from(a, shapeA(M, K, transA));
          using bt = Tensor.from(b, shapeB(K, N, transB));
          using c = ops.matmul(at, bt, { transA, transB });
          t.deepEqual(c.shape, [M, N]);
          assertClose(t, c.toFloat32Array(), ref, { what: `${level} M=${M} N=${N} K=${K}`, seed, ...tolerance(K) });
        }
      });
      if (did) ran.push(level);
    }
    t.true(ran.includes('scalar'), `levels run: ${ran.join(', ')}`);
  });
}

test('matmul batched: per-batch b and a shared rank-2 b, every transpose', (t) => {
  const seed = 77;
  const rand = rng(seed);
  const [B, M, N, K] = [3, 17, 9, 33];
  for (const [transA, transB] of transposes) {
    const a = randomArray(rand, B * M * K);
    for (const shared of [false, true]) {
      const b = randomArray(rand, (shared ? 1 : B) * K * N);
      using at = Tensor.from(a, [B, ...shapeA(M, K, transA)]);
      using bt = Tensor.from(b, shared ? shapeB(K, N, transB) : [B, ...shapeB(K, N, transB)]);
      using c = ops.matmul(at, bt, { transA, transB });
      t.deepEqual(c.shape, [B, M, N]);
      const got = c.toFloat32Array();
      for (let i = 0; i < B; i++) {
        const ref = matmulRef(a, b, M, N, K, transA, transB, i * M * K, shared ? 0 : i * K * N);
        assertClose(t, got.subarray(i * M * N, (i + 1) * M * N), ref, {
          what: `batch ${i} shared=${shared} transA=${transA} transB=${transB}`,
          seed,
          ...tolerance(K),
        });
      }
    }
  }
});

test('matmul backward matches its definition on a batched, shared-b product', (t) => {
  // da = dc·op(b)ᵀ and db = Σ_batch op(a)ᵀ·dc, checked exactly (not by differences) at a size
  // that runs the threaded paths.
  const seed = 91;
  const rand = rng(seed);
  const [B, M, N, K] = [2, 67, 45, 131];
  for (const [transA, transB] of transposes) {
    const a = randomArray(rand, B * M * K);
    const b = randomArray(rand, K * N);
    const dc = randomArray(rand, B * M * N);
    using at = Tensor.from(a, [B, ...shapeA(M, K, transA)]);
    using bt = Tensor.from(b, shapeB(K, N, transB));
    using dct = Tensor.from(dc, [B, M, N]);
    const grads = ops.matmulBackward(at, bt, dct, { transA, transB });
    using da = grads.da;
    using db = grads.db;
    t.deepEqual(da.shape, at.shape);
    t.deepEqual(db.shape, bt.shape);
    const daRef = new Float64Array(B * M * K);
    const dbRef = new Float64Array(K * N);
    for (let i = 0; i < B; i++)
      for (let m = 0; m < M; m++)
        for (let k = 0; k < K; k++)
          for (let n = 0; n < N; n++) {
            const g = dc[i * M * N + m * N + n]!;
            const bv = transB ? b[n * K + k]! : b[k * N + n]!;
            const av = transA ? a[i * M * K + k * M + m]! : a[i * M * K + m * K + k]!;
            daRef[i * M * K + (transA ? k * M + m : m * K + k)]! += g * bv;
            dbRef[transB ? n * K + k : k * N + n]! += g * av;
          }
    const what = `transA=${transA} transB=${transB}`;
    assertClose(t, da.toFloat32Array(), daRef, { what: `da ${what}`, seed, ...tolerance(N) });
    assertClose(t, db.toFloat32Array(), dbRef, { what: `db ${what}`, seed, ...tolerance(B * M) });
  }
});

for (const [transA, transB] of transposes) {
  for (const layout of ['2d', 'batched', 'shared-b'] as const) {
    test(`matmul backward: finite differences, ${layout}, transA=${transA} transB=${transB}`, (t) => {
      const seed = 300 + (transA ? 20 : 0) + (transB ? 10 : 0) + ['2d', 'batched', 'shared-b'].indexOf(layout);
      const rand = rng(seed);
      const [M, N, K] = [5, 3, 7];
      const batch = layout === '2d' ? [] : [2];
      const aShape = [...batch, ...shapeA(M, K, transA)];
      const bShape = [...(layout === 'batched' ? batch : []), ...shapeB(K, N, transB)];
      const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
      gradcheck(t, `matmul ${layout}`, {
        seed,
        inputs: [
          { shape: aShape, data: randomArray(rand, size(aShape)) },
          { shape: bShape, data: randomArray(rand, size(bShape)) },
        ],
        wrt: [0, 1],
        forward: ([a, b]) => ops.matmul(a!, b!, { transA, transB }),
        backward: ([a, b], dc) => {
          const { da, db } = ops.matmulBackward(a!, b!, dc, { transA, transB });
          return [da, db];
        },
      });
    });
  }
}

test('matmul: bad inputs throw typed errors', (t) => {
  const rand = rng(5);
  const good = () => [Tensor.from(randomArray(rand, 15), [3, 5]), Tensor.from(randomArray(rand, 20), [5, 4])];
  // Wrong inner dims: a's K or b's K off by one.
  badInputBattery(t, 'matmul_forward', ([a, b]) => ops.matmul(a!, b!), good, {
    wrongShape: (i) => (i === 0 ? [3, 6] : [6, 4]),
  });
  const goodBwd = () => [...good(), Tensor.from(randomArray(rand, 12), [3, 4])];
  badInputBattery(t, 'matmul_backward', ([a, b, dc]) => ops.matmulBackward(a!, b!, dc!), goodBwd, {
    wrongShape: (i) => (i === 0 ? [3, 6] : i === 1 ? [6, 4] : [3, 5]),
  });
  nanBattery(t, 'matmul_forward', ([a, b]) => ops.matmul(a!, b!), good);
  nanBattery(t, 'matmul_backward', ([a, b, dc]) => ops.matmulBackward(a!, b!, dc!), goodBwd);
});

test('matmul: ranks, batches, transposes and attributes are checked', (t) => {
  const z = (shape: number[]) => Tensor.zeros(shape);
  const bad = (what: string, fn: () => unknown) => assertDalleError(t, fn, 'E_INVALID_ARGUMENT', what);
  using a2 = z([3, 5]);
  using b2 = z([5, 4]);
  using a1 = z([5]);
  using a4 = z([1, 2, 3, 5]);
  using a3 = z([2, 3, 5]);
  using b3 = z([3, 5, 4]);
  using b3ok = z([2, 5, 4]);
  bad('rank-1 a', () => ops.matmul(a1, b2));
  bad('rank-4 a', () => ops.matmul(a4, b2));
  bad('rank-3 b with rank-2 a', () => ops.matmul(a2, b3ok));
  bad('batch mismatch', () => ops.matmul(a3, b3));
  bad('transB makes the inner dims differ', () => ops.matmul(a2, b2, { transB: true }));
  bad('transA makes the inner dims differ', () => ops.matmul(a2, b2, { transA: true }));
  const err = t.throws(() => ops.runOp('matmul_forward', [a2, b2], { trans_a: 2 }));
  t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', String(err));
  using dcBatch = z([2, 4, 3]);
  bad('dc with the wrong batch', () => ops.matmulBackward(a3, b3ok, dcBatch));
  using ok = ops.matmul(a3, b3ok);
  t.deepEqual(ok.shape, [2, 3, 4]);
});
