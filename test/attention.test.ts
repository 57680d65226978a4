import test, { type ExecutionContext } from 'ava';

import { Tensor, ops } from '../lib/index.js';
import type { AttentionGrads, AttentionMaskKind, AttentionOptions, AttentionResult } from '../lib/ops/attention.js';
import { specAllowed, specMask } from './helpers/masks.js';
import { assertClose, assertDalleError, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const KINDS: AttentionMaskKind[] = ['causal', 'row', 'column', 'conv'];

// ---- references written from DALLE-SPEC.md §2, independent of the native range logic ----------

/** Raster cell index <-> column-major index (a square transpose: its own inverse). */
const transposeIndex = (i: number, W: number) => W * (i % W) + Math.floor(i / W);


/** Dense masked attention in double precision: out [BH, S, D], lse [BH, S]. */
function denseRef(q: Float32Array, k: Float32Array, v: Float32Array, mask: Int32Array, BH: number, S: number, D: number, scale: number) {
  const out = new Float64Array(BH * S * D);
  const lse = new Float64Array(BH * S);
  for (let h = 0; h < BH; h++)
    for (let i = 0; i < S; i++) {
      const s: number[] = [];
      for (let j = 0; j < S; j++) {
        if (!mask[i * S + j]) continue;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(h * S + i) * D + d]! * k[(h * S + j) * D + d]!;
        s[j] = dot * scale;
      }
      const m = Math.max(...s.filter((x) => x !== undefined));
      let sum = 0;
      s.forEach((x) => (sum += Math.exp(x - m)));
      s.forEach((x, j) => {
        for (let d = 0; d < D; d++) out[(h * S + i) * D + d]! += (Math.exp(x - m) / sum) * v[(h * S + j) * D + d]!;
      });
      lse[h * S + i] = m + Math.log(sum);
    }
  return { out, lse };
}

interface Layout {
  T: number;
  W: number;
  nImg: number;
}
const seqLen = (l: Layout) => l.T + l.nImg;

function randomQkv(seed: number, shape: number[]) {
  const rand = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  // Spread of ±2 gives peaked softmaxes with D = 5, so a wrong key visibly moves the output.
  return [0, 1, 2].map(() => Tensor.from(randomArray(rand, n, -2, 2), shape));
}

const opts = (kind: AttentionMaskKind, l: Layout, scale?: number): AttentionOptions => ({ mask: kind, textLen: l.T, grid: l.W, scale });

// ---- (a) the masks ---------------------------------------------------------------------------

test('conv half-width follows max(1, floor(5W/32 + 1/2))', (t) => {
  t.is(ops.convHalfWidth(32), 5);
  t.is(ops.convHalfWidth(16), 3);
  t.is(ops.convHalfWidth(8), 1);
  t.deepEqual([1, 2, 3, 4, 5, 6].map(ops.convHalfWidth), [1, 1, 1, 1, 1, 1]);
  t.is(ops.convHalfWidth(64), 10);
});

// The 4×4 examples of the paper's Fig. 11 (6 text slots + 16 image cells), written out by hand:
// the image keys of each image query, in raster order.
const FIG11: Record<'row' | 'column' | 'conv', number[][]> = {
  // itself and the 4 before it: the last one is in the same column of the previous row
  row: [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [3, 4, 5, 6, 7],
    [4, 5, 6, 7, 8], [5, 6, 7, 8, 9], [6, 7, 8, 9, 10], [7, 8, 9, 10, 11], [8, 9, 10, 11, 12], [9, 10, 11, 12, 13],
    [10, 11, 12, 13, 14], [11, 12, 13, 14, 15]],
  // its column, above and itself
  column: [[0], [1], [2], [3], [0, 4], [1, 5], [2, 6], [3, 7], [0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11],
    [0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]],
  // 3×3 causal neighbourhood with wraparound: offsets 0, 1, W−1, W, W+1
  conv: [[0], [0, 1], [1, 2], [0, 2, 3], [0, 1, 3, 4], [0, 1, 2, 4, 5], [1, 2, 3, 5, 6], [2, 3, 4, 6, 7],
    [3, 4, 5, 7, 8], [4, 5, 6, 8, 9], [5, 6, 7, 9, 10], [6, 7, 8, 10, 11], [7, 8, 9, 11, 12], [8, 9, 10, 12, 13],
    [9, 10, 11, 13, 14], [10, 11, 12, 14, 15]],
};

for (const kind of ['row', 'column', 'conv'] as const) {
  test(`${kind} mask reproduces the 4x4 example (6 text slots)`, (t) => {
    const T = 6;
    const W = 4;
    const S = T + 16;
    using m = ops.attentionMask(S, { mask: kind, textLen: T, grid: W });
    t.deepEqual(m.shape, [S, S]);
    const got = m.toInt32Array();
    // Column masks come back in the transposed layout; read them through the permutation.
    const pos = (p: number) => (kind === 'column' && p >= T ? T + transposeIndex(p - T, W) : p);
    const at = (q: number, k: number) => got[pos(q) * S + pos(k)]!;
    for (let q = 0; q < T; q++) {
      const keys = [...Array(S).keys()].filter((k) => at(q, k));
      t.deepEqual(keys, [...Array(q + 1).keys()], `text query ${q}`);
    }
    for (let i = 0; i < 16; i++) {
      const keys = [...Array(S).keys()].filter((k) => at(T + i, k));
      t.deepEqual(keys, [...[...Array(T).keys()], ...FIG11[kind][i]!.map((j) => T + j)], `${kind} image query ${i}`);
    }
  });
}

test('conv mask: an interior query sees 61 image keys at W=32, 25 at W=16, 5 at W=8', (t) => {
  for (const [W, want] of [
    [32, 61],
    [16, 25],
    [8, 5],
  ] as const) {
    const T = 1;
    const S = T + W * W;
    using m = ops.attentionMask(S, { mask: 'conv', textLen: T, grid: W });
    const a = m.toInt32Array();
    const r = Math.floor(W / 2);
    const q = T + W * r + Math.floor(W / 2);
    let image = 0;
    for (let k = T; k < S; k++) image += a[q * S + k]!;
    t.is(image, want, `W=${W}`);
    t.is(a[q * S]!, 1, `W=${W}: text key`);
    // The farthest key is h rows up and h columns to the left.
    const h = ops.convHalfWidth(W);
    t.is(a[q * S + q - (W * h + h)]!, 1, `W=${W}: farthest key`);
    t.is(a[q * S + q - (W * h + h) - 1]!, 0, `W=${W}: one beyond`);
  }
});

test('attention_mask equals the spec rules for every kind, grid 1..7, partial grids', (t) => {
  let checked = 0;
  for (let W = 1; W <= 7; W++)
    for (const T of [0, 2])
      for (const nImg of new Set([W * W, W * W - 1, Math.floor((W * W) / 2)])) {
        const S = T + nImg;
        if (S === 0) continue;
        for (const kind of KINDS) {
          using m = ops.attentionMask(S, { mask: kind, textLen: T, grid: W });
          const got = m.toInt32Array();
          const want = specMask(kind, T, W, S, 'kernel');
          const bad = got.findIndex((x, idx) => x !== want[idx]);
          t.is(bad, -1, `${kind} W=${W} T=${T} nImg=${nImg}: first mismatch at query ${Math.floor(bad / S)}, key ${bad % S}`);
          // Full grids: the kernel's column layout is the raster column mask transposed.
          if (kind === 'column' && nImg >= W * W - 1) {
            const raster = specMask(kind, T, W, S, 'raster');
            const pos = (p: number) => (p >= T ? T + transposeIndex(p - T, W) : p);
            let same = true;
            for (let q = 0; q < S; q++) for (let k = 0; k < S; k++) same &&= raster[q * S + k] === got[pos(q) * S + pos(k)];
            t.true(same, `column W=${W} T=${T} nImg=${nImg}: transposed layout`);
          }
          checked++;
        }
      }
  t.true(checked > 150);
});

// ---- (b) sparse == dense under the same mask ---------------------------------------------------

const LAYOUTS: Layout[] = [
  { T: 7, W: 5, nImg: 24 },
  { T: 7, W: 5, nImg: 25 },
  { T: 1, W: 3, nImg: 9 },
  { T: 1, W: 3, nImg: 5 },
];

test('dense reference matches a double-precision JS reference', (t) => {
  const seed = 5;
  const l = { T: 3, W: 3, nImg: 8 };
  const S = seqLen(l);
  const [B, H, D] = [2, 1, 5];
  const [q, k, v] = randomQkv(seed, [B, H, S, D]);
  for (const kind of KINDS) {
    using mask = ops.attentionMask(S, { mask: kind, textLen: l.T, grid: l.W });
    const { out, lse } = ops.attentionDense(q!, k!, v!, mask, { scale: 0.7 });
    const ref = denseRef(q!.toFloat32Array(), k!.toFloat32Array(), v!.toFloat32Array(), mask.toInt32Array(), B * H, S, D, 0.7);
    assertClose(t, out.toFloat32Array(), ref.out, { what: `dense ${kind} out`, atol: 1e-5, seed });
    assertClose(t, lse.toFloat32Array(), ref.lse, { what: `dense ${kind} lse`, atol: 1e-5, seed });
    out.dispose();
    lse.dispose();
  }
  for (const x of [q, k, v]) x!.dispose();
});

for (const kind of KINDS)
  for (const l of LAYOUTS) {
    test(`sparse ${kind} == dense, text_len=${l.T} grid=${l.W} nImg=${l.nImg}`, (t) => {
      const seed = 1000 + 17 * l.T + 5 * l.W + l.nImg + KINDS.indexOf(kind);
      const S = seqLen(l);
      const shape = [2, 3, S, 5];
      const [q, k, v] = randomQkv(seed, shape);
      using dout = Tensor.from(randomArray(rng(seed + 1), 2 * 3 * S * 5), shape);
      using mask = ops.attentionMask(S, { mask: kind, textLen: l.T, grid: l.W });
      const sparse = ops.attention(q!, k!, v!, opts(kind, l));
      const dense = ops.attentionDense(q!, k!, v!, mask);
      const what = `${kind} T=${l.T} W=${l.W} nImg=${l.nImg}`;
      assertClose(t, sparse.out.toFloat32Array(), dense.out.toFloat32Array(), { what: `${what} out`, atol: 1e-5, seed });
      assertClose(t, sparse.lse.toFloat32Array(), dense.lse.toFloat32Array(), { what: `${what} lse`, atol: 1e-5, seed });
      const gs = ops.attentionBackward(q!, k!, v!, sparse.out, sparse.lse, dout, opts(kind, l));
      const gd = ops.attentionDenseBackward(q!, k!, v!, mask, dense.out, dense.lse, dout);
      for (const g of ['dq', 'dk', 'dv'] as const) {
        assertClose(t, gs[g].toFloat32Array(), gd[g].toFloat32Array(), { what: `${what} ${g}`, atol: 1e-5, seed });
        gs[g].dispose();
        gd[g].dispose();
      }
      for (const x of [q, k, v, sparse.out, sparse.lse, dense.out, dense.lse]) x!.dispose();
    });
  }

test('sparse == dense on a longer sequence (several query blocks per head, odd head dim)', (t) => {
  const seed = 77;
  const l = { T: 13, W: 9, nImg: 80 };
  const S = seqLen(l);
  const shape = [1, 1, S, 7];
  const [q, k, v] = randomQkv(seed, shape);
  using dout = Tensor.from(randomArray(rng(seed + 1), S * 7), shape);
  for (const kind of KINDS) {
    using mask = ops.attentionMask(S, { mask: kind, textLen: l.T, grid: l.W });
    const sparse = ops.attention(q!, k!, v!, opts(kind, l));
    const dense = ops.attentionDense(q!, k!, v!, mask);
    assertClose(t, sparse.out.toFloat32Array(), dense.out.toFloat32Array(), { what: `${kind} out`, atol: 1e-5, seed });
    const gs = ops.attentionBackward(q!, k!, v!, sparse.out, sparse.lse, dout, opts(kind, l));
    const gd = ops.attentionDenseBackward(q!, k!, v!, mask, dense.out, dense.lse, dout);
    for (const g of ['dq', 'dk', 'dv'] as const) {
      assertClose(t, gs[g].toFloat32Array(), gd[g].toFloat32Array(), { what: `${kind} ${g}`, atol: 2e-5, seed });
      gs[g].dispose();
      gd[g].dispose();
    }
    for (const x of [sparse.out, sparse.lse, dense.out, dense.lse]) x.dispose();
  }
  for (const x of [q, k, v]) x!.dispose();
});

test('dense: a query with no allowed key gets out 0, lse -inf and no gradient', (t) => {
  const S = 3;
  const [q, k, v] = randomQkv(9, [1, 1, S, 2]);
  using mask = Tensor.from(new Int32Array([1, 0, 0, 0, 0, 0, 1, 1, 1]), [S, S]);
  using dout = Tensor.from(new Float32Array(S * 2).fill(1), [1, 1, S, 2]);
  const { out, lse } = ops.attentionDense(q!, k!, v!, mask);
  t.deepEqual(Array.from(out.toFloat32Array().slice(2, 4)), [0, 0]);
  t.is(lse.toFloat32Array()[1], -Infinity);
  const g = ops.attentionDenseBackward(q!, k!, v!, mask, out, lse, dout);
  t.deepEqual(Array.from(g.dq.toFloat32Array().slice(2, 4)), [0, 0]);
  t.true(g.dq.toFloat32Array().every(Number.isFinite));
  for (const x of [q, k, v, out, lse, g.dq, g.dk, g.dv]) x!.dispose();
});

// ---- (c) finite differences -------------------------------------------------------------------

function attentionGradcheck(t: ExecutionContext, what: string, seed: number, shape: number[], fwd: (xs: Tensor[]) => { out: Tensor; lse: Tensor }, bwd: (xs: Tensor[], out: Tensor, lse: Tensor, dy: Tensor) => { dq: Tensor; dk: Tensor; dv: Tensor }) {
  const rand = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  gradcheck(t, what, {
    seed,
    inputs: [0, 1, 2].map(() => ({ shape, data: randomArray(rand, n, -1.5, 1.5) })),
    wrt: [0, 1, 2],
    forward: (xs) => {
      const { out, lse } = fwd(xs);
      lse.dispose();
      return out;
    },
    backward: (xs, dy) => {
      const { out, lse } = fwd(xs);
      const g = bwd(xs, out, lse, dy);
      out.dispose();
      lse.dispose();
      return [g.dq, g.dk, g.dv];
    },
    eps: 1e-2,
    atol: 5e-3,
    rtol: 2e-2,
  });
}

for (const kind of KINDS)
  test(`sparse ${kind} backward: finite differences`, (t) => {
    const l = { T: 2, W: 3, nImg: 8 };
    const o = opts(kind, l, 0.8);
    attentionGradcheck(
      t,
      `attention ${kind}`,
      300 + KINDS.indexOf(kind),
      [1, 2, seqLen(l), 3],
      ([q, k, v]) => ops.attention(q!, k!, v!, o),
      ([q, k, v], out, lse, dy) => ops.attentionBackward(q!, k!, v!, out, lse, dy, o),
    );
  });

test('dense backward: finite differences with a random mask', (t) => {
  const S = 6;
  const rand = rng(41);
  const m = new Int32Array(S * S).map((_, i) => (i % (S + 1) === 0 || rand() < 0.5 ? 1 : 0));
  using mask = Tensor.from(m, [S, S]);
  attentionGradcheck(
    t,
    'attention dense',
    41,
    [1, 2, S, 3],
    ([q, k, v]) => ops.attentionDense(q!, k!, v!, mask),
    ([q, k, v], out, lse, dy) => ops.attentionDenseBackward(q!, k!, v!, mask, out, lse, dy),
  );
});

// ---- (d) column layers: transposed layout + permutation == raster column mask ------------------

test('image transpose: raster -> column-major and back, grid² and grid² - 1 cells', (t) => {
  for (const nImg of [16, 15]) {
    const T = 3;
    const S = T + nImg;
    const C = 2;
    const x = Float32Array.from({ length: 2 * S * C }, (_, i) => i);
    using xt = Tensor.from(x, [2, S, C]);
    using y = ops.imageToColumnMajor(xt, { textLen: T, grid: 4 });
    const yv = y.toFloat32Array();
    for (let b = 0; b < 2; b++)
      for (let p = 0; p < S; p++) {
        // Output position p holds the cell whose column-major index is p - T.
        const src = p < T ? p : T + transposeIndex(p - T, 4);
        t.is(yv[(b * S + p) * C + 1], x[(b * S + src) * C + 1], `nImg=${nImg} b=${b} p=${p}`);
      }
    // Column-major order walks down column 0 first: cells (0,0), (1,0), (2,0), (3,0), (0,1)...
    t.deepEqual([0, 1, 2, 3, 4].map((p) => yv[(T + p) * C]! / C - T), [0, 4, 8, 12, 1]);
    using back = ops.imageFromColumnMajor(y, { textLen: T, grid: 4 });
    t.deepEqual(Array.from(back.toFloat32Array()), Array.from(x));
  }
});

for (const nImg of [25, 24])
  test(`column attention in transposed layout == dense raster column mask (nImg=${nImg})`, (t) => {
    const seed = 500 + nImg;
    const l = { T: 7, W: 5, nImg };
    const S = seqLen(l);
    const [B, H, D] = [2, 3, 5];
    const shape = [B, H, S, D];
    const flat = [B * H, S, D];
    const lay = { textLen: l.T, grid: l.W };
    const [q, k, v] = randomQkv(seed, shape);
    using dout = Tensor.from(randomArray(rng(seed + 1), B * H * S * D), shape);
    // Through the column-major layout, as a column layer does it.
    const toCol = (x: Tensor) => {
      using view = x.reshape(flat);
      using y = ops.imageToColumnMajor(view, lay);
      return y.reshape(shape);
    };
    const fromCol = (x: Tensor, s: number[] = shape, f: number[] = flat) => {
      using view = x.reshape(f);
      using y = ops.imageFromColumnMajor(view, lay);
      return y.reshape(s);
    };
    using qc = toCol(q!);
    using kc = toCol(k!);
    using vc = toCol(v!);
    using doc = toCol(dout);
    const sparse = ops.attention(qc, kc, vc, opts('column', l));
    using out = fromCol(sparse.out);
    using lse = fromCol(sparse.lse, [B, H, S], [B * H, S, 1]);
    const g = ops.attentionBackward(qc, kc, vc, sparse.out, sparse.lse, doc, opts('column', l));
    // Dense, raster order, with the mask as the paper states it.
    using mask = Tensor.from(specMask('column', l.T, l.W, S, 'raster'), [S, S]);
    const dense = ops.attentionDense(q!, k!, v!, mask);
    const gd = ops.attentionDenseBackward(q!, k!, v!, mask, dense.out, dense.lse, dout);
    assertClose(t, out.toFloat32Array(), dense.out.toFloat32Array(), { what: 'column out', atol: 1e-5, seed });
    assertClose(t, lse.toFloat32Array(), dense.lse.toFloat32Array(), { what: 'column lse', atol: 1e-5, seed });
    for (const name of ['dq', 'dk', 'dv'] as const) {
      using raster = fromCol(g[name]);
      assertClose(t, raster.toFloat32Array(), gd[name].toFloat32Array(), { what: `column ${name}`, atol: 1e-5, seed });
    }
    for (const x of [q, k, v, sparse.out, sparse.lse, g.dq, g.dk, g.dv, dense.out, dense.lse, gd.dq, gd.dk, gd.dv]) x!.dispose();
  });

// ---- (e) bad inputs ---------------------------------------------------------------------------

const BAD_L = { T: 2, W: 3, nImg: 8 };
const BAD_S = seqLen(BAD_L);
const BAD_SHAPE = [1, 2, BAD_S, 3];
const badOpts = opts('row', BAD_L);
const rnd = (seed: number, shape: readonly number[]) => Tensor.from(randomArray(rng(seed), shape.reduce((a, b) => a * b, 1)), shape);
const goodQkv = () => [rnd(1, BAD_SHAPE), rnd(2, BAD_SHAPE), rnd(3, BAD_SHAPE)];
const goodBackward = () => [...goodQkv(), rnd(4, BAD_SHAPE), rnd(5, [1, 2, BAD_S]), rnd(6, BAD_SHAPE)];
const goodMask = () => Tensor.from(specMask('row', BAD_L.T, BAD_L.W, BAD_S, 'kernel'), [BAD_S, BAD_S]);
const otherD = [1, 2, BAD_S, 4];
const list = (r: AttentionResult | AttentionGrads): Tensor[] => Object.values(r);

test('attention: bad inputs throw typed errors', (t) => {
  const fwd = ([q, k, v]: Tensor[]) => list(ops.attention(q!, k!, v!, badOpts));
  badInputBattery(t, 'attention_forward', fwd, goodQkv, { wrongShape: (i) => (i === 0 ? [2, BAD_S, 3] : otherD) });
  nanBattery(t, 'attention_forward', fwd, goodQkv);
  const bwd = ([q, k, v, o, l, d]: Tensor[]) => list(ops.attentionBackward(q!, k!, v!, o!, l!, d!, badOpts));
  badInputBattery(t, 'attention_backward', bwd, goodBackward, { wrongShape: (i) => (i === 4 ? [1, 2, BAD_S + 1] : otherD) });
  nanBattery(t, 'attention_backward', bwd, goodBackward);
});

test('attention dense and mask ops: bad inputs throw typed errors', (t) => {
  const fwd = ([q, k, v, m]: Tensor[]) => list(ops.attentionDense(q!, k!, v!, m!));
  const good = () => [...goodQkv(), goodMask()];
  badInputBattery(t, 'attention_dense_forward', fwd, good, { wrongShape: (i) => (i === 3 ? [BAD_S, BAD_S + 1] : otherD) });
  nanBattery(t, 'attention_dense_forward', fwd, good);
  const bwd = ([q, k, v, m, o, l, d]: Tensor[]) => list(ops.attentionDenseBackward(q!, k!, v!, m!, o!, l!, d!));
  const goodB = () => {
    const [q, k, v, o, l, d] = goodBackward();
    return [q!, k!, v!, goodMask(), o!, l!, d!];
  };
  badInputBattery(t, 'attention_dense_backward', bwd, goodB, {
    wrongShape: (i) => (i === 3 ? [BAD_S + 1, BAD_S] : i === 5 ? [1, 1, BAD_S] : otherD),
  });
  nanBattery(t, 'attention_dense_backward', bwd, goodB);
  const maskAttrs = { mask: 1, text_len: BAD_L.T, grid: BAD_L.W };
  badInputBattery(t, 'attention_mask', ([like]) => ops.runOp1('attention_mask', [like!], maskAttrs), () => [Tensor.zeros([BAD_S], { dtype: 'i32' })], {
    wrongShape: () => [BAD_S, 1],
  });
});

test('image transpose: bad inputs throw typed errors', (t) => {
  const lay = { textLen: 3, grid: 4 };
  const good = () => [rnd(7, [2, 3 + 16, 5])];
  for (const [name, fn] of [
    ['image_transpose_forward', ops.imageToColumnMajor],
    ['image_transpose_backward', ops.imageFromColumnMajor],
  ] as const) {
    const call = ([x]: Tensor[]) => fn(x!, lay);
    badInputBattery(t, name, call, good, { wrongShape: () => [2, 3 + 14, 5] });
    nanBattery(t, name, call, good);
    using x = rnd(8, [2, 3 + 16, 5]);
    assertDalleError(t, () => fn(x, { textLen: 3, grid: 5 }), 'E_INVALID_ARGUMENT', `${name}: grid too large`);
    assertDalleError(t, () => fn(x, { textLen: 20, grid: 4 }), 'E_INVALID_ARGUMENT', `${name}: text_len > S`);
    assertDalleError(t, () => fn(x, { textLen: 3, grid: 0 }), 'E_INVALID_ARGUMENT', `${name}: grid 0`);
    using flat = rnd(9, [19, 5]);
    assertDalleError(t, () => fn(flat, lay), 'E_INVALID_ARGUMENT', `${name}: rank 2`);
  }
});

test('attention: bad attributes and mismatched shapes throw E_INVALID_ARGUMENT', (t) => {
  const [q, k, v] = goodQkv();
  const bad = (o: Partial<AttentionOptions> & Record<string, unknown>, what: string) =>
    assertDalleError(t, () => ops.attention(q!, k!, v!, { ...badOpts, ...o } as AttentionOptions), 'E_INVALID_ARGUMENT', what);
  bad({ grid: 2 }, 'grid too small for S (8 image positions > 2x2)');
  bad({ textLen: BAD_S + 1 }, 'text_len > S');
  bad({ textLen: -1 }, 'negative text_len');
  bad({ textLen: 1.5 }, 'fractional text_len');
  bad({ grid: 0 }, 'grid 0');
  bad({ mask: 'diagonal' as AttentionMaskKind }, 'unknown mask kind');
  bad({ scale: Number.NaN }, 'NaN scale');
  bad({ scale: Number.POSITIVE_INFINITY }, 'infinite scale');
  assertDalleError(t, () => ops.runOp('attention_forward', [q!, k!, v!], { mask: 4, text_len: 2, grid: 3 }), 'E_INVALID_ARGUMENT', 'mask 4');
  assertDalleError(t, () => ops.runOp('attention_forward', [q!, k!, v!], { mask: 1, text_len: 2 }), 'E_INVALID_ARGUMENT', 'missing grid');
  using kShort = rnd(10, [1, 2, BAD_S - 1, 3]);
  assertDalleError(t, () => ops.attention(q!, kShort, v!, badOpts), 'E_INVALID_ARGUMENT', 'k shorter than q');
  using vHeads = rnd(11, [1, 3, BAD_S, 3]);
  assertDalleError(t, () => ops.attention(q!, k!, vHeads, badOpts), 'E_INVALID_ARGUMENT', 'v with other heads');
  assertDalleError(t, () => ops.attentionMask(BAD_S, { mask: 'conv', textLen: 0, grid: 2 }), 'E_INVALID_ARGUMENT', 'mask: grid too small');
  for (const x of [q, k, v]) x!.dispose();
});

test('attention ops are registered', (t) => {
  const names = ops.opNames();
  for (const n of ['attention_forward', 'attention_backward', 'attention_dense_forward', 'attention_dense_backward', 'attention_mask', 'image_transpose_forward', 'image_transpose_backward'])
    t.true(names.includes(n), n);
});
