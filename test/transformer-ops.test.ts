/**
 * The transformer's glue ops and KV-cache sampler ops (native/kernels/transformer): QKV split and
 * head merge, the in-place cache write, attention against the cache, and the DALL·E sequence
 * embedding. References are written here from the spec, independently of the native code; every
 * random case prints its seed on failure.
 */
import test, { type ExecutionContext } from 'ava';

import { DalleError, Tensor, buildInfo, loadAddon, ops } from '../lib/index.js';
import type { AttentionMaskKind } from '../lib/ops/attention.js';
import { specAllowed, specMask } from './helpers/masks.js';
import { assertClose, assertDalleError, badInputBattery, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const KINDS: AttentionMaskKind[] = ['causal', 'row', 'column', 'conv'];
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const rnd = (seed: number, shape: readonly number[], lo = -1, hi = 1) => Tensor.from(randomArray(rng(seed), numel(shape), lo, hi), shape);

/** Exact equality of two float arrays, bit for bit, reporting the first difference. */
function assertSameBits(t: ExecutionContext, got: Float32Array, want: Float32Array, what: string): void {
  if (got.length !== want.length) {
    t.fail(`${what}: length ${got.length} != ${want.length}`);
    return;
  }
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) {
      t.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
      return;
    }
  t.pass();
}

// ---- QKV split and head merge ------------------------------------------------------------------

/** x [B, S, 3·H·D] -> q, k, v [B, H, S, D], from the spec's index formula. */
function qkvSplitRef(x: Float32Array, B: number, S: number, H: number, D: number): Float32Array[] {
  const C = H * D;
  return [0, 1, 2].map((part) => {
    const out = new Float32Array(B * H * S * D);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let s = 0; s < S; s++)
          for (let d = 0; d < D; d++) out[((b * H + h) * S + s) * D + d] = x[(b * S + s) * 3 * C + part * C + h * D + d]!;
    return out;
  });
}

/** x [B, H, S, D] -> y [B, S, H·D]. */
function headsMergeRef(x: Float32Array, B: number, H: number, S: number, D: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) y[(b * S + s) * H * D + h * D + d] = x[((b * H + h) * S + s) * D + d]!;
  return y;
}

/** dy [B, S, H·D] -> dx [B, H, S, D]: the inverse of headsMergeRef, written the other way round. */
function headsSplitRef(y: Float32Array, B: number, H: number, S: number, D: number): Float32Array {
  const x = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const d = i % D;
    const h = Math.floor(i / D) % H;
    const s = Math.floor(i / (H * D)) % S;
    const b = Math.floor(i / (S * H * D));
    x[((b * H + h) * S + s) * D + d] = y[i]!;
  }
  return x;
}

const SPLIT_SHAPES: [number, number, number, number][] = [
  // B, S, H, D
  [2, 7, 3, 5],
  [1, 13, 1, 7],
  [3, 5, 4, 3],
  [1, 1, 2, 1],
];

for (const [B, S, H, D] of SPLIT_SHAPES)
  test(`qkv split / heads merge B=${B} S=${S} H=${H} D=${D}: values and exact inverses`, (t) => {
    const seed = 100 + B * 1000 + S * 100 + H * 10 + D;
    const C = H * D;
    const xa = randomArray(rng(seed), B * S * 3 * C);
    using x = Tensor.from(xa, [B, S, 3 * C]);
    const { q, k, v } = ops.qkvSplit(x, { heads: H });
    const want = qkvSplitRef(xa, B, S, H, D);
    [q, k, v].forEach((got, i) => {
      t.deepEqual(got.shape, [B, H, S, D], `${'qkv'[i]} shape, seed ${seed}`);
      assertSameBits(t, got.toFloat32Array(), want[i]!, `${'qkv'[i]} values, seed ${seed}`);
    });
    // Backward is the inverse permutation: it rebuilds x exactly from q, k, v...
    using dx = ops.qkvSplitBackward(q, k, v);
    t.deepEqual(dx.shape, [B, S, 3 * C]);
    assertSameBits(t, dx.toFloat32Array(), xa, `qkvSplitBackward(qkvSplit(x)) == x, seed ${seed}`);
    // ...and splitting its output of random gradients gives them back.
    const grads = [1, 2, 3].map((o) => randomArray(rng(seed + o), B * H * S * D));
    const gt = grads.map((g) => Tensor.from(g, [B, H, S, D]));
    using dx2 = ops.qkvSplitBackward(gt[0]!, gt[1]!, gt[2]!);
    const back = qkvSplitRef(dx2.toFloat32Array(), B, S, H, D);
    back.forEach((b, i) => assertSameBits(t, b, grads[i]!, `split(qkvSplitBackward(d${'qkv'[i]})), seed ${seed}`));

    // Merging q's heads gives x's first C columns; merge backward undoes the merge.
    using y = ops.headsMerge(q);
    t.deepEqual(y.shape, [B, S, C]);
    const ya = y.toFloat32Array();
    assertSameBits(t, ya, headsMergeRef(q.toFloat32Array(), B, H, S, D), `headsMerge, seed ${seed}`);
    const firstC = new Float32Array(B * S * C);
    for (let r = 0; r < B * S; r++) firstC.set(xa.subarray(r * 3 * C, r * 3 * C + C), r * C);
    assertSameBits(t, ya, firstC, `headsMerge(q) == x[..., :C], seed ${seed}`);
    const dya = randomArray(rng(seed + 7), B * S * C);
    using dy = Tensor.from(dya, [B, S, C]);
    using dxh = ops.headsMergeBackward(dy, { heads: H });
    t.deepEqual(dxh.shape, [B, H, S, D]);
    assertSameBits(t, dxh.toFloat32Array(), headsSplitRef(dya, B, H, S, D), `headsMergeBackward, seed ${seed}`);
    using round = ops.headsMerge(dxh);
    assertSameBits(t, round.toFloat32Array(), dya, `headsMerge(headsMergeBackward(dy)) == dy, seed ${seed}`);
    for (const z of [q, k, v, ...gt]) z.dispose();
  });

test('qkv split / heads merge: bad inputs throw typed errors', (t) => {
  const split = ([x]: Tensor[]) => Object.values(ops.qkvSplit(x!, { heads: 2 }));
  const goodX = () => [rnd(1, [2, 3, 12])];
  badInputBattery(t, 'qkv_split_forward', split, goodX, { wrongShape: () => [6, 12] });
  nanBattery(t, 'qkv_split_forward', split, goodX);
  using x = rnd(2, [2, 3, 12]);
  for (const [heads, why] of [
    [0, 'heads 0'],
    [3, '12 is not a multiple of 3·3'],
    [5, '12 is not a multiple of 3·5'],
    [1.5, 'fractional heads'],
    [13, 'heads > last dim'],
    [-1, 'negative heads'],
  ] as const)
    assertDalleError(t, () => ops.qkvSplit(x, { heads }), 'E_INVALID_ARGUMENT', `qkvSplit: ${why}`);
  assertDalleError(t, () => ops.runOp('qkv_split_forward', [x]), 'E_INVALID_ARGUMENT', 'qkvSplit: missing heads');
  using x10 = rnd(3, [2, 3, 10]);
  assertDalleError(t, () => ops.qkvSplit(x10, { heads: 1 }), 'E_INVALID_ARGUMENT', 'qkvSplit: last dim not a multiple of 3');

  const goodG = () => [rnd(4, [2, 2, 3, 2]), rnd(5, [2, 2, 3, 2]), rnd(6, [2, 2, 3, 2])];
  const splitBack = ([a, b, c]: Tensor[]) => ops.qkvSplitBackward(a!, b!, c!);
  badInputBattery(t, 'qkv_split_backward', splitBack, goodG, { wrongShape: (i) => (i === 0 ? [2, 2, 3] : [2, 2, 4, 2]) });
  nanBattery(t, 'qkv_split_backward', splitBack, goodG);

  const merge = ([a]: Tensor[]) => ops.headsMerge(a!);
  const goodM = () => [rnd(7, [2, 3, 4, 5])];
  badInputBattery(t, 'heads_merge_forward', merge, goodM, { wrongShape: () => [6, 4, 5] });
  nanBattery(t, 'heads_merge_forward', merge, goodM);

  const mergeBack = ([a]: Tensor[]) => ops.headsMergeBackward(a!, { heads: 3 });
  const goodD = () => [rnd(8, [2, 4, 15])];
  badInputBattery(t, 'heads_merge_backward', mergeBack, goodD, { wrongShape: () => [2, 4, 16] });
  nanBattery(t, 'heads_merge_backward', mergeBack, goodD);
  using dy = rnd(9, [2, 4, 15]);
  for (const heads of [0, 2, 4, 16, 2.5])
    assertDalleError(t, () => ops.headsMergeBackward(dy, { heads }), 'E_INVALID_ARGUMENT', `headsMergeBackward heads ${heads}`);
});

// ---- KV cache write ----------------------------------------------------------------------------

test('kv_cache_write writes rows pos..pos+n-1 in place and leaves the rest untouched', (t) => {
  const [B, H, Smax, D] = [2, 3, 11, 5];
  for (const [pos, n] of [
    [0, 1],
    [0, 11],
    [4, 3],
    [10, 1],
    [3, 8],
  ] as const) {
    const seed = 2000 + pos * 20 + n;
    const before = randomArray(rng(seed), B * H * Smax * D);
    const xa = randomArray(rng(seed + 1), B * H * n * D);
    using cache = Tensor.from(before, [B, H, Smax, D]);
    using x = Tensor.from(xa, [B, H, n, D]);
    t.is(ops.kvCacheWrite(cache, x, { pos }), undefined);
    const want = Float32Array.from(before);
    for (let bh = 0; bh < B * H; bh++)
      for (let s = 0; s < n; s++)
        for (let d = 0; d < D; d++) want[(bh * Smax + pos + s) * D + d] = xa[(bh * n + s) * D + d]!;
    assertSameBits(t, cache.toFloat32Array(), want, `kvCacheWrite pos=${pos} n=${n}, seed ${seed}`);
    t.deepEqual(x.toFloat32Array(), xa, 'x unchanged');
  }
});

test('kv_cache_write: declared as mutating the cache, bad inputs rejected', (t) => {
  const info = loadAddon().opInfo('kv_cache_write');
  t.deepEqual(info.inputs, ['cache', 'x']);
  t.deepEqual(info.outputs, []);
  t.deepEqual(info.mutatedInputs, [0]);
  const shape = [1, 2, 6, 3];
  using cache = rnd(10, shape);
  using x = rnd(11, [1, 2, 2, 3]);
  const bad = (pos: number, what: string, xx: Tensor = x) => assertDalleError(t, () => ops.kvCacheWrite(cache, xx, { pos }), 'E_INVALID_ARGUMENT', what);
  bad(5, 'pos 5 + n 2 > Smax 6');
  bad(7, 'pos > Smax');
  bad(-1, 'negative pos');
  bad(1.5, 'fractional pos');
  using long = rnd(12, [1, 2, 7, 3]);
  bad(0, 'n > Smax', long);
  using otherD = rnd(13, [1, 2, 2, 4]);
  bad(0, 'x with another D', otherD);
  using otherH = rnd(14, [1, 1, 2, 3]);
  bad(0, 'x with another H', otherH);
  using otherB = rnd(15, [2, 2, 2, 3]);
  bad(0, 'x with another B', otherB);
  // A view of the cache as x would copy a buffer onto itself.
  using view = cache.reshape(shape);
  bad(0, 'x sharing the cache memory', view);
  assertDalleError(t, () => ops.runOp('kv_cache_write', [cache, x]), 'E_INVALID_ARGUMENT', 'missing pos');
  const call = ([c, xx]: Tensor[]) => ops.kvCacheWrite(c!, xx!, { pos: 1 });
  const good = () => [rnd(16, shape), rnd(17, [1, 2, 2, 3])];
  badInputBattery(t, 'kv_cache_write', call, good, { wrongShape: (i) => (i === 0 ? [2, 6, 3] : [1, 2, 2]) });
  nanBattery(t, 'kv_cache_write', call, good);
});

// ---- attention against the cache ---------------------------------------------------------------


test('attention_mask raster: 1 equals the raster-order spec predicate for every kind', (t) => {
  let checked = 0;
  for (let W = 1; W <= 6; W++)
    for (const T of [1, 3])
      for (const nImg of new Set([W * W, W * W - 1, Math.floor((W * W) / 2)])) {
        const S = T + nImg;
        for (const kind of KINDS) {
          using m = ops.attentionMask(S, { mask: kind, textLen: T, grid: W }, { raster: true });
          t.deepEqual(m.shape, [S, S]);
          const got = m.toInt32Array();
          const want = specMask(kind, T, W, S, 'raster');
          const bad = got.findIndex((x, i) => x !== want[i]);
          t.is(bad, -1, `raster ${kind} W=${W} T=${T} nImg=${nImg}: first mismatch at query ${Math.floor(bad / S)}, key ${bad % S}`);
          // Only the column mask depends on the layout.
          using kernel = ops.attentionMask(S, { mask: kind, textLen: T, grid: W }, { raster: false });
          using dflt = ops.attentionMask(S, { mask: kind, textLen: T, grid: W });
          t.deepEqual(kernel.toInt32Array(), dflt.toInt32Array(), 'raster: false is the default');
          if (kind !== 'column' || W === 1) t.deepEqual(got, kernel.toInt32Array(), `${kind} W=${W}: same in both layouts`);
          checked++;
        }
      }
  t.true(checked > 100);
  // The 4×4 example of the paper's Fig. 11, column mask in raster order: cell 9 sees 1, 5, 9.
  using m = ops.attentionMask(6 + 16, { mask: 'column', textLen: 6, grid: 4 }, { raster: true });
  const row = m.toInt32Array().subarray((6 + 9) * 22, (6 + 10) * 22);
  t.deepEqual([...row.keys()].filter((k) => row[k]), [0, 1, 2, 3, 4, 5, 6 + 1, 6 + 5, 6 + 9]);
  using like = Tensor.zeros([8], { dtype: 'i32' });
  for (const raster of [2, -1, 0.5])
    assertDalleError(t, () => ops.runOp1('attention_mask', [like], { mask: 2, text_len: 2, grid: 3, raster }), 'E_INVALID_ARGUMENT', `raster ${raster}`);
});

/** Rows [start, start + len) of every head of x [BH, S, D]. */
function seqSlice(x: Float32Array, BH: number, S: number, D: number, start: number, len: number): Float32Array {
  const out = new Float32Array(BH * len * D);
  for (let h = 0; h < BH; h++) out.set(x.subarray((h * S + start) * D, (h * S + start + len) * D), h * len * D);
  return out;
}

/** x [BH, S, D] padded with `fill` rows to [BH, Smax, D]: a cache whose tail holds garbage. */
function padSeq(x: Float32Array, BH: number, S: number, Smax: number, D: number, fill: number): Float32Array {
  const out = new Float32Array(BH * Smax * D).fill(fill);
  for (let h = 0; h < BH; h++) out.set(x.subarray(h * S * D, (h + 1) * S * D), h * Smax * D);
  return out;
}

interface CachedCase {
  T: number;
  W: number;
  /** Sequence length the test covers: T + W² − 1 (what the model sees) or shorter. */
  S: number;
  D: number;
}

const CACHED_CASES: CachedCase[] = [];
for (const [T, W, D] of [
  [1, 3, 5],
  [4, 3, 7],
  [1, 4, 7],
  [4, 4, 5],
  [1, 5, 5],
  [4, 5, 7],
] as const)
  for (const S of [T + W * W - 1, T + Math.floor((W * W) / 2)]) CACHED_CASES.push({ T, W, S, D });

const [CB, CH] = [2, 3];

for (const kind of KINDS)
  for (const c of CACHED_CASES)
    test(`attention_cached ${kind} T=${c.T} W=${c.W} S=${c.S} D=${c.D}: whole, one by one, chunks, garbage tail`, (t) => {
      const seed = 3000 + 1000 * KINDS.indexOf(kind) + 100 * c.W + 10 * c.T + c.S;
      const { T, W, S, D } = c;
      const BH = CB * CH;
      const Smax = S + 3;
      const shape = [CB, CH, S, D];
      const rand = rng(seed);
      // ±2 gives peaked softmaxes at D = 5, so one wrong key visibly moves an output.
      const [qa, ka, va] = [0, 1, 2].map(() => randomArray(rand, BH * S * D, -2, 2)) as [Float32Array, Float32Array, Float32Array];
      const layout = { pos: 0, mask: kind, textLen: T, grid: W };
      const what = `${kind} T=${T} W=${W} S=${S} D=${D}, seed ${seed}`;

      // (a) the whole sequence at once, cache tail NaN, == dense attention under the raster mask.
      using q = Tensor.from(qa, shape);
      using k = Tensor.from(ka, shape);
      using v = Tensor.from(va, shape);
      using kc = Tensor.from(padSeq(ka, BH, S, Smax, D, Number.NaN), [CB, CH, Smax, D]);
      using vc = Tensor.from(padSeq(va, BH, S, Smax, D, Number.NaN), [CB, CH, Smax, D]);
      using whole = ops.attentionCached(q, kc, vc, layout);
      t.deepEqual(whole.shape, shape);
      const wa = whole.toFloat32Array();
      t.true(wa.every(Number.isFinite), `${what}: NaN rows past the sequence leaked into the output`);
      using mask = ops.attentionMask(S, { mask: kind, textLen: T, grid: W }, { raster: true });
      const dense = ops.attentionDense(q, k, v, mask);
      assertClose(t, wa, dense.out.toFloat32Array(), { what: `${what}: whole vs dense raster`, atol: 1e-5, seed });
      dense.out.dispose();
      dense.lse.dispose();

      // (c) column layers train in the transposed layout; the cache must agree with them.
      if (kind === 'column' && S - T >= W * W - 1) {
        const flat = [BH, S, D];
        const lay = { textLen: T, grid: W };
        const toCol = (x: Tensor) => {
          using view = x.reshape(flat);
          using y = ops.imageToColumnMajor(view, lay);
          return y.reshape(shape);
        };
        using qc = toCol(q);
        using kcol = toCol(k);
        using vcol = toCol(v);
        const col = ops.attention(qc, kcol, vcol, { mask: 'column', textLen: T, grid: W });
        using view = col.out.reshape(flat);
        using back = ops.imageFromColumnMajor(view, lay);
        assertClose(t, wa, back.toFloat32Array(), { what: `${what}: whole vs transposed-layout column attention`, atol: 1e-5, seed });
        col.out.dispose();
        col.lse.dispose();
      }

      // (b) + (d) decoding: the cache starts as NaN and grows one position (or chunk) per step;
      // every step's rows equal the whole pass, bit for bit (same per-query arithmetic).
      for (const chunk of [1, 3]) {
        using kstep = Tensor.from(new Float32Array(BH * Smax * D).fill(Number.NaN), [CB, CH, Smax, D]);
        using vstep = Tensor.from(new Float32Array(BH * Smax * D).fill(Number.NaN), [CB, CH, Smax, D]);
        for (let pos = 0; pos < S; pos += chunk) {
          const n = Math.min(chunk, S - pos);
          const part = [CB, CH, n, D];
          using kn = Tensor.from(seqSlice(ka, BH, S, D, pos, n), part);
          using vn = Tensor.from(seqSlice(va, BH, S, D, pos, n), part);
          ops.kvCacheWrite(kstep, kn, { pos });
          ops.kvCacheWrite(vstep, vn, { pos });
          using qn = Tensor.from(seqSlice(qa, BH, S, D, pos, n), part);
          using out = ops.attentionCached(qn, kstep, vstep, { ...layout, pos });
          assertSameBits(t, out.toFloat32Array(), seqSlice(wa, BH, S, D, pos, n), `${what}: chunk ${chunk} at pos ${pos}`);
        }
      }
    });

/** Double-precision attention of every query over the keys `allowed` lets it see: [BH, S, D]. */
function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, BH: number, S: number, D: number, scale: number, allowed: (q: number, k: number) => boolean) {
  const out = new Float64Array(BH * S * D);
  for (let h = 0; h < BH; h++)
    for (let i = 0; i < S; i++) {
      const keys: number[] = [];
      const s: number[] = [];
      for (let j = 0; j <= i; j++) {
        if (!allowed(i, j)) continue;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(h * S + i) * D + d]! * k[(h * S + j) * D + d]!;
        keys.push(j);
        s.push(dot * scale);
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, b) => a + b, 0);
      keys.forEach((j, idx) => {
        for (let d = 0; d < D; d++) out[(h * S + i) * D + d]! += (e[idx]! / sum) * v[(h * S + j) * D + d]!;
      });
    }
  return out;
}

test('attention_cached matches a double-precision JS reference (explicit scale, pos > 0)', (t) => {
  const seed = 4242;
  const [T, W, D] = [3, 4, 7];
  const S = T + W * W - 1;
  const BH = 2;
  const rand = rng(seed);
  const [qa, ka, va] = [0, 1, 2].map(() => randomArray(rand, BH * S * D, -2, 2)) as [Float32Array, Float32Array, Float32Array];
  for (const kind of KINDS) {
    const ref = attentionRef(qa, ka, va, BH, S, D, 0.6, (i, j) => specAllowed(kind, T, W, i, j, 'raster'));
    using kc = Tensor.from(ka, [1, BH, S, D]);
    using vc = Tensor.from(va, [1, BH, S, D]);
    // The last 5 queries, as a sampler that was handed a prefix would compute them.
    const pos = S - 5;
    using q = Tensor.from(seqSlice(qa, BH, S, D, pos, 5), [1, BH, 5, D]);
    using out = ops.attentionCached(q, kc, vc, { pos, mask: kind, textLen: T, grid: W, scale: 0.6 });
    const want = seqSlice(Float32Array.from(ref), BH, S, D, pos, 5);
    assertClose(t, out.toFloat32Array(), want, { what: `${kind} vs JS reference`, atol: 1e-5, seed });
  }
});

test('attention_cached: bad inputs and attributes throw typed errors', (t) => {
  const [T, W, D, Smax] = [2, 3, 3, 11];
  const o = { pos: 4, mask: 'row' as AttentionMaskKind, textLen: T, grid: W };
  const good = () => [rnd(20, [1, 2, 2, D]), rnd(21, [1, 2, Smax, D]), rnd(22, [1, 2, Smax, D])];
  const call = ([q, k, v]: Tensor[]) => ops.attentionCached(q!, k!, v!, o);
  badInputBattery(t, 'attention_cached_forward', call, good, {
    wrongShape: (i) => (i === 0 ? [1, 2, 2, D + 1] : i === 1 ? [1, 3, Smax, D] : [1, 2, Smax - 1, D]),
  });
  nanBattery(t, 'attention_cached_forward', call, good);
  const [q, k, v] = good();
  const bad = (patch: Record<string, unknown>, what: string) =>
    assertDalleError(t, () => ops.attentionCached(q!, k!, v!, { ...o, ...patch } as typeof o), 'E_INVALID_ARGUMENT', what);
  bad({ pos: 10 }, 'pos 10 + n 2 > Smax 11');
  bad({ pos: -1 }, 'negative pos');
  bad({ pos: 0.5 }, 'fractional pos');
  bad({ textLen: 0 }, 'text_len 0');
  bad({ grid: 0 }, 'grid 0');
  bad({ grid: 2, pos: 5 }, 'query position 6 is image cell 4, outside a 2x2 grid');
  bad({ mask: 'diagonal' }, 'unknown mask');
  bad({ scale: Number.NaN }, 'NaN scale');
  assertDalleError(t, () => ops.runOp('attention_cached_forward', [q!, k!, v!], { pos: 0, mask: 0, text_len: 2 }), 'E_INVALID_ARGUMENT', 'missing grid');
  assertDalleError(t, () => ops.runOp('attention_cached_forward', [q!, k!, v!], { mask: 0, text_len: 2, grid: 3 }), 'E_INVALID_ARGUMENT', 'missing pos');
  // Exactly at the limits is fine: the last query is the last grid cell and the last cache row.
  using qLast = rnd(23, [1, 2, 1, D]);
  using kFit = rnd(24, [1, 2, T + W * W, D]);
  using vFit = rnd(25, [1, 2, T + W * W, D]);
  using out = ops.attentionCached(qLast, kFit, vFit, { ...o, pos: T + W * W - 1 });
  t.deepEqual(out.shape, [1, 2, 1, D]);
  for (const x of [q, k, v]) x!.dispose();
});

// ---- DALL·E embedding --------------------------------------------------------------------------

interface EmbedCase {
  B: number;
  n: number;
  pos: number;
  V: number;
  C: number;
  T: number;
  W: number;
}

/** out[b,t] in f32 arithmetic, the spec's order: tokens + text_pos, or (tokens + rows) + cols. */
function dalleEmbedRef(ids: Int32Array, tok: Float32Array, tp: Float32Array, rows: Float32Array, cols: Float32Array, c: EmbedCase): Float32Array {
  const out = new Float32Array(c.B * c.n * c.C);
  for (let b = 0; b < c.B; b++)
    for (let t = 0; t < c.n; t++) {
      const p = c.pos + t;
      const id = ids[b * c.n + t]!;
      for (let k = 0; k < c.C; k++) {
        const e = tok[id * c.C + k]!;
        let y: number;
        if (p < c.T) y = Math.fround(e + tp[p * c.C + k]!);
        else {
          const i = p - c.T;
          y = Math.fround(Math.fround(e + rows[Math.floor(i / c.W) * c.C + k]!) + cols[(i % c.W) * c.C + k]!);
        }
        out[(b * c.n + t) * c.C + k] = y;
      }
    }
  return out;
}

/** The four table gradients in double: sums of dy over the positions that used each row. */
function dalleEmbedBackwardRef(ids: Int32Array, dy: Float32Array, c: EmbedCase) {
  const g = { dtokens: new Float64Array(c.V * c.C), dtextPos: new Float64Array(c.T * c.C), drows: new Float64Array(c.W * c.C), dcols: new Float64Array(c.W * c.C) };
  for (let b = 0; b < c.B; b++)
    for (let t = 0; t < c.n; t++) {
      const p = c.pos + t;
      const at = (b * c.n + t) * c.C;
      for (let k = 0; k < c.C; k++) {
        const x = dy[at + k]!;
        g.dtokens[ids[b * c.n + t]! * c.C + k]! += x;
        if (p < c.T) g.dtextPos[p * c.C + k]! += x;
        else {
          g.drows[Math.floor((p - c.T) / c.W) * c.C + k]! += x;
          g.dcols[((p - c.T) % c.W) * c.C + k]! += x;
        }
      }
    }
  return g;
}

const EMBED_CASES: EmbedCase[] = [
  // the whole training sequence (text then every image cell but the last)
  { B: 2, n: 4 + 9 - 1, pos: 0, V: 11, C: 5, T: 4, W: 3 },
  // spans the text/image boundary from pos > 0
  { B: 3, n: 5, pos: 2, V: 7, C: 7, T: 4, W: 3 },
  // image only, starting mid-row, up to the last cell
  { B: 2, n: 11, pos: 6, V: 13, C: 3, T: 1, W: 4 },
  // one decoding step: the last grid cell
  { B: 3, n: 1, pos: 3 + 25 - 1, V: 5, C: 7, T: 3, W: 5 },
  // text only
  { B: 1, n: 3, pos: 1, V: 9, C: 5, T: 6, W: 2 },
];

function embedInputs(seed: number, c: EmbedCase) {
  const rand = rng(seed);
  const ids = Int32Array.from({ length: c.B * c.n }, () => Math.floor(rand() * c.V));
  const tables = [c.V, c.T, c.W, c.W].map((r) => randomArray(rand, r * c.C)) as [Float32Array, Float32Array, Float32Array, Float32Array];
  return { ids, tables };
}

const embedOpts = (c: EmbedCase) => ({ pos: c.pos, textLen: c.T, grid: c.W });

for (const c of EMBED_CASES)
  test(`dalle_embed B=${c.B} n=${c.n} pos=${c.pos} T=${c.T} W=${c.W} C=${c.C}: forward, backward, adjoint`, (t) => {
    const seed = 5000 + c.pos * 31 + c.n * 7 + c.W;
    const { ids, tables } = embedInputs(seed, c);
    using it = Tensor.from(ids, [c.B, c.n]);
    const tt = tables.map((a, i) => Tensor.from(a, [[c.V, c.T, c.W, c.W][i]!, c.C]));
    using y = ops.dalleEmbed(it, tt[0]!, tt[1]!, tt[2]!, tt[3]!, embedOpts(c));
    t.deepEqual(y.shape, [c.B, c.n, c.C]);
    const ya = y.toFloat32Array();
    assertSameBits(t, ya, dalleEmbedRef(ids, ...tables, c), `forward, seed ${seed}`);

    const dya = randomArray(rng(seed + 1), c.B * c.n * c.C);
    using dy = Tensor.from(dya, [c.B, c.n, c.C]);
    const g = ops.dalleEmbedBackward(it, dy, { ...embedOpts(c), vocab: c.V });
    const want = dalleEmbedBackwardRef(ids, dya, c);
    const names = ['dtokens', 'dtextPos', 'drows', 'dcols'] as const;
    const rowsOf = [c.V, c.T, c.W, c.W];
    names.forEach((name, i) => {
      t.deepEqual(g[name].shape, [rowsOf[i], c.C], `${name} shape`);
      assertClose(t, g[name].toFloat32Array(), want[name], { what: `${name}, seed ${seed}`, atol: 1e-5, seed });
    });
    // Rows no position used are exactly 0 (the reference leaves them 0 too; check it explicitly).
    const unused = [...Array(c.V).keys()].filter((v) => !ids.includes(v));
    const dtok = g.dtokens.toFloat32Array();
    t.true(unused.every((v) => dtok.subarray(v * c.C, (v + 1) * c.C).every((x) => x === 0)), 'unused token rows are 0');

    // Adjoint identity: out is linear in the tables, so <f(tables), dy> = <tables, f*(dy)>.
    let lhs = 0;
    for (let i = 0; i < ya.length; i++) lhs += ya[i]! * dya[i]!;
    let rhs = 0;
    names.forEach((name, i) => {
      const gv = g[name].toFloat32Array();
      for (let j = 0; j < gv.length; j++) rhs += gv[j]! * tables[i]![j]!;
    });
    t.true(Math.abs(lhs - rhs) <= 1e-4 * (1 + Math.abs(lhs)), `adjoint: <f(x), y> = ${lhs} vs <x, f*(y)> = ${rhs}, seed ${seed}`);

    // Deterministic: a second run gives the same bits.
    const g2 = ops.dalleEmbedBackward(it, dy, { ...embedOpts(c), vocab: c.V });
    for (const name of names) assertSameBits(t, g2[name].toFloat32Array(), g[name].toFloat32Array(), `${name} rerun`);
    for (const x of [...tt, ...Object.values(g), ...Object.values(g2)]) x.dispose();
  });

test('dalle_embed backward: finite differences on the tables', (t) => {
  // The op is linear in the tables, so central differences are exact up to f32 rounding.
  const c: EmbedCase = { B: 2, n: 6, pos: 2, V: 5, C: 3, T: 4, W: 2 };
  const seed = 6100;
  const { ids, tables } = embedInputs(seed, c);
  using it = Tensor.from(ids, [c.B, c.n]);
  const shapes = [c.V, c.T, c.W, c.W].map((r) => [r, c.C]);
  const r = randomArray(rng(seed + 1), c.B * c.n * c.C);
  const loss = (tabs: Float32Array[]) => {
    const tt = tabs.map((a, i) => Tensor.from(a, shapes[i]!));
    using y = ops.dalleEmbed(it, tt[0]!, tt[1]!, tt[2]!, tt[3]!, embedOpts(c));
    for (const x of tt) x.dispose();
    const v = y.toFloat32Array();
    return v.reduce((s, x, i) => s + x * r[i]!, 0);
  };
  using dy = Tensor.from(r, [c.B, c.n, c.C]);
  const g = ops.dalleEmbedBackward(it, dy, { ...embedOpts(c), vocab: c.V });
  const grads = [g.dtokens, g.dtextPos, g.drows, g.dcols].map((x) => x.toFloat32Array());
  const eps = 0.25;
  tables.forEach((tab, ti) => {
    const numeric: number[] = [];
    for (let j = 0; j < tab.length; j++) {
      const at = (delta: number) => loss(tables.map((a, i) => (i === ti ? Float32Array.from(a, (x, k) => (k === j ? x + delta : x)) : a)));
      numeric.push((at(eps) - at(-eps)) / (2 * eps));
    }
    assertClose(t, grads[ti]!, numeric, { what: `table ${ti} finite differences`, atol: 1e-4, rtol: 1e-3, seed });
  });
  for (const x of Object.values(g)) x.dispose();
});

test('dalle_embed: out-of-range ids and positions are rejected, naming them', (t) => {
  const c: EmbedCase = { B: 2, n: 4, pos: 3, V: 6, C: 3, T: 4, W: 2 };
  const { tables } = embedInputs(6200, c);
  const tt = tables.map((a, i) => Tensor.from(a, [[c.V, c.T, c.W, c.W][i]!, c.C]));
  using dy = rnd(6201, [c.B, c.n, c.C]);
  for (const badId of [-1, c.V, 1 << 30]) {
    const ids = new Int32Array(c.B * c.n).fill(1);
    ids[1 * c.n + 2] = badId;
    using it = Tensor.from(ids, [c.B, c.n]);
    for (const [name, fn] of [
      ['forward', () => ops.dalleEmbed(it, tt[0]!, tt[1]!, tt[2]!, tt[3]!, embedOpts(c))],
      ['backward', () => ops.dalleEmbedBackward(it, dy, { ...embedOpts(c), vocab: c.V })],
    ] as const) {
      const err = t.throws(fn, undefined, `${name}: id ${badId}`);
      t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', `${name}: id ${badId}: ${String(err)}`);
      t.true(err?.message.includes('[1, 2]') && err.message.includes(String(badId)), `${name}: message names the position and value: ${err?.message}`);
    }
  }
  using ids = Tensor.from(new Int32Array(c.B * c.n), [c.B, c.n]);
  // pos 3, n 4: positions 3..6, image cells 0..2 of a 2×2 grid; one more is past it.
  using ok = ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, tt[3]!, embedOpts(c));
  t.deepEqual(ok.shape, [c.B, c.n, c.C]);
  const err = t.throws(() => ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, tt[3]!, { ...embedOpts(c), pos: 5 }));
  t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT' && err.message.includes('position 8'), `past the grid: ${err?.message}`);
  assertDalleError(t, () => ops.dalleEmbedBackward(ids, dy, { ...embedOpts(c), pos: 5, vocab: c.V }), 'E_INVALID_ARGUMENT', 'backward past the grid');
  // Tables that disagree with text_len / grid, or with each other's C.
  assertDalleError(t, () => ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, tt[3]!, { ...embedOpts(c), textLen: 3 }), 'E_INVALID_ARGUMENT', 'text_len != text_pos rows');
  assertDalleError(t, () => ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, tt[3]!, { ...embedOpts(c), grid: 3 }), 'E_INVALID_ARGUMENT', 'grid != rows');
  using cols4 = rnd(6202, [c.W, c.C + 1]);
  assertDalleError(t, () => ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, cols4, embedOpts(c)), 'E_INVALID_ARGUMENT', 'cols with another C');
  for (const [attr, value] of [
    ['textLen', 0],
    ['grid', 0],
    ['pos', -1],
    ['pos', 0.5],
  ] as const)
    assertDalleError(t, () => ops.dalleEmbed(ids, tt[0]!, tt[1]!, tt[2]!, tt[3]!, { ...embedOpts(c), [attr]: value }), 'E_INVALID_ARGUMENT', `${attr} ${value}`);
  assertDalleError(t, () => ops.runOp('dalle_embed_backward', [ids, dy], { text_len: c.T, grid: c.W }), 'E_INVALID_ARGUMENT', 'backward: missing vocab');
  using dyShort = rnd(6203, [c.B, c.n - 1, c.C]);
  assertDalleError(t, () => ops.dalleEmbedBackward(ids, dyShort, { ...embedOpts(c), vocab: c.V }), 'E_INVALID_ARGUMENT', 'dy shorter than ids');

  const good = () => [Tensor.from(new Int32Array(c.B * c.n).fill(2), [c.B, c.n]), ...tables.map((a, i) => Tensor.from(a, [[c.V, c.T, c.W, c.W][i]!, c.C]))];
  const fwd = ([i, a, b, r, co]: Tensor[]) => ops.dalleEmbed(i!, a!, b!, r!, co!, embedOpts(c));
  // Any V is a valid token table, so its wrong shape is another C (which the other tables lack).
  badInputBattery(t, 'dalle_embed_forward', fwd, good, { wrongShape: (i) => (i === 0 ? [c.B * c.n] : i === 1 ? [c.V, c.C + 1] : [7, c.C]) });
  nanBattery(t, 'dalle_embed_forward', fwd, good);
  const goodB = () => [Tensor.from(new Int32Array(c.B * c.n).fill(2), [c.B, c.n]), rnd(6204, [c.B, c.n, c.C])];
  const bwd = ([i, d]: Tensor[]) => Object.values(ops.dalleEmbedBackward(i!, d!, { ...embedOpts(c), vocab: c.V }));
  badInputBattery(t, 'dalle_embed_backward', bwd, goodB, { wrongShape: (i) => (i === 0 ? [c.B, c.n, 1] : [c.B, c.n]) });
  nanBattery(t, 'dalle_embed_backward', bwd, goodB);
  for (const x of tt) x.dispose();
});

// ---- registration and devices ------------------------------------------------------------------

const NEW_OPS = [
  'qkv_split_forward',
  'qkv_split_backward',
  'heads_merge_forward',
  'heads_merge_backward',
  'kv_cache_write',
  'attention_cached_forward',
  'dalle_embed_forward',
  'dalle_embed_backward',
];

test('transformer ops are registered with their argument names', (t) => {
  const names = ops.opNames();
  for (const n of NEW_OPS) t.true(names.includes(n), n);
  const addon = loadAddon();
  t.deepEqual(addon.opInfo('attention_cached_forward').inputs, ['q', 'kcache', 'vcache']);
  t.deepEqual(addon.opInfo('dalle_embed_backward').outputs, ['dtokens', 'dtext_pos', 'drows', 'dcols']);
  for (const n of NEW_OPS) if (n !== 'kv_cache_write') t.deepEqual(addon.opInfo(n).mutatedInputs, [], `${n} mutates nothing`);
});
