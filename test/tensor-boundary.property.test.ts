/**
 * Property tests for the Tensor boundary (issue 24): Tensor.from, Tensor.zeros, new Tensor, and a tensor's own
 * methods (reshape, write, to, the readers) given any JS value in any position give a result or a DalleError, never
 * another exception, a crash or a hang. A result is checked for what it claims: its shape is the one asked for, its
 * size the product, its contents the data given (bit for bit), and dispose() frees exactly its memory. Shapes too
 * large for any machine (more than 2^40 elements, or more bytes than this machine has) are refused at once with
 * E_INVALID_ARGUMENT or E_OUT_OF_MEMORY, and the process's memory stays bounded throughout.
 *
 * Seeds are fixed (FC_SEED overrides them), each failure names the call and its arguments, fast-check's report gives
 * the seed and path that replay it; FC_RUNS scales the runs. The explicit tests at the end are the counterexamples
 * these properties found, kept as regression tests.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

import test from 'ava';
import fc from 'fast-check';

import { DalleError, Tensor, cachedBytes, f32ToBf16, liveBytes, loadAddon, type DType } from '../lib/index.js';
import {
  BASE_SEED,
  TensorScope,
  UserTrapError,
  assertProperty,
  contractBreach,
  describeError,
  hostile,
  hostileValue,
  plain,
  seedFor,
  type Hostile,
  type HostileContext,
} from './helpers/hostile.js';

const RUNS = Number(process.env['FC_RUNS'] ?? 1);
if (!(RUNS > 0)) throw new Error(`FC_RUNS must be a positive number, got ${process.env['FC_RUNS']}`);
const runs = (n: number) => Math.max(1, Math.round(n * RUNS));

/** One call taking longer than this is a hang: nothing here makes more than a few MB. */
const SLOW_CALL_MS = 2000;
/** How much the process may grow over the whole file: a refused huge shape must not have been half allocated. */
const RSS_GROWTH_LIMIT = 1 * 2 ** 30;
const rssAtStart = process.memoryUsage().rss;
/** Growth not counting the blocks the CPU allocator keeps for reuse (up to DALLE_CPU_CACHE_MB, 1 GiB by default). */
const rssGrowth = () => process.memoryUsage().rss - cachedBytes() - rssAtStart;

const MAX_ELEMENTS = 2 ** 40;
/**
 * Sizes between this and the machine's memory are real requests for gigabytes, which the machine may well serve:
 * allocating them proves nothing about hostile input and would cost the test that memory, so they are skipped.
 * Below it everything runs; from the machine's memory up everything must be refused (the kernel would grant some
 * of those, and the zero fill would end the process).
 */
const LEGIT_BYTES_LIMIT = 64 * 2 ** 20;

const DTYPE_BYTES: Record<DType, number> = { f32: 4, bf16: 2, i32: 4 };
const isDType = (v: unknown): v is DType => v === 'f32' || v === 'bf16' || v === 'i32';

// ---- arbitraries --------------------------------------------------------------------------------------------

const listOf = (items: Hostile[]): Hostile =>
  hostile(`[${items.map((h) => h.label).join(', ')}]`, (ctx) => items.map((h) => h.make(ctx)));

const dims: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 5 }).map(plain), weight: 10 },
  {
    arbitrary: fc
      .constantFrom(-1, -0, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 20, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e308)
      .map(plain),
    weight: 3,
  },
  { arbitrary: fc.oneof(fc.constantFrom('2', ' 3', '0x2', ''), fc.constantFrom(2n, 0n)).map(plain), weight: 1 },
  { arbitrary: hostileValue(), weight: 1 },
);

/** Shapes: ordinary, odd in one dim, ranks past the 8 supported, products past 2^40 and 2^53, or not arrays. */
const shapes: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: fc.array(dims, { maxLength: 9 }).map(listOf), weight: 8 },
  { arbitrary: fc.integer({ min: 9, max: 100 }).map((rank) => hostile(`rank ${rank} of 1s`, () => new Array<number>(rank).fill(1))), weight: 1 },
  {
    arbitrary: fc
      .constantFrom<number[]>(
        [2 ** 20, 2 ** 20, 2],
        [2 ** 21, 2 ** 20],
        [2 ** 31, 2 ** 31],
        [2 ** 53, 2 ** 53],
        [2 ** 53 - 1, 2 ** 53 - 1, 0],
        [0, 2 ** 53 - 1, 2 ** 53 - 1],
        [2 ** 40, 2 ** 40, 0],
        [2 ** 40 + 1],
        [2 ** 40],
        [2 ** 39, 2],
        [2 ** 13, 2 ** 13, 2 ** 13, 2 ** 13],
        [65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536],
        [os.totalmem() / 2],
      )
      .map(plain),
    weight: 2,
  },
  { arbitrary: hostileValue(), weight: 3 },
);

/** The option fields' values: mostly valid (so the other field is what is tested), sometimes anything. */
const field = (valid: readonly string[]) =>
  fc.oneof({ arbitrary: fc.constantFrom(...valid).map(plain), weight: 3 }, { arbitrary: hostileValue(), weight: 1 });

/**
 * Options for from/zeros, and what the test knows of each field: 'default' (absent: the documented default
 * applies), a valid value (the result must have it), or 'unknown' (a hostile value: only the contract is checked).
 */
interface OptionsCase {
  hostile: Hostile | undefined;
  dtype: 'default' | 'unknown' | DType;
  device: 'default' | 'unknown' | 'cpu' | 'cuda';
}
const options: fc.Arbitrary<OptionsCase> = fc.oneof(
  { arbitrary: fc.constant<OptionsCase>({ hostile: undefined, dtype: 'default', device: 'default' }), weight: 3 },
  {
    arbitrary: fc.record({ dtype: field(['f32', 'bf16', 'i32']), device: field(['cpu', 'cuda']) }, { requiredKeys: [] }).map((r): OptionsCase => {
      const entries = Object.entries(r) as [string, Hostile][];
      const known = (h: Hostile | undefined) => (h === undefined ? 'default' : h.label.startsWith('"') ? (JSON.parse(h.label) as never) : 'unknown');
      return {
        hostile: hostile(`{ ${entries.map(([k, h]) => `${k}: ${h.label}`).join(', ')} }`, (ctx) =>
          Object.fromEntries(entries.map(([k, h]) => [k, h.make(ctx)])),
        ),
        dtype: known(r.dtype),
        device: known(r.device),
      };
    }),
    weight: 6,
  },
  { arbitrary: hostileValue().map((h): OptionsCase => ({ hostile: h, dtype: 'unknown', device: 'unknown' })), weight: 2 },
);

/** The dtype (device) a result must have, or undefined when a hostile field leaves it open. */
const expectedOf = <T>(known: 'default' | 'unknown' | T, fallback: T): T | undefined =>
  known === 'unknown' ? undefined : known === 'default' ? fallback : known;

/** The length of whatever data is, when it has a plain numeric one; its own getters may throw. */
function lengthOf(data: unknown): number | undefined {
  try {
    const n: unknown = (data as { length?: unknown } | null)?.length;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Shapes made to fit the data (ctx.base), so the data itself is what meets validation. */
const fittingShapes: fc.Arbitrary<Hostile> = fc.constantFrom(
  hostile('[data.length]', (ctx) => [lengthOf(ctx.base) ?? 3]),
  hostile('[1, data.length, 1]', (ctx) => [1, lengthOf(ctx.base) ?? 3, 1]),
  hostile('data.length split in two dims', (ctx) => {
    const n = lengthOf(ctx.base) ?? 6;
    const a = [4, 3, 2].find((d) => n % d === 0 && n > 0) ?? 1;
    return [a, n / a];
  }),
  hostile('[data.length + 1]', (ctx) => [(lengthOf(ctx.base) ?? 3) + 1]),
);

const numbersWithSpecials = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 3.5e38, 1e-45),
);

/** Data for Tensor.from: the three accepted typed arrays with real contents, number arrays, and anything else. */
const datas: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: fc.float32Array({ maxLength: 24 }).map(plain), weight: 3 },
  { arbitrary: fc.int32Array({ maxLength: 24 }).map(plain), weight: 2 },
  { arbitrary: fc.uint16Array({ maxLength: 24 }).map(plain), weight: 2 },
  { arbitrary: fc.array(numbersWithSpecials, { maxLength: 24 }).map(plain), weight: 3 },
  { arbitrary: fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 24 }).map(plain), weight: 2 },
  { arbitrary: fc.array(fc.oneof(numbersWithSpecials.map(plain), hostileValue()), { minLength: 1, maxLength: 6 }).map(listOf), weight: 2 },
  { arbitrary: fc.sparseArray(fc.double(), { maxLength: 24 }).map(plain), weight: 1 },
  { arbitrary: fc.oneof(fc.float64Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), fc.int16Array({ maxLength: 8 })).map(plain), weight: 1 },
  { arbitrary: hostileValue(), weight: 4 },
);

// ---- checks -------------------------------------------------------------------------------------------------

/** The shape as plain integers when it is an array of them (reading a hostile one may throw: then undefined). */
function plainShape(shape: unknown): number[] | undefined {
  try {
    if (!Array.isArray(shape)) return undefined;
    const dims: number[] = [];
    for (let i = 0; i < shape.length; i++) {
      const d: unknown = shape[i];
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) return undefined;
      dims.push(d);
    }
    return dims;
  } catch {
    return undefined;
  }
}

type Verdict = 'refuse' | 'skip' | 'either';
/**
 * What a request for `dims` of `dtype` (undefined: not known) must get: refused (too large for any machine, or for
 * this one), skipped (a real big request), or either a tensor or a DalleError.
 */
function verdictFor(dims: number[] | undefined, dtype?: DType): Verdict {
  if (!dims) return 'either';
  if (dims.length > 8) return 'refuse';
  const nonzero = dims.filter((d) => d > 0).reduce((a, b) => a * b, 1);
  if (nonzero > MAX_ELEMENTS) return 'refuse';
  if (dims.includes(0)) return 'either';
  const least = nonzero * (dtype ? DTYPE_BYTES[dtype] : 2);
  const most = nonzero * (dtype ? DTYPE_BYTES[dtype] : 4);
  if (least >= os.totalmem()) return 'refuse';
  return most > LEGIT_BYTES_LIMIT ? 'skip' : 'either';
}

type Outcome = { result: unknown; ms: number } | { error: unknown; ms: number };
function attempt(fn: () => unknown): Outcome {
  const started = performance.now();
  try {
    const result = fn();
    return { result, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

/** Throws unless the outcome keeps the contract; returns the result when there is one. */
function judge(what: string, outcome: Outcome, verdict: Verdict = 'either', otherwiseValid = true): unknown {
  if (outcome.ms > SLOW_CALL_MS) throw new Error(`${what}: took ${outcome.ms.toFixed(0)} ms`);
  const grown = rssGrowth();
  if (grown > RSS_GROWTH_LIMIT) throw new Error(`${what}: the process grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  if ('error' in outcome) {
    const breach = contractBreach(outcome.error);
    if (breach) throw new Error(`${what}: ${breach}`);
    const e = outcome.error;
    // With another argument wrong too, its refusal (E_DTYPE, E_DEVICE) may come first.
    if (verdict === 'refuse' && otherwiseValid && !(e instanceof DalleError && (e.code === 'E_INVALID_ARGUMENT' || e.code === 'E_OUT_OF_MEMORY')))
      throw new Error(`${what}: a shape too large to allocate must be E_INVALID_ARGUMENT or E_OUT_OF_MEMORY, got ${describeError(e)}`);
    return undefined;
  }
  if (verdict === 'refuse') throw new Error(`${what}: a shape too large to allocate made a tensor`);
  return outcome.result;
}

/**
 * A view's length, 0 when its buffer was detached. Node 20's optimised code was seen to report a detached view's
 * old length; the buffer's byteLength tells the truth.
 */
const viewLength = (a: Float32Array | Int32Array | Uint16Array) => (a.buffer.byteLength === 0 ? 0 : a.length);

function bitsOf(a: Float32Array | Int32Array | Uint16Array): Uint32Array | Int32Array | Uint16Array {
  // No view can be made over a detached buffer, not even an empty one.
  if (viewLength(a) === 0) return new Uint32Array(0);
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}
function sameBits(got: Float32Array | Int32Array | Uint16Array, want: Float32Array | Int32Array | Uint16Array): boolean {
  if (viewLength(got) !== viewLength(want) || got.constructor !== want.constructor) return false;
  const g = bitsOf(got);
  const w = bitsOf(want);
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) return false;
  return true;
}
function contents(t: Tensor): Float32Array | Int32Array | Uint16Array {
  return t.dtype === 'i32' ? t.toInt32Array() : t.dtype === 'bf16' ? t.toUint16Array() : t.toFloat32Array();
}

/**
 * A result must be what it claims: a Tensor of the asked shape, dtype and device, size the product, holding
 * `want` (when given), taking exactly its bytes of native memory until dispose() gives them back.
 */
function checkTensor(
  what: string,
  result: unknown,
  expect: {
    dims: number[];
    dtype?: unknown;
    device?: unknown;
    /** The contents for the dtype the tensor has (zeros when not given). */
    want?: (dtype: DType) => Float32Array | Int32Array | Uint16Array | undefined;
  },
  before: number,
): void {
  if (!Tensor.isTensor(result)) throw new Error(`${what}: returned ${typeof result}, not a Tensor`);
  const t = result;
  const fail = (why: string) => {
    t.dispose();
    throw new Error(`${what}: ${why}`);
  };
  if (t.shape.length !== expect.dims.length || t.shape.some((d, i) => d !== expect.dims[i]))
    fail(`shape [${t.shape.join(', ')}], asked for [${expect.dims.join(', ')}]`);
  const size = expect.dims.reduce((a, b) => a * b, 1);
  if (t.size !== size) fail(`size ${t.size}, the shape's product is ${size}`);
  if (isDType(expect.dtype) && t.dtype !== expect.dtype) fail(`dtype ${t.dtype}, asked for ${expect.dtype}`);
  if (typeof expect.device === 'string' && t.device !== expect.device) fail(`device ${t.device}, asked for ${expect.device}`);
  if (t.device === 'cpu' && liveBytes() - before !== size * DTYPE_BYTES[t.dtype])
    fail(`holds ${liveBytes() - before} bytes of native memory for ${size} ${t.dtype} elements`);
  const got = contents(t);
  const want = expect.want?.(t.dtype) ?? new (got.constructor as new (n: number) => typeof got)(size);
  if (!sameBits(got, want)) fail(`contents differ from the data (${got.constructor.name}[${got.length}] vs ${want.constructor.name}[${want.length}])`);
  t.dispose();
  t.dispose();
  if (!t.disposed) throw new Error(`${what}: disposed is false after dispose()`);
  if (liveBytes() !== before) throw new Error(`${what}: dispose() left ${liveBytes() - before} bytes live`);
  const after = attempt(() => t.shape);
  if (!('error' in after) || !(after.error instanceof DalleError) || after.error.code !== 'E_DISPOSED')
    throw new Error(`${what}: shape after dispose() is not E_DISPOSED`);
}

/** What Tensor.from must have stored for `data` as `dtype`, bit for bit (lib/tensor.ts's documented conversions). */
function expectedContents(data: unknown, dtype: DType): Float32Array | Int32Array | Uint16Array | undefined {
  if (!(data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint16Array || Array.isArray(data))) return undefined;
  // By index, not by iterator: a hostile array's own iterator may yield something else than its elements. An empty
  // typed array may sit on a detached buffer, which cannot even be copied.
  const values: ArrayLike<number> = Array.isArray(data) ? Array.from({ length: data.length }, (_, i) => data[i] as number) : data.buffer.byteLength ? data : [];
  if (dtype === 'f32') return data instanceof Float32Array ? data : new Float32Array(values);
  if (dtype === 'i32') return data instanceof Int32Array ? data : new Int32Array(values);
  return data instanceof Uint16Array ? data : f32ToBf16(new Float32Array(values));
}

function inferredDType(data: unknown): DType {
  return data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'bf16' : 'f32';
}

/** Runs a property over fresh scopes; every tensor a run makes is disposed whatever happened. */
function inScope<Ts extends unknown[]>(body: (ctx: HostileContext, ...args: Ts) => void): (...args: Ts) => Promise<void> {
  return async (...args: Ts) => {
    const scope = new TensorScope();
    try {
      body({ scope, peers: [] }, ...args);
    } finally {
      scope.disposeAll();
    }
  };
}

// ---- properties ---------------------------------------------------------------------------------------------

test.serial(`Tensor.zeros: any shape and options give a tensor of that shape or a DalleError; huge shapes are refused (seed ${BASE_SEED})`, async (t) => {
  const before = liveBytes();
  let calls = 0;
  const property = fc.asyncProperty(
    shapes,
    options,
    inScope((ctx, shapeH: Hostile, opt: OptionsCase) => {
      const shape = shapeH.make(ctx);
      const opts = opt.hostile?.make(ctx);
      const verdict = verdictFor(plainShape(shape), expectedOf<DType>(opt.dtype, 'f32'));
      fc.pre(verdict !== 'skip');
      const what = `Tensor.zeros(${shapeH.label}${opt.hostile ? `, ${opt.hostile.label}` : ''})`;
      const live = liveBytes();
      calls++;
      const cpuRequest = opt.dtype !== 'unknown' && (opt.device === 'default' || opt.device === 'cpu');
      const result = judge(
        what,
        attempt(() => (opt.hostile ? Tensor.zeros(shape as number[], opts as object) : Tensor.zeros(shape as number[]))),
        verdict,
        cpuRequest,
      );
      if (result === undefined) return;
      const dims = plainShape(shape);
      if (!dims) throw new Error(`${what}: made a tensor from a shape that is not an array of non-negative integers`);
      checkTensor(what, result, { dims, dtype: expectedOf<DType>(opt.dtype, 'f32'), device: expectedOf(opt.device, 'cpu') }, live);
    }),
  );
  await assertProperty('Tensor.zeros', property, { seed: seedFor('zeros'), numRuns: runs(8000), interruptAfterTimeLimit: 40_000 });
  t.is(liveBytes(), before, 'no native memory leaked');
  t.log(`${calls} calls`);
});

test.serial(`Tensor.from: any data, shape and options give a tensor holding that data or a DalleError (seed ${BASE_SEED})`, async (t) => {
  const before = liveBytes();
  let calls = 0;
  const property = fc.asyncProperty(
    datas,
    fc.oneof({ arbitrary: fittingShapes, weight: 3 }, { arbitrary: shapes, weight: 1 }),
    options,
    inScope((ctx, dataH: Hostile, shapeH: Hostile, opt: OptionsCase) => {
      const data = dataH.make(ctx);
      const shape = shapeH.make({ ...ctx, base: data });
      const opts = opt.hostile?.make(ctx);
      const what = `Tensor.from(${dataH.label}, ${shapeH.label}${opt.hostile ? `, ${opt.hostile.label}` : ''})`;
      const live = liveBytes();
      calls++;
      const result = judge(what, attempt(() => (opt.hostile ? Tensor.from(data as number[], shape as number[], opts as object) : Tensor.from(data as number[], shape as number[]))));
      if (result === undefined) return;
      const dims = plainShape(shape);
      if (!dims) throw new Error(`${what}: made a tensor from a shape that is not an array of non-negative integers`);
      const dtype = expectedOf(opt.dtype, inferredDType(data));
      checkTensor(what, result, { dims, dtype, device: expectedOf(opt.device, 'cpu'), want: (made) => expectedContents(data, made) }, live);
    }),
  );
  await assertProperty('Tensor.from', property, { seed: seedFor('from'), numRuns: runs(8000), interruptAfterTimeLimit: 40_000 });
  t.is(liveBytes(), before, 'no native memory leaked');
  t.log(`${calls} calls`);
});

const factorsOf24 = fc.constantFrom<number[]>([24], [2, 12], [4, 3, 2], [1, 24, 1], [2, 2, 2, 3], [1, 1, 1, 1, 1, 1, 2, 12], [24, 1, 1]).map(plain);

test.serial(`reshape, write, to and the readers: any argument gives a result or a DalleError (seed ${BASE_SEED})`, async (t) => {
  const before = liveBytes();
  let calls = 0;
  const reshape = fc.asyncProperty(
    fc.constantFrom<DType>('f32', 'bf16', 'i32'),
    fc.oneof(factorsOf24, shapes),
    inScope((ctx, dtype: DType, shapeH: Hostile) => {
      const base = ctx.scope.filled([2, 3, 4], dtype);
      const shape = shapeH.make({ ...ctx, base });
      const verdict = verdictFor(plainShape(shape));
      const what = `${base}.reshape(${shapeH.label})`;
      const live = liveBytes();
      calls++;
      const view = judge(what, attempt(() => base.reshape(shape as number[])), verdict === 'skip' ? 'either' : verdict);
      if (view === undefined) return;
      const dims = plainShape(shape);
      if (!dims || !Tensor.isTensor(view)) throw new Error(`${what}: made a view from a shape that is not an array of non-negative integers`);
      if (liveBytes() !== live) throw new Error(`${what}: a view allocated ${liveBytes() - live} bytes`);
      if (view.size !== 24 || view.shape.some((d, i) => d !== dims[i])) throw new Error(`${what}: view shape [${view.shape.join(', ')}]`);
      if (!sameBits(contents(view), contents(base))) throw new Error(`${what}: the view does not show the tensor's memory`);
      view.dispose();
      if (!sameBits(contents(base), contents(base))) throw new Error(`${what}: disposing the view broke the tensor`);
    }),
  );
  await assertProperty('reshape', reshape, { seed: seedFor('reshape'), numRuns: runs(3000), interruptAfterTimeLimit: 20_000 });

  const typedOfEveryKind = fc
    .tuple(fc.constantFrom(Float32Array, Int32Array, Uint16Array, Float64Array, Uint8Array, Int16Array, Uint32Array, BigInt64Array), fc.constantFrom(0, 5, 6, 12))
    .map(([Ctor, n]) => hostile(`new ${Ctor.name}(${n}) (counting up)`, () => (Ctor === BigInt64Array ? new BigInt64Array(n) : (Ctor as Float32ArrayConstructor).from({ length: n }, (_, i) => i + 1))));
  const write = fc.asyncProperty(
    fc.constantFrom<DType>('f32', 'bf16', 'i32'),
    fc.oneof(typedOfEveryKind, hostileValue()),
    inScope((ctx, dtype: DType, dataH: Hostile) => {
      const target = ctx.scope.filled([2, 3], dtype);
      const data = dataH.make({ ...ctx, peers: [target] });
      const what = `${target}.write(${dataH.label})`;
      calls++;
      const outcome = attempt(() => target.write(data as Float32Array));
      judge(what, outcome);
      if ('error' in outcome) return;
      const want = { f32: Float32Array, bf16: Uint16Array, i32: Int32Array }[dtype];
      if (!(data instanceof want) || data.length !== 6) throw new Error(`${what}: accepted data that is not a ${want.name}(6)`);
      if (!sameBits(contents(target), data)) throw new Error(`${what}: reads back something else`);
    }),
  );
  await assertProperty('write', write, { seed: seedFor('write'), numRuns: runs(3000), interruptAfterTimeLimit: 20_000 });

  const readers = ['shape', 'dtype', 'device', 'size', 'disposed', 'toFloat32Array', 'toInt32Array', 'toUint16Array', 'toString', 'dispose'] as const;
  const to = fc.asyncProperty(
    fc.constantFrom<DType>('f32', 'bf16', 'i32'),
    fc.boolean(),
    fc.oneof(fc.constantFrom('cpu', 'cuda').map(plain), hostileValue()),
    fc.constantFrom(...readers),
    inScope((ctx, dtype: DType, disposed: boolean, deviceH: Hostile, reader) => {
      const source = ctx.scope.filled([2, 3], dtype);
      if (disposed) source.dispose();
      const device = deviceH.make({ ...ctx, peers: [source] });
      const what = `${source}.to(${deviceH.label})`;
      calls += 2;
      const copy = judge(what, attempt(() => source.to(device as 'cpu')));
      if (copy !== undefined) {
        if (!Tensor.isTensor(copy)) throw new Error(`${what}: returned ${typeof copy}`);
        ctx.scope.track(copy);
        if (copy.device !== device || !sameBits(contents(copy), contents(source))) throw new Error(`${what}: the copy differs`);
      }
      judge(`${source}.${reader}`, attempt(() => {
        const member: unknown = source[reader];
        return typeof member === 'function' ? (member as () => unknown).call(source) : member;
      }));
    }),
  );
  await assertProperty('to and the readers', to, { seed: seedFor('to'), numRuns: runs(2000), interruptAfterTimeLimit: 20_000 });
  t.is(liveBytes(), before, 'no native memory leaked');
  t.log(`${calls} calls`);
});

// The finalizer disposes a garbage-collected tensor's handle: a Tensor over anything but a real handle would throw
// there, which Node reports as an uncaught exception that ends the process. gc() is exposed to run finalizers here.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test.serial(`new Tensor(anything) is a DalleError unless it is a real handle, and garbage collection then crashes nothing (seed ${BASE_SEED})`, async (t) => {
  let calls = 0;
  const property = fc.asyncProperty(
    hostileValue(),
    inScope((ctx, h: Hostile) => {
      const donor = ctx.scope.filled([2, 3]);
      const value = h.make({ ...ctx, peers: [donor], base: donor.handle });
      calls++;
      const made = judge(`new Tensor(${h.label})`, attempt(() => new Tensor(value as never)));
      // Leaving the made tensor undisposed is the point: the collector's finalizer gets it.
      if (made !== undefined && !Tensor.isTensor(made)) throw new Error(`new Tensor(${h.label}): made ${typeof made}`);
    }),
  );
  await assertProperty('new Tensor', property, { seed: seedFor('new Tensor'), numRuns: runs(2000), interruptAfterTimeLimit: 20_000 });
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.pass(`${calls} tensors offered to the finalizer; the process survived their collection`);
  t.log(`${calls} calls`);
});

test.serial('the process stayed small through every refused huge shape', (t) => {
  const grown = rssGrowth();
  t.true(grown < RSS_GROWTH_LIMIT, `rss grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

// ---- counterexamples the properties found (regression tests) ------------------------------------------------

const refusedWith = (code: string) => ({ instanceOf: DalleError, code }) as never;

test('Tensor.zeros([2 ** 53 - 1, 2 ** 53 - 1, 0]) is E_INVALID_ARGUMENT (the dims overflowed int64: an abort under UBSan)', (t) => {
  for (const shape of [
    [2 ** 53 - 1, 2 ** 53 - 1, 0],
    [0, 2 ** 53 - 1, 2 ** 53 - 1],
    [2 ** 40, 2 ** 40, 0],
  ])
    t.throws(() => Tensor.zeros(shape), refusedWith('E_INVALID_ARGUMENT'), JSON.stringify(shape));
  using empty = Tensor.zeros([0, 2 ** 40]);
  t.deepEqual(empty.shape, [0, 2 ** 40], 'an empty tensor with a large other dim is still fine');
});

test('Tensor.zeros([Symbol()]) and [Object.create(null)] are DalleErrors (the error message threw a TypeError)', (t) => {
  t.throws(() => Tensor.zeros([Symbol('d')] as never), refusedWith('E_INVALID_ARGUMENT'));
  t.throws(() => Tensor.zeros([Object.create(null)] as never), refusedWith('E_INVALID_ARGUMENT'));
  using x = Tensor.zeros([2, 3]);
  t.throws(() => x.reshape([Symbol('d')] as never), refusedWith('E_INVALID_ARGUMENT'));
});

test('Tensor.from refuses arrays with holes (they became NaN) and refuses new Array(2 ** 32 - 1) at once (it was walked)', (t) => {
  t.throws(() => Tensor.from([1, , 3] as never, [3]), refusedWith('E_INVALID_ARGUMENT'));
  const started = performance.now();
  t.throws(() => Tensor.from(new Array(2 ** 32 - 1) as never, [2 ** 32 - 1]), refusedWith('E_INVALID_ARGUMENT'));
  t.true(performance.now() - started < 100, 'refused without walking the holes');
});

test('write(null) and write(Object.create(null)) are E_DTYPE (reading data.constructor.name threw a TypeError)', (t) => {
  using x = Tensor.zeros([2, 3]);
  t.throws(() => x.write(null as never), refusedWith('E_DTYPE'));
  t.throws(() => x.write(Object.create(null) as never), refusedWith('E_DTYPE'));
});

test('new Tensor over a non-handle is E_INVALID_ARGUMENT (its finalizer threw later, ending the process)', (t) => {
  using real = Tensor.zeros([2]);
  const TensorHandle = Object.getPrototypeOf(real.handle).constructor as { prototype: object };
  for (const [what, value] of [
    ['{}', {}],
    ['null', null],
    ['Object.create(TensorHandle.prototype)', Object.create(TensorHandle.prototype)],
    ['a Proxy of a handle', new Proxy(real.handle, {})],
  ] as const)
    t.throws(() => new Tensor(value as never), refusedWith('E_INVALID_ARGUMENT'), what);
  t.false(loadAddon().isTensorHandle(new Proxy(real.handle, {})));
  t.true(loadAddon().isTensorHandle(real.handle));
});

test("the caller's own trap inside the data passes through unchanged (the one exception the contract allows)", (t) => {
  const data = Object.defineProperty([1, 2, 3], 1, { get: () => { throw new UserTrapError('getter'); } });
  t.throws(() => Tensor.from(data, [3]), { instanceOf: UserTrapError });
});
