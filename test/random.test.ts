import test from 'ava';

import { Tensor, ops } from '../lib/index.js';
import { assertDalleError } from './helpers/gradcheck.js';
import { philox4x32, philoxU32, philoxWords, unitOpen } from './helpers/philox.js';

const MAX = 2 ** 53 - 1;
const hex = (words: ArrayLike<number>) => Array.from(words, (w) => (w >>> 0).toString(16).padStart(8, '0')).join(' ');

function u32(shape: readonly number[], seed: number, offset: number): Uint32Array {
  using t = ops.philoxUint32(shape, { seed, offset });
  return new Uint32Array(t.toInt32Array().buffer);
}
function floats(f: typeof ops.randomUniform, n: number, seed: number, offset: number): Float32Array {
  using t = f([n], { seed, offset });
  return t.toFloat32Array();
}

test('JS Philox reference reproduces the Random123 known-answer vectors', (t) => {
  t.is(hex(philox4x32([0, 0, 0, 0], [0, 0])), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  const ff = 0xffffffff;
  t.is(hex(philox4x32([ff, ff, ff, ff], [ff, ff])), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  t.is(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    'd16cfe09 94fdcceb 5001e420 24126ea1',
  );
});

test('philox_uint32: seed 0, words 0..3 are the Random123 vector for ctr = key = 0', (t) => {
  t.is(hex(u32([4], 0, 0)), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  // Block 1 starts at word 4; a draw starting mid-block continues into the next block.
  t.is(hex(u32([3], 0, 2)), hex([...philox4x32([0, 0, 0, 0], [0, 0]).slice(2), philox4x32([1, 0, 0, 0], [0, 0])[0]]));
});

test('philox_uint32 matches the JS reference across seeds and offsets (odd shapes, high key/counter words)', (t) => {
  const cases: [number, number][] = [
    [1, 0],
    [123456789, 5],
    [2 ** 32 + 7, 2 ** 32 * 4 + 3], // exercises key word 1 and counter word 1
    [MAX, MAX - 104], // the largest seed and offset accepted
  ];
  for (const [seed, offset] of cases) {
    const got = u32([3, 5, 7], seed, offset);
    const want = philoxWords(seed, offset, 105);
    t.is(hex(got), hex(want), `seed ${seed} offset ${offset}`);
    t.is(got[104], philoxU32(seed, offset + 104) >>> 0, `seed ${seed} offset ${offset}: last word`);
  }
});

test('draws do not depend on chunking: a slice drawn at an offset equals the big draw', (t) => {
  const seed = 42;
  const n = 200_003; // several parallel chunks
  const k = 77_777; // not a multiple of 4: the slice starts mid-block
  const big = u32([n], seed, 0);
  const part = u32([n - k], seed, k);
  t.is(Buffer.compare(Buffer.from(big.subarray(k)), Buffer.from(part)), 0, 'philox_uint32');

  const ub = floats(ops.randomUniform, n, seed, 0);
  const up = floats(ops.randomUniform, n - k, seed, k);
  t.deepEqual(ub.subarray(k), up, 'random_uniform');
  // Two words per normal: element k of a draw at 0 is element 0 of a draw at 2k.
  const nb = floats(ops.randomNormal, n, seed, 0);
  const np = floats(ops.randomNormal, n - k, seed, 2 * k);
  t.deepEqual(nb.subarray(k), np, 'random_normal');
  // Same seed and offset, same numbers.
  t.deepEqual(floats(ops.randomNormal, 1001, seed, 9), floats(ops.randomNormal, 1001, seed, 9));
});

test('random_uniform is the f32 mapping of the words, inside (0, 1)', (t) => {
  const seed = 5;
  const offset = 13;
  using u = ops.randomUniform([7, 11, 13], { seed, offset });
  t.deepEqual(u.shape, [7, 11, 13]);
  const got = u.toFloat32Array();
  const words = philoxWords(seed, offset, got.length);
  t.deepEqual(got, Float32Array.from(words, unitOpen), `seed ${seed}`);
  t.true(got.every((x) => x > 0 && x < 1));
});

test('random_normal is Box-Muller (cosine half) of word pairs', (t) => {
  const seed = 77;
  const offset = 3;
  const n = 999;
  const got = floats(ops.randomNormal, n, seed, offset);
  const words = philoxWords(seed, offset, 2 * n);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(unitOpen(words[2 * i]!))) * Math.cos(2 * Math.PI * unitOpen(words[2 * i + 1]!));
    worst = Math.max(worst, Math.abs(z - got[i]!));
  }
  t.true(worst < 2e-5, `max |native - reference| = ${worst}, seed ${seed}`);
});

function moments(x: Float32Array): { mean: number; variance: number; skew: number; kurtosis: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (const v of x) {
    const d = v - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= x.length;
  m3 /= x.length;
  m4 /= x.length;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

test('uniform and normal moments over 1e6 draws', (t) => {
  const n = 1_000_000;
  const seed = 2024;
  const u = moments(floats(ops.randomUniform, n, seed, 0));
  // Standard errors: mean 0.289/√n, variance ≈ 0.075/√n; allow about 5σ.
  t.true(Math.abs(u.mean - 0.5) < 1.5e-3, `uniform mean ${u.mean}, seed ${seed}`);
  t.true(Math.abs(u.variance - 1 / 12) < 4e-4, `uniform variance ${u.variance}, seed ${seed}`);
  t.true(Math.abs(u.skew) < 0.01, `uniform skew ${u.skew}, seed ${seed}`);

  const zs = floats(ops.randomNormal, n, seed, n);
  const z = moments(zs);
  t.true(Math.abs(z.mean) < 5e-3, `normal mean ${z.mean}, seed ${seed}`);
  t.true(Math.abs(z.variance - 1) < 7e-3, `normal variance ${z.variance}, seed ${seed}`);
  t.true(Math.abs(z.skew) < 0.015, `normal skew ${z.skew}, seed ${seed}`);
  t.true(Math.abs(z.kurtosis - 3) < 0.03, `normal kurtosis ${z.kurtosis}, seed ${seed}`);
  const tail = zs.reduce((c, v) => c + (Math.abs(v) > 2 ? 1 : 0), 0) / n;
  t.true(Math.abs(tail - 0.0455) < 1.2e-3, `P(|z| > 2) = ${tail}, seed ${seed}`);
});

test('bad seeds, offsets, shapes and like tensors throw typed errors', (t) => {
  for (const f of [ops.philoxUint32, ops.randomUniform, ops.randomNormal]) {
    for (const seed of [-1, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY])
      assertDalleError(t, () => f([3], { seed }), 'E_INVALID_ARGUMENT', `${f.name}: seed ${seed}`);
    for (const offset of [-1, 1.5, 2 ** 53])
      assertDalleError(t, () => f([3], { seed: 1, offset }), 'E_INVALID_ARGUMENT', `${f.name}: offset ${offset}`);
    assertDalleError(t, () => f([2, -1], { seed: 1 }), 'E_INVALID_ARGUMENT', `${f.name}: shape [2, -1]`);
  }
  for (const op of ['philox_uint32', 'random_uniform', 'random_normal']) {
    using like = Tensor.zeros([2, 3]);
    assertDalleError(t, () => ops.runOp(op, [like], { offset: 0 }), 'E_INVALID_ARGUMENT', `${op}: no seed`);
    assertDalleError(t, () => ops.runOp(op, [like], { seed: 0 }), 'E_INVALID_ARGUMENT', `${op}: no offset`);
    using empty = Tensor.zeros([0, 3]);
    assertDalleError(t, () => ops.runOp(op, [empty], { seed: 0, offset: 0 }), 'E_EMPTY_TENSOR', `${op}: empty like`);
    const gone = Tensor.zeros([2]);
    gone.dispose();
    assertDalleError(t, () => ops.runOp(op, [gone], { seed: 0, offset: 0 }), 'E_DISPOSED', `${op}: disposed like`);
    // `like` lends only its shape, whatever its dtype.
    using bf = Tensor.zeros([2, 3], { dtype: 'bf16' });
    const [out] = ops.runOp(op, [bf], { seed: 0, offset: 0 });
    t.deepEqual(out!.shape, [2, 3]);
    out!.dispose();
  }
});

// Regression: a 24-bit mapping rounded (2^24 - 1) + 0.5 up to 2^24 in f32, so 256 words gave
// exactly 1.0 and Gumbel noise -log(-log u) became +inf (one draw in 2^24: every few dVAE steps).
test('random_uniform never returns 1.0 (word 0xffffff2d at seed 7, offset 26590058)', (t) => {
  t.is(philoxU32(7, 26590058), 0xffffff2d);
  const u = floats(ops.randomUniform, 1, 7, 26590058)[0]!;
  t.true(u < 1, `u = ${u}`);
});
