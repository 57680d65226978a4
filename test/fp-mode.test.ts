import test from 'ava';

import { Tensor, ops } from '../lib/index.js';

// f32 subnormals: below 2^-126 ≈ 1.18e-38 and above 0.
const SUBNORMAL = 1e-40;

test('CPU kernels flush subnormal inputs and results to zero, on the calling thread and in the pool', (t) => {
  for (const n of [7, 1 << 20]) {
    using tiny = Tensor.from(new Float32Array(n).fill(SUBNORMAL), [n]);
    t.true(tiny.toFloat32Array()[0]! > 0, 'the input itself is stored as a subnormal');
    using zeros = Tensor.from(new Float32Array(n), [n]);
    using small = Tensor.from(new Float32Array(n).fill(1e-20), [n]);
    using read = ops.residual(tiny, zeros); // subnormal in: treated as zero
    using made = ops.residual(zeros, small, { scale: 1e-20 }); // 1e-40 out: flushed
    using normal = ops.residual(small, small, { scale: 2 }); // ordinary values are untouched
    t.true(read.toFloat32Array().every((v) => v === 0), `n=${n}: subnormal inputs read as 0`);
    t.true(made.toFloat32Array().every((v) => v === 0), `n=${n}: subnormal results flushed`);
    t.true(normal.toFloat32Array().every((v) => Math.abs(v - 3e-20) < 1e-26), `n=${n}: normal values kept`);
  }
});

test('JavaScript keeps IEEE subnormals after a kernel ran on its thread', (t) => {
  using x = Tensor.from(new Float32Array([1]), [1]);
  using y = ops.residual(x, x);
  t.is(y.toFloat32Array()[0], 2);
  const operands = [2.2250738585072014e-308, 0.25]; // smallest normal double, and a factor taking it below
  t.true(operands[0]! * operands[1]! > 0);
  t.true(new Float32Array([SUBNORMAL])[0]! > 0);
});
