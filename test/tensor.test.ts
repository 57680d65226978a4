import { spawnSync } from 'node:child_process';

import test from 'ava';

import { Arena, DalleError, Tensor, buildInfo, cachedBytes, liveBytes, ops, releaseCachedMemory } from '../lib/index.js';
import { assertDalleError } from './helpers/gradcheck.js';

test('round trip f32, i32, bf16', (t) => {
  using a = Tensor.from([1.5, -2, 3.25], [3]);
  t.deepEqual(Array.from(a.toFloat32Array()), [1.5, -2, 3.25]);
  t.deepEqual(a.shape, [3]);
  t.is(a.dtype, 'f32');
  t.is(a.device, 'cpu');
  using b = Tensor.from(new Int32Array([7, -8]), [2, 1]);
  t.deepEqual(Array.from(b.toInt32Array()), [7, -8]);
  using c = Tensor.from([1, 0.1, -3e38], [3], { dtype: 'bf16' });
  const back = c.toFloat32Array();
  t.is(back[0], 1);
  t.true(Math.abs(back[1]! - 0.1) < 1e-3);
  t.true(back[2]! < -2.9e38);
});

test('reshape shares memory and checks size', (t) => {
  using a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  using b = a.reshape([3, 2]);
  b.write(new Float32Array([6, 5, 4, 3, 2, 1]));
  t.deepEqual(Array.from(a.toFloat32Array()), [6, 5, 4, 3, 2, 1]);
  assertDalleError(t, () => a.reshape([4, 2]), 'E_INVALID_ARGUMENT', 'reshape to wrong size');
  a.dispose();
  t.deepEqual(Array.from(b.toFloat32Array()), [6, 5, 4, 3, 2, 1], 'a view outlives its parent');
});

test.serial('dispose frees memory and later use throws E_DISPOSED', (t) => {
  const before = liveBytes('cpu');
  const a = Tensor.zeros([1024, 256]);
  t.is(liveBytes('cpu') - before, 1024 * 256 * 4);
  a.dispose();
  t.is(liveBytes('cpu'), before);
  t.true(a.disposed);
  assertDalleError(t, () => a.toFloat32Array(), 'E_DISPOSED', 'read after dispose');
  assertDalleError(t, () => ops.gelu(a), 'E_DISPOSED', 'op on disposed tensor');
  a.dispose(); // twice is harmless
  {
    using b = Tensor.zeros([10]);
    t.is(b.size, 10);
  }
  t.is(liveBytes('cpu'), before, 'using disposes at scope end');
});

test('bad construction arguments throw DalleError', (t) => {
  assertDalleError(t, () => Tensor.from([1, 2, 3], [2, 2]), 'E_INVALID_ARGUMENT', 'length mismatch');
  assertDalleError(t, () => Tensor.zeros([2, -1]), 'E_INVALID_ARGUMENT', 'negative dim');
  assertDalleError(t, () => Tensor.zeros([2.5]), 'E_INVALID_ARGUMENT', 'fractional dim');
  assertDalleError(t, () => Tensor.zeros([1e9, 1e9]), 'E_INVALID_ARGUMENT', 'absurd size');
  assertDalleError(t, () => Tensor.zeros([2], { dtype: 'f64' as never }), 'E_DTYPE', 'unknown dtype');
  assertDalleError(t, () => Tensor.from([1.5], [1], { dtype: 'i32' }), 'E_INVALID_ARGUMENT', 'non-integer i32');
  assertDalleError(t, () => ops.runOp('no_such_op', []), 'E_NOT_FOUND', 'unknown op');
  using a = Tensor.zeros([2]);
  assertDalleError(t, () => a.write(new Int32Array(2)), 'E_DTYPE', 'write wrong dtype');
  assertDalleError(t, () => a.write(new Float32Array(3)), 'E_INVALID_ARGUMENT', 'write wrong length');
});

test('cuda without a device is a typed error', (t) => {
  if (buildInfo().cudaDevices > 0) {
    t.pass('a CUDA device is present; covered by the CUDA tests');
    return;
  }
  assertDalleError(t, () => Tensor.zeros([4], { device: 'cuda' }), 'E_DEVICE', 'cuda alloc without device');
});

test.serial('arena: one allocation, named aligned slices', (t) => {
  const before = liveBytes('cpu');
  using arena = new Arena([
    { name: 'w', shape: [3, 5] },
    { name: 'b', shape: [5] },
    { name: 'ids', shape: [7], dtype: 'i32' },
  ]);
  t.is(arena.byteLength, 64 + 64 + 64);
  t.is(liveBytes('cpu') - before, arena.byteLength);
  arena.get('b').write(new Float32Array([1, 2, 3, 4, 5]));
  const flat = arena.flat.toFloat32Array();
  t.deepEqual(Array.from(flat.slice(16, 21)), [1, 2, 3, 4, 5]);
  t.throws(() => arena.get('nope'), { instanceOf: DalleError });
  t.throws(() => new Arena([{ name: 'a', shape: [1] }, { name: 'a', shape: [2] }]), { instanceOf: DalleError });
});

test('async op resolves and survives dispose of its input mid-flight', async (t) => {
  const x = Tensor.from(new Float32Array(1 << 16).fill(1), [1 << 16]);
  const p = ops.runOpAsync('relu_forward', [x]);
  x.dispose();
  const [y] = await p;
  t.is(y!.toFloat32Array()[123], 1);
  y!.dispose();
  await t.throwsAsync(ops.runOpAsync('relu_forward', [x]), { instanceOf: DalleError });
});

test('build info describes the binary', (t) => {
  const info = buildInfo();
  t.true(info.threads >= 1);
  t.true(['scalar', 'avx2-fma', 'avx512'].includes(info.simd));
  t.is(info.napiVersion, 8);
  t.log(JSON.stringify(info));
});

test('an undisposed tensor is freed after garbage collection (the fallback, not the strategy)', (t) => {
  // A separate process with --expose-gc, so other tests' allocations do not blur the count.
  const script = `
    import { Tensor, liveBytes } from ${JSON.stringify(new URL('../lib/index.ts', import.meta.url).href)};
    const before = liveBytes('cpu');
    (() => { for (let i = 0; i < 8; i++) Tensor.zeros([1 << 18]); })();
    const held = liveBytes('cpu') - before;
    for (let i = 0; i < 20 && liveBytes('cpu') > before; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    console.log(JSON.stringify({ held, after: liveBytes('cpu') - before }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  t.truthy(line, r.stdout + r.stderr);
  const { held, after } = JSON.parse(line!) as { held: number; after: number };
  t.is(held, 8 * (1 << 18) * 4);
  t.is(after, 0);
});

test.serial('freed large blocks are reused, come back zeroed, and can be given back to the system', (t) => {
  releaseCachedMemory();
  const n = 1 << 18; // 1 MiB of f32: above the 256 KiB the cache starts at
  const a = Tensor.from(new Float32Array(n).fill(7), [n]);
  a.dispose();
  t.is(cachedBytes(), n * 4, 'the freed block is kept');
  using b = Tensor.zeros([n]);
  t.is(cachedBytes(), 0, 'and reused for the next tensor of its size');
  t.true(b.toFloat32Array().every((v) => v === 0), 'a reused block is zero-filled like a new one');
  const small = Tensor.zeros([1000]);
  small.dispose();
  t.is(cachedBytes(), 0, 'small blocks go straight back to malloc');
  const c = Tensor.zeros([n + 5]);
  c.dispose();
  t.true(cachedBytes() >= (n + 5) * 4);
  t.is(releaseCachedMemory() > 0, true);
  t.is(cachedBytes(), 0);
});

test('DALLE_CPU_CACHE_MB caps the reuse cache; 0 turns it off', (t) => {
  const script = `
    import { Tensor, cachedBytes } from ${JSON.stringify(new URL('../lib/index.ts', import.meta.url).href)};
    for (let i = 0; i < 4; i++) Tensor.zeros([(1 << 18) * (i + 1)]).dispose(); // 1, 2, 3, 4 MiB
    console.log(cachedBytes());`;
  const cached = (mb: string): number => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, DALLE_CPU_CACHE_MB: mb } });
    return Number(r.stdout.trim());
  };
  t.is(cached('0'), 0);
  t.is(cached('5'), 3 << 20, 'over the cap the largest blocks go first: 1 + 2 MiB stay');
  t.is(cached(''), 10 << 20);
});
