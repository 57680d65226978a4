import test from 'ava';

import { Tensor, ops } from '../lib/index.js';
import { assertClose, badInputBattery, gradcheck, nanBattery, randomArray, rng } from './helpers/gradcheck.js';

const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

test('gelu forward matches the tanh formula', (t) => {
  const seed = 11;
  const x = randomArray(rng(seed), 1037, -6, 6);
  using xt = Tensor.from(x, [17, 61]);
  using y = ops.gelu(xt);
  assertClose(t, y.toFloat32Array(), Array.from(x, geluRef), { what: 'gelu', atol: 1e-6, rtol: 1e-5, seed });
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
