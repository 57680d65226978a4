import test from 'ava';

import { Tensor, ops, setSimdLevel } from '../lib/index.js';
import { assertClose, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

test('gelu forward matches the tanh formula', (t) => {
  const seed = 11;
  const x = randomArray(rng(seed), 1037, -6, 6);
  using xt = Tensor.from(x, [17, 61]);
  using y = ops.gelu(xt);
  assertClose(t, y.toFloat32Array(), Array.from(x, geluRef), { what: 'gelu', atol: 1e-6, rtol: 1e-5, seed });
});

const geluGradRef = (x: number) => {
  const k = Math.sqrt(2 / Math.PI);
  const t = Math.tanh(k * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
};

test('gelu forward and backward match the tanh formula at every SIMD level, extremes included', (t) => {
  const seed = 12;
  const x = Float32Array.from([...randomArray(rng(seed), 3001, -8, 8), 0, -0, 30, -30, 1e-20, -1e-20, 88, -88, 1e6, -1e6]);
  const dy = randomArray(rng(seed + 1), x.length);
  try {
    for (const level of ['scalar', 'avx2-fma', 'avx512'] as const) {
      setSimdLevel(level);
      using xt = Tensor.from(x, [x.length]);
      using dyt = Tensor.from(dy, [x.length]);
      using y = ops.gelu(xt);
      using dx = ops.geluBackward(xt, dyt);
      assertClose(t, y.toFloat32Array(), Array.from(x, geluRef), { what: `gelu (${level})`, atol: 1e-6, rtol: 1e-5, seed });
      assertClose(t, dx.toFloat32Array(), Array.from(x, (v, i) => geluGradRef(v) * dy[i]!), { what: `gelu backward (${level})`, atol: 1e-6, rtol: 1e-5, seed });
    }
  } finally {
    setSimdLevel(null);
  }
});

test('relu forward', (t) => {
  using x = Tensor.from([-2, -0, 0.5, 3], [4]);
  using y = ops.relu(x);
  t.deepEqual(Array.from(y.toFloat32Array()), [0, 0, 0.5, 3]);
});

for (const [name, fwd, bwd] of [
  ['gelu', ops.gelu, ops.geluBackward],
  ['relu', ops.relu, ops.reluBackward],
] as const) {
  test(`${name} backward: finite differences`, (t) => {
    const seed = name.length * 101;
    // Keep ReLU inputs away from the kink at 0, where the difference quotient is meaningless.
    const data = randomArray(rng(seed), 3 * 7 * 5, -3, 3).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));
    gradcheck(t, name, {
      seed,
      inputs: [{ shape: [3, 7, 5], data }],
      wrt: [0],
      forward: ([x]) => fwd(x!),
      backward: ([x], dy) => [bwd(x!, dy)],
      eps: 1e-3,
    });
  });

  test(`${name}: bad inputs throw typed errors`, (t) => {
    const good = () => [Tensor.from(randomArray(rng(1), 15), [3, 5]), Tensor.from(randomArray(rng(2), 15), [3, 5])];
    badInputBattery(t, `${name}_backward`, ([x, dy]) => bwd(x!, dy!), good, {
      wrongShape: (i) => (i === 1 ? [5, 3] : null),
    });
    badInputBattery(t, `${name}_forward`, ([x]) => fwd(x!), () => [Tensor.from(randomArray(rng(3), 6), [2, 3])]);
    nanBattery(t, `${name}_backward`, ([x, dy]) => bwd(x!, dy!), good);
  });
}
