/**
 * The CUDA self-test (native/cuda/selftest): each device primitive against a plain host loop, launches a GPU refuses,
 * and deliberately broken kernels that the emulated device must catch with a message naming the kernel, block and
 * thread. Primitives and refusals run on the emulator and on a GPU (where they prove the two agree); the broken
 * kernels only on the emulator, since on a GPU they would hang or corrupt memory.
 */
import './helpers/cuda-binary.js';

import { spawnSync } from 'node:child_process';

import test from 'ava';

import { buildInfo, loadAddon } from '../lib/index.js';
import { cudaDeviceRequired } from './helpers/cuda-binary.js';

const where = /block \(\d+,\d+,\d+\) of grid \(\d+,\d+,\d+\), thread \(\d+,\d+,\d+\) \[warp \d+ lane \d+\]/;

/** What each broken or refused case must report. Every case compiled in must have an entry, and only those. */
const expected: Record<string, { kind: 'primitive' | 'refusal' | 'misuse'; message?: RegExp[] }> = {
  indices: { kind: 'primitive' },
  shared_memory: { kind: 'primitive' },
  big_dynamic_smem: { kind: 'primitive' },
  barrier_votes: { kind: 'primitive' },
  shuffles: { kind: 'primitive' },
  warp_sums: { kind: 'primitive' },
  votes: { kind: 'primitive' },
  atomics: { kind: 'primitive' },
  math: { kind: 'primitive' },
  mma: { kind: 'primitive' },
  ldmatrix_cp_async: { kind: 'primitive' },
  divergent_barrier: {
    kind: 'misuse',
    message: [/kernel selftest::broken_divergent_barrier, /, where, /exited while 16 other thread\(s\) wait at __syncthreads \(.*misuse_cuda\.cu:\d+\)/],
  },
  early_return: {
    kind: 'misuse',
    message: [/kernel selftest::broken_early_return, block \(1,0,0\)/, where, /wait at __syncthreads/],
  },
  split_barrier: {
    kind: 'misuse',
    message: [/kernel selftest::broken_split_barrier, /, where, /waits at the barrier at .*:\d+ while 1 other thread\(s\) wait at the one at .*:\d+/],
  },
  partial_shuffle: {
    kind: 'misuse',
    message: [/kernel selftest::broken_partial_shuffle, /, where, /thread \(16,0,0\).*exited while lane 0 waits for it in __shfl_down_sync \(mask 0xffffffff\)/],
  },
  shuffle_source: {
    kind: 'misuse',
    message: [/kernel selftest::broken_shuffle_source, /, where, /lane 0 reads lane 20, which is not in the mask 0x0000ffff/],
  },
  out_of_bounds: {
    kind: 'misuse',
    message: [/kernel selftest::broken_out_of_bounds: out-of-bounds write just past the end of the 400-byte allocation argument 0 points into/],
  },
  negative_index: {
    kind: 'misuse',
    message: [/kernel selftest::broken_negative_index: out-of-bounds write 4 byte\(s\) before the start of the 400-byte allocation argument 0/],
  },
  shared_overflow: {
    kind: 'misuse',
    message: [/kernel selftest::broken_shared_overflow, block \(0,0,0\): a write outside its 256 bytes of dynamic shared memory/],
  },
  // Nothing faults: the parity check against the host sum catches the half-warp sums.
  shuffle_width: { kind: 'misuse', message: [/broken_shuffle_width: warp sum: element 0 is -?\d/] },
  // A race: only the parity check sees it (the forward schedule reads before the neighbour writes).
  missing_barrier: { kind: 'misuse', message: [/broken_missing_barrier: neighbour's value: element \d+ is/] },
  host_pointer: {
    kind: 'misuse',
    message: [/kernel selftest::selftest_noop: argument 0 is 0x[0-9a-f]+, which is not device memory/],
  },
  too_many_threads: { kind: 'refusal', message: [/selftest::selftest_noop/, /cudaErrorInvalidConfiguration/] },
  block_z_too_deep: { kind: 'refusal', message: [/selftest::selftest_noop/, /cudaErrorInvalidConfiguration/] },
  empty_grid: { kind: 'refusal', message: [/selftest::selftest_noop/, /cudaErrorInvalidConfiguration/] },
  too_much_shared: { kind: 'refusal', message: [/selftest::selftest_noop/, /cudaErrorInvalidValue/] },
};

const info = buildInfo();
const device = info.cudaCompiled && info.cudaDevices > 0;
const onDevice = device ? test : cudaDeviceRequired ? test : test.skip;

test('cuda self-test: every case compiled in has an expectation here, and every expectation a case', (t) => {
  const cases = loadAddon().cudaSelfTests();
  if (!info.cudaCompiled) {
    t.deepEqual(cases, [], 'a build without CUDA has no self-test cases');
    return;
  }
  t.deepEqual(
    cases.map((c) => [c.name, c.kind]).sort(),
    Object.entries(expected)
      .map(([name, e]) => [name, e.kind])
      .sort(),
  );
});

onDevice('cuda self-test: a CUDA device is present (the emulator in CI)', (t) => {
  t.true(device, `no CUDA device: ${info.cudaError || 'built without CUDA'} (npm run build:native:emulated)`);
  t.log(`${info.cudaDeviceName}${info.cudaEmulated ? ', emulated' : ''}`);
});

for (const [name, e] of Object.entries(expected)) {
  const runsHere = e.kind !== 'misuse' || info.cudaEmulated;
  const run = device && runsHere ? test : test.skip;
  run(`cuda self-test: ${e.kind} ${name}`, (t) => {
    const result = loadAddon().runCudaSelfTest(name);
    if (e.kind === 'primitive') {
      t.true(result.ok, result.message);
      t.log(result.message);
      return;
    }
    t.false(result.ok, `${name} must fail, but passed: ${result.message}`);
    for (const pattern of e.message ?? []) t.regex(result.message, pattern);
  });
}

test('cuda self-test: an unknown case is E_NOT_FOUND', (t) => {
  const err = t.throws(() => loadAddon().runCudaSelfTest('no_such_case'));
  t.is((err as { code?: string }).code, 'E_NOT_FOUND');
});

if (device && info.cudaEmulated) {
  test('cuda self-test: the device still works after every broken kernel (faults are not sticky on the emulator)', (t) => {
    const addon = loadAddon();
    for (const [name, e] of Object.entries(expected)) if (e.kind !== 'primitive') addon.runCudaSelfTest(name);
    const again = addon.runCudaSelfTest('mma');
    t.true(again.ok, again.message);
  });
}

if (device && info.cudaEmulated) {
  test('cuda self-test: the same verdicts with threads scheduled last first (DALLE_CUDA_EMU_SCHEDULE=reverse)', (t) => {
    // A fresh process: the schedule is read once. Primitives must not depend on the order threads run in.
    const script =
      'const a = require(process.env.DALLE_BINARY);' +
      'console.log(JSON.stringify(a.cudaSelfTests().map((c) => ({ ...c, ...a.runCudaSelfTest(c.name) }))));';
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, DALLE_CUDA_EMU_SCHEDULE: 'reverse' },
      encoding: 'utf8',
    });
    t.is(r.status, 0, r.stderr);
    const results = JSON.parse(r.stdout) as { name: string; kind: string; ok: boolean; message: string }[];
    t.is(results.length, Object.keys(expected).length);
    for (const c of results) t.is(c.ok, c.kind === 'primitive', `${c.name} (reverse schedule): ${c.message}`);
  });
}
