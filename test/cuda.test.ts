/**
 * The CUDA backend against the CPU reference: every op with a CUDA kernel is run on both backends over random odd-sized
 * inputs with printed seeds, Philox draws must agree bit for bit, and tensors must survive device round trips
 * unchanged. It runs on the emulated CUDA device (build-emulated/, see test/helpers/cuda-binary.ts) on a machine
 * without a GPU, CI included, and on the real device on a GPU machine (native/cuda/README.md). Without either, only
 * the registration checks run, unless DALLE_REQUIRE_CUDA_DEVICE=1 (CI) makes that a failure.
 */
import './helpers/cuda-binary.js';

import test, { type ExecutionContext } from 'ava';

import { Tensor, bf16ToF32, buildInfo, liveBytes, loadAddon, ops, type DType } from '../lib/index.js';
import { cudaDeviceRequired } from './helpers/cuda-binary.js';
import { assertClose, assertDalleError, randomArray, rng } from './helpers/gradcheck.js';

type Data = Float32Array | Int32Array | Uint16Array;
interface InputSpec {
  shape: number[];
  dtype: DType;
  data: Data;
}
interface Case {
  inputs: InputSpec[];
  attrs?: Record<string, number>;
}
interface ParitySpec {
  /** One random case of the given shape. */
  make: (rand: () => number, shape: number[]) => Case;
  /** Elementwise |cuda - cpu| <= atol + rtol·|cpu|; exact: bit-identical. */
  tol: { atol: number; rtol: number } | 'exact';
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const f32 = (rand: () => number, shape: number[], lo = -1, hi = 1): InputSpec => ({
  shape,
  dtype: 'f32',
  data: randomArray(rand, numel(shape), lo, hi),
});
/** Sprinkles exact zeros (both signs) where ReLU's branch changes. */
const withZeros = (rand: () => number, spec: InputSpec): InputSpec => {
  const d = spec.data as Float32Array;
  for (let i = 0; i < d.length; i++) if (rand() < 0.05) d[i] = rand() < 0.5 ? 0 : -0;
  return spec;
};
const seedOffset = (rand: () => number) => ({
  seed: Math.floor(rand() * 2 ** 53),
  offset: Math.floor(rand() * 2 ** 40),
});

/**
 * One entry per op that has a CUDA kernel: how to make its inputs and how close CUDA must come.
 * An op with a CUDA kernel and no entry fails the registration test, on every machine.
 */
const parity: Record<string, ParitySpec> = {
  // CUDA's tanhf is within 2 ulp of std::tanh and nvcc contracts to FMA; 1 - tanh² near
  // saturation turns those ulps into ~1e-6 absolute error in the gradient (times |dy| <= 2).
  gelu_forward: { make: (r, s) => ({ inputs: [f32(r, s, -6, 6)] }), tol: { atol: 2e-6, rtol: 1e-5 } },
  gelu_backward: {
    make: (r, s) => ({ inputs: [f32(r, s, -6, 6), f32(r, s, -2, 2)] }),
    tol: { atol: 1e-5, rtol: 1e-5 },
  },
  relu_forward: { make: (r, s) => ({ inputs: [withZeros(r, f32(r, s, -2, 2))] }), tol: 'exact' },
  relu_backward: {
    make: (r, s) => ({ inputs: [withZeros(r, f32(r, s, -2, 2)), f32(r, s, -2, 2)] }),
    tol: 'exact',
  },
  philox_uint32: { make: (r, s) => ({ inputs: [f32(r, s)], attrs: seedOffset(r) }), tol: 'exact' },
  random_uniform: { make: (r, s) => ({ inputs: [f32(r, s)], attrs: seedOffset(r) }), tol: 'exact' },
};

/** Odd sizes: partial warps, partial blocks, partial Philox blocks. */
const shapes: number[][] = [[1], [7], [3, 5, 7], [1031], [61, 67], [2, 3, 5, 97]];

function cudaOps(): string[] {
  const addon = loadAddon();
  return addon.opNames().filter((n) => addon.opInfo(n).cuda);
}

function gpuState(): { ok: boolean; why: string } {
  try {
    const info = buildInfo();
    if (!info.cudaCompiled) return { ok: false, why: 'this binary was built without the CUDA backend' };
    if (info.cudaDevices === 0) return { ok: false, why: `no CUDA device: ${info.cudaError}` };
    return { ok: true, why: info.cudaDeviceName };
  } catch (err) {
    return { ok: false, why: `the addon did not load: ${String(err)}` };
  }
}
const gpu = gpuState();
const gpuTest = gpu.ok ? test : test.skip;
const gpuSerial = gpu.ok ? test.serial : test.serial.skip;

function values(x: Tensor): Float32Array | Int32Array {
  if (x.dtype === 'i32') return x.toInt32Array();
  if (x.dtype === 'bf16') return bf16ToF32(x.toUint16Array());
  return x.toFloat32Array();
}

/** Bit-identical (NaN payloads and signed zeros included), reporting the first difference. */
function assertIdentical(t: ExecutionContext, got: Data, want: Data, what: string): void {
  if (got.length !== want.length || got.constructor !== want.constructor) {
    t.fail(`${what}: got ${got.constructor.name}[${got.length}], want ${want.constructor.name}[${want.length}]`);
    return;
  }
  // Floats are compared as their bit patterns: NaN !== NaN and 0 === -0 would both mislead.
  const bits = (a: Data) => (a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a);
  const g = bits(got);
  const w = bits(want);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) {
      t.fail(`${what}: element ${i} differs: got ${got[i]}, want ${want[i]}`);
      return;
    }
  t.pass();
}

function runParity(t: ExecutionContext, name: string, spec: ParitySpec, shape: number[], seed: number): void {
  const c = spec.make(rng(seed), shape);
  const what = `${name} ${JSON.stringify(shape)} seed ${seed}`;
  const cpuIn = c.inputs.map((i) => Tensor.from(i.data, i.shape, { dtype: i.dtype }));
  const gpuIn = cpuIn.map((x) => x.to('cuda'));
  const outs: Tensor[] = [];
  try {
    const want = ops.runOp(name, cpuIn, c.attrs);
    outs.push(...want);
    const got = ops.runOp(name, gpuIn, c.attrs);
    outs.push(...got);
    t.is(got.length, want.length, what);
    for (let k = 0; k < want.length; k++) {
      const g = got[k]!;
      const w = want[k]!;
      t.is(g.device, 'cuda', `${what}: output ${k} device`);
      t.deepEqual([g.dtype, g.shape], [w.dtype, w.shape], `${what}: output ${k} dtype and shape`);
      if (spec.tol === 'exact') assertIdentical(t, values(g), values(w), `${what}: output ${k}`);
      else assertClose(t, values(g), values(w), { ...spec.tol, what: `${what}: output ${k}`, seed });
    }
  } finally {
    for (const x of [...cpuIn, ...gpuIn, ...outs]) x.dispose();
  }
}

// ---- on every machine ---------------------------------------------------------------------------

test('cuda: build info and kernel registration are consistent', (t) => {
  const info = buildInfo();
  if (!info.cudaCompiled) {
    t.deepEqual(cudaOps(), [], 'a CPU-only build registers no CUDA kernels');
    t.log('CPU-only build: nothing else to check');
    return;
  }
  if (info.cudaDevices === 0) {
    t.true(info.cudaError.length > 0, 'with no device, cudaError says why');
    t.false(cudaDeviceRequired, `DALLE_REQUIRE_CUDA_DEVICE=1 but ${gpu.why} (npm run build:native:emulated)`);
    t.log(`GPU tests skipped: ${gpu.why}`);
  } else {
    t.is(info.cudaError, '', 'a usable device leaves cudaError empty');
    t.true(info.cudaDeviceName.length > 0);
    t.log(`device: ${info.cudaDeviceName}${info.cudaEmulated ? ' (emulated)' : ''}, cuBLASLt ${info.cublasLt ? 'loaded' : 'absent'}`);
  }
  const registered = cudaOps();
  for (const name of ['gelu_forward', 'gelu_backward', 'relu_forward', 'relu_backward', 'philox_uint32', 'random_uniform'])
    t.true(registered.includes(name), `${name} has a CUDA kernel`);
  for (const name of registered)
    t.truthy(parity[name], `${name} has a CUDA kernel but no parity entry in test/cuda.test.ts`);
  for (const name of Object.keys(parity)) t.true(registered.includes(name), `parity entry ${name} has no CUDA kernel`);
});

test('cuda: ops on CPU tensors run on the CPU', (t) => {
  using x = Tensor.from([-1, 0, 2], [3]);
  using y = ops.runOp('relu_forward', [x])[0]!;
  t.deepEqual(Array.from(y.toFloat32Array()), [0, 0, 2]);
  t.is(y.device, 'cpu');
});

// ---- with a device ------------------------------------------------------------------------------

gpuTest('cuda: device round trips keep every bit', (t) => {
  const f = new Float32Array([1.5, -0, 0, NaN, Infinity, -Infinity, 1e-45, -3.4e38, 0.1]);
  const i = new Int32Array([0, -1, 2147483647, -2147483648, 12345, 7, -7]);
  const h = new Uint16Array([0x0000, 0x8000, 0x3f80, 0x7f80, 0xff80, 0x7fc1, 0x0001, 0xabcd]);
  for (const [data, shape, dtype] of [
    [f, [3, 3], 'f32'],
    [i, [7], 'i32'],
    [h, [2, 4], 'bf16'],
  ] as const) {
    using g = Tensor.from(data, shape, { dtype, device: 'cuda' });
    t.is(g.device, 'cuda');
    t.deepEqual([g.dtype, g.shape], [dtype, shape]);
    const read = (x: Tensor): Data =>
      x.dtype === 'f32' ? x.toFloat32Array() : x.dtype === 'i32' ? x.toInt32Array() : x.toUint16Array();
    assertIdentical(t, read(g), data, `${dtype}: read from the device`);
    using back = g.to('cpu');
    t.is(back.device, 'cpu');
    assertIdentical(t, read(back), data, `${dtype}: cuda -> cpu`);
    using copy = g.to('cuda');
    assertIdentical(t, read(copy), data, `${dtype}: cuda -> cuda`);
  }
  using z = Tensor.zeros([1031], { device: 'cuda' });
  t.true(z.toFloat32Array().every((v) => Object.is(v, 0)), 'zeros on the device are +0');
  const fresh = randomArray(rng(5), 1031);
  z.write(fresh);
  assertIdentical(t, z.toFloat32Array(), fresh, 'write into a device tensor');
  using view = z.reshape([1031, 1]);
  view.write(new Float32Array(1031).fill(2));
  t.is(z.toFloat32Array()[1030], 2, 'a reshaped device tensor shares memory');
});

gpuSerial('cuda: liveBytes counts device memory and dispose returns it', (t) => {
  const before = liveBytes('cuda');
  const a = Tensor.zeros([257, 33], { device: 'cuda' });
  t.is(liveBytes('cuda') - before, 257 * 33 * 4);
  a.dispose();
  t.is(liveBytes('cuda'), before);
  // Reusing cached blocks must still hand out zeroed memory.
  for (let k = 0; k < 3; k++) {
    using b = Tensor.from(new Float32Array(257 * 33).fill(7), [257, 33], { device: 'cuda' });
    t.is(b.toFloat32Array()[0], 7);
    b.dispose();
    using c = Tensor.zeros([257, 33], { device: 'cuda' });
    t.true(c.toFloat32Array().every((v) => v === 0), 'a reused block is zeroed');
  }
  t.is(liveBytes('cuda'), before, 'no device memory leaked');
});

gpuTest('cuda: every op with a CUDA kernel matches the CPU', (t) => {
  let seed = 1000;
  for (const name of cudaOps()) {
    const spec = parity[name];
    if (!spec) continue; // reported by the registration test
    for (const shape of shapes) runParity(t, name, spec, shape, seed++);
  }
  t.log(`seeds 1000..${seed - 1}`);
});

gpuTest('cuda: Philox draws are bit-identical on CPU and CUDA', (t) => {
  const seeds = [0, 1, 0xdeadbeef, 2 ** 32 + 7, 2 ** 53 - 1];
  const offsets = [0, 1, 2, 3, 5, 2 ** 32 - 2, 2 ** 53 - 1 - 2048];
  const lengths = [1, 3, 4, 5, 1029];
  for (const seed of seeds)
    for (const offset of offsets)
      for (const n of lengths) {
        const cpuLike = Tensor.zeros([n]);
        const gpuLike = cpuLike.to('cuda');
        try {
          for (const op of ['philox_uint32', 'random_uniform']) {
            using want = ops.runOp(op, [cpuLike], { seed, offset })[0]!;
            using got = ops.runOp(op, [gpuLike], { seed, offset })[0]!;
            assertIdentical(t, values(got), values(want), `${op} seed ${seed} offset ${offset} n ${n}`);
          }
        } finally {
          cpuLike.dispose();
          gpuLike.dispose();
        }
      }
  // A draw at offset + k is elements k.. of the draw at offset, on the device too.
  using likeGpu = Tensor.zeros([2048], { device: 'cuda' });
  using whole = ops.runOp('philox_uint32', [likeGpu], { seed: 99, offset: 6 })[0]!;
  const all = whole.toInt32Array();
  for (const k of [1, 2, 3, 4, 7]) {
    using likeTail = Tensor.zeros([2048 - k], { device: 'cuda' });
    using tail = ops.runOp('philox_uint32', [likeTail], { seed: 99, offset: 6 + k })[0]!;
    assertIdentical(t, tail.toInt32Array(), all.subarray(k), `offset shift ${k}`);
  }
});

gpuTest('cuda: tensors larger than one grid (grid-stride loops)', (t) => {
  const n = 256 * 65536 + 4099;
  const seed = 77;
  using x = Tensor.from(randomArray(rng(seed), n, -6, 6), [n]);
  using xg = x.to('cuda');
  using want = ops.runOp('gelu_forward', [x])[0]!;
  using got = ops.runOp('gelu_forward', [xg])[0]!;
  assertClose(t, got.toFloat32Array(), want.toFloat32Array(), { atol: 2e-6, rtol: 1e-5, what: 'gelu_forward, large', seed });
  using bitsCpu = ops.runOp('philox_uint32', [x], { seed, offset: 3 })[0]!;
  using bitsGpu = ops.runOp('philox_uint32', [xg], { seed, offset: 3 })[0]!;
  assertIdentical(t, bitsGpu.toInt32Array(), bitsCpu.toInt32Array(), 'philox_uint32, large');
});

gpuTest('cuda: async ops on worker threads share the stream safely', async (t) => {
  const seed = 31;
  using x = Tensor.from(randomArray(rng(seed), 4099, -3, 3), [4099], { device: 'cuda' });
  using want = ops.runOp('gelu_forward', [x])[0]!;
  const results = await Promise.all([0, 1, 2, 3].map(() => ops.runOpAsync('gelu_forward', [x])));
  for (const [r] of results) {
    assertIdentical(t, r!.toFloat32Array(), want.toFloat32Array(), 'async gelu_forward');
    r!.dispose();
  }
});

gpuTest('cuda: mixed devices and missing CUDA kernels are typed errors', (t) => {
  using xc = Tensor.from(randomArray(rng(3), 15), [3, 5]);
  using dyg = Tensor.from(randomArray(rng(4), 15), [3, 5], { device: 'cuda' });
  assertDalleError(t, () => ops.runOp('gelu_backward', [xc, dyg]), 'E_DEVICE', 'cpu x with cuda dy');
  // A random op without a CUDA kernel (one `like` tensor, f32) must refuse device inputs with
  // E_UNSUPPORTED rather than run CPU code on device pointers.
  const addon = loadAddon();
  const cpuOnly = addon
    .opNames()
    .find((n) => n.startsWith('random_') && !addon.opInfo(n).cuda && addon.opInfo(n).inputs.join() === 'like');
  if (cpuOnly) {
    using like = Tensor.zeros([5], { device: 'cuda' });
    assertDalleError(t, () => ops.runOp(cpuOnly, [like], { seed: 1, offset: 0 }), 'E_UNSUPPORTED', `${cpuOnly} on cuda`);
  } else t.log('every `like` op has a CUDA kernel; E_UNSUPPORTED not exercised');
});

gpuTest('cuda: transformer ops on CUDA tensors: E_UNSUPPORTED while they have no CUDA kernel', (t) => {
  const addon = loadAddon();
  const dev = (x: Tensor) => {
    const y = x.to('cuda');
    x.dispose();
    return y;
  };
  const f = (shape: number[]) => dev(Tensor.from(randomArray(rng(1), numel(shape)), shape));
  using ids = dev(Tensor.from(new Int32Array(6).fill(1), [2, 3]));
  const cases: [string, Tensor[], Record<string, number>][] = [
    ['qkv_split_forward', [f([2, 3, 12])], { heads: 2 }],
    ['qkv_split_backward', [f([2, 2, 3, 2]), f([2, 2, 3, 2]), f([2, 2, 3, 2])], {}],
    ['heads_merge_forward', [f([2, 2, 3, 2])], {}],
    ['heads_merge_backward', [f([2, 3, 4])], { heads: 2 }],
    ['kv_cache_write', [f([1, 2, 6, 3]), f([1, 2, 2, 3])], { pos: 1 }],
    ['attention_cached_forward', [f([1, 2, 2, 3]), f([1, 2, 6, 3]), f([1, 2, 6, 3])], { pos: 1, mask: 2, text_len: 2, grid: 2 }],
    ['dalle_embed_forward', [ids, f([5, 3]), f([2, 3]), f([2, 3]), f([2, 3])], { pos: 0, text_len: 2, grid: 2 }],
    ['dalle_embed_backward', [ids, f([2, 3, 3])], { vocab: 5, pos: 0, text_len: 2, grid: 2 }],
  ];
  for (const [name, inputs, attrs] of cases) {
    if (addon.opInfo(name).cuda) t.log(`${name} has a CUDA kernel now: covered by test/cuda.test.ts`);
    else assertDalleError(t, () => ops.runOp(name, inputs, attrs), 'E_UNSUPPORTED', `${name} on cuda`);
    for (const x of inputs) if (x !== ids) x.dispose();
  }
});
