import test from 'ava';

import { DalleError, Tensor, bf16ToF32, f32ToBf16, ops } from '../lib/index.js';
import { assertDalleError, badInputBattery, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const fromBits = (bits: readonly number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const hex16 = (a: ArrayLike<number>) => Array.from(a, (x) => x.toString(16).padStart(4, '0')).join(' ');

// The interesting f32 bit patterns: signed zeros, infinities, NaNs with payloads only in the
// dropped bits (they must stay NaN), denormals, exact ties (round to even), the largest finite
// value (rounds up to Inf) and the values on either side of a tie.
const SPECIAL = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, // ±0, ±Inf
  0x7fc00000, 0xffc00000, 0x7f800001, 0x7f80ffff, 0xff800001, 0x7fffffff, // NaNs
  0x00000001, 0x807fffff, 0x00008000, 0x00018000, 0x00008001, 0x00007fff, // denormals, ties among them
  0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf808000, 0xbf818000, // ties at 1.0x, ±
  0x7f7fffff, 0xff7fffff, 0x7f7f7fff, 0x7f7f8000, 0x00800000, 0x3f800000, // max finite, near it, min normal, 1
];

test('cast to bf16 matches f32ToBf16 on special values (NaN, Inf, denormals, ties)', (t) => {
  const x = fromBits(SPECIAL);
  using xt = Tensor.from(x, [SPECIAL.length]);
  using y = ops.cast(xt, 'bf16');
  t.is(y.dtype, 'bf16');
  t.deepEqual(y.shape, [SPECIAL.length]);
  const got = y.toUint16Array();
  t.is(hex16(got), hex16(f32ToBf16(x)));
  // Spot checks that do not lean on the JS implementation.
  const at = (bits: number) => got[SPECIAL.indexOf(bits)]!;
  t.is(at(0x3f808000), 0x3f80, 'tie rounds down to even');
  t.is(at(0x3f818000), 0x3f82, 'tie rounds up to even');
  t.is(at(0x3f808001), 0x3f81, 'above the tie rounds up');
  t.is(at(0x7f7fffff), 0x7f80, 'max finite rounds to Inf');
  t.is(at(0x80000000), 0x8000, '-0 keeps its sign');
  t.is(at(0x00008000), 0x0000, 'denormal tie rounds to even (0)');
  t.is(at(0x00018000), 0x0002, 'denormal tie rounds to even (2)');
  for (const nan of [0x7fc00000, 0xffc00000, 0x7f800001, 0x7f80ffff, 0xff800001, 0x7fffffff])
    t.true(Number.isNaN(bf16ToF32(Uint16Array.of(at(nan)))[0]), `NaN 0x${nan.toString(16)} stays NaN`);
});

test('cast to bf16 matches f32ToBf16 on random bit patterns and values', (t) => {
  const seed = 123;
  const rand = rng(seed);
  const bits = Array.from({ length: 100_003 }, () => Math.floor(rand() * 2 ** 32));
  for (const x of [fromBits(bits), randomArray(rand, 100_003, -1e3, 1e3)]) {
    using xt = Tensor.from(x, [x.length]);
    using y = ops.cast(xt, 'bf16');
    const got = y.toUint16Array();
    const want = f32ToBf16(x);
    const bad = got.findIndex((v, i) => v !== want[i]);
    t.is(bad, -1, bad < 0 ? '' : `index ${bad}: f32 ${x[bad]} -> ${got[bad]} vs ${want[bad]}, seed ${seed}`);
  }
});

test('cast to f32 is exact for all 65536 bf16 patterns', (t) => {
  const all = new Uint16Array(65536).map((_, i) => i);
  using x = Tensor.from(all, [256, 256]);
  t.is(x.dtype, 'bf16');
  using y = ops.cast(x, 'f32');
  t.is(y.dtype, 'f32');
  t.deepEqual(y.shape, [256, 256]);
  const got = new Uint32Array(y.toFloat32Array().buffer);
  const want = new Uint32Array(bf16ToF32(all).buffer);
  const bad = got.findIndex((v, i) => v !== want[i]);
  t.is(bad, -1, bad < 0 ? '' : `bf16 0x${bad.toString(16)}: got 0x${got[bad]!.toString(16)}`);
  // Round trip bf16 -> f32 -> bf16 is the identity, except NaNs, which come back as (quiet) NaNs.
  using back = ops.cast(y, 'bf16');
  const rt = back.toUint16Array();
  for (let i = 0; i < 65536; i++) {
    const isNan = (i & 0x7fff) > 0x7f80;
    if (isNan ? (rt[i]! & 0x7fff) <= 0x7f80 : rt[i] !== i) {
      t.fail(`round trip of 0x${i.toString(16)} gave 0x${rt[i]!.toString(16)}`);
      return;
    }
  }
  t.pass();
});

test('cast to the same dtype copies; other targets are refused', (t) => {
  using x = Tensor.from([1, 2, 3], [3]);
  using c = ops.cast(x, 'f32');
  t.not(c, x);
  c.write(Float32Array.of(9, 9, 9));
  t.deepEqual(Array.from(x.toFloat32Array()), [1, 2, 3]);
  using b = Tensor.from([1.5, -2], [2], { dtype: 'bf16' });
  using b2 = ops.cast(b, 'bf16');
  t.is(b2.dtype, 'bf16');
  t.deepEqual(Array.from(b2.toFloat32Array()), [1.5, -2]);
  const err = t.throws(() => ops.cast(x, 'i32' as 'f32'));
  t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', String(err));
  using i = Tensor.from(Int32Array.of(1, 2), [2]);
  assertDalleError(t, () => ops.cast(i, 'f32'), 'E_DTYPE', 'i32 -> f32');
  assertDalleError(t, () => ops.cast(i, 'bf16'), 'E_DTYPE', 'i32 -> bf16');
});

test('casts: bad inputs throw typed errors', (t) => {
  const f32 = () => [Tensor.from(randomArray(rng(1), 15), [3, 5])];
  const bf16 = () => [Tensor.from(randomArray(rng(2), 15), [3, 5], { dtype: 'bf16' })];
  const toBf16 = ([x]: Tensor[]) => ops.runOp1('cast_f32_to_bf16', [x!]);
  const toF32 = ([x]: Tensor[]) => ops.runOp1('cast_bf16_to_f32', [x!]);
  badInputBattery(t, 'cast_f32_to_bf16', toBf16, f32);
  nanBattery(t, 'cast_f32_to_bf16', toBf16, f32);
  badInputBattery(t, 'cast_bf16_to_f32', toF32, bf16);
  badInputBattery(t, 'cast (bf16 target)', ([x]) => ops.cast(x!, 'bf16'), f32);
  badInputBattery(t, 'cast (f32 target)', ([x]) => ops.cast(x!, 'f32'), bf16);
  using b = Tensor.from([1], [1], { dtype: 'bf16' });
  assertDalleError(t, () => toBf16([b]), 'E_DTYPE', 'cast_f32_to_bf16 of bf16');
  using f = Tensor.from([1], [1]);
  assertDalleError(t, () => toF32([f]), 'E_DTYPE', 'cast_bf16_to_f32 of f32');
});
