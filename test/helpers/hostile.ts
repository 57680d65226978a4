/**
 * Hostile JS values for the property tests at the library's boundary (test/op-boundary.property.test.ts,
 * test/tensor-boundary.property.test.ts): fast-check arbitraries of every kind of value a caller could pass where a
 * tensor, a shape, a list, an options object or a number is expected, and the rule every call must keep: it returns,
 * or it throws a DalleError with a string code.
 *
 * Values that need tensors (a disposed one, one of the wrong dtype, the same tensor twice) are recipes, made fresh in
 * each run inside a TensorScope that disposes them, so runs neither share state nor leak native memory. Every value
 * is wrapped in a Hostile whose label is what fast-check prints: printing the raw value would run the very traps
 * (throwing Proxies, getters) the value is made of.
 */
import fc from 'fast-check';

import { DalleError, Tensor, buildInfo, type DType } from '../../lib/index.js';

/**
 * What the hostile values' own traps, getters and conversions throw. Such an exception is the caller's own, so it
 * may pass through the library unchanged; any other non-DalleError is a library bug.
 */
export class UserTrapError extends Error {
  constructor(where: string) {
    super(`hostile value's own ${where} threw`);
    this.name = 'UserTrapError';
  }
}

/** Owns the tensors a run creates; disposeAll() frees them whatever the call did. */
export class TensorScope {
  readonly #tensors: Tensor[] = [];

  track<T extends Tensor>(t: T): T {
    this.#tensors.push(t);
    return t;
  }
  zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    return this.track(Tensor.zeros(shape, { dtype }));
  }
  /** A small deterministic pattern (not all zeros, so kernels do real arithmetic), or the given values. */
  filled(shape: readonly number[], dtype: DType = 'f32', values?: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = values ?? Array.from({ length: n }, (_, i) => (dtype === 'i32' ? 0 : (((i * 7) % 11) - 5) / 10));
    if (dtype === 'i32') return this.track(Tensor.from(Int32Array.from(data), shape));
    return this.track(Tensor.from(Float32Array.from(data), shape, { dtype }));
  }
  disposeAll(): void {
    for (const t of this.#tensors) t.dispose();
    this.#tensors.length = 0;
  }
}

/** What a recipe may build on: the scope to create tensors in, the call's valid tensors, the valid value it replaces. */
export interface HostileContext {
  scope: TensorScope;
  peers: readonly Tensor[];
  base?: unknown;
}

export interface Hostile {
  readonly label: string;
  make(ctx: HostileContext): unknown;
}

export function hostile(label: string, make: (ctx: HostileContext) => unknown): Hostile {
  return { label, make, [fc.toStringMethod]: () => label } as Hostile;
}

/** A plain value (fast-check can print it safely because it holds no traps). */
export function plain(value: unknown): Hostile {
  return hostile(fc.stringify(value), () => value);
}

const trap = (where: string) => (): never => {
  throw new UserTrapError(where);
};

const PROXY_TRAPS = [
  'get',
  'set',
  'has',
  'ownKeys',
  'getOwnPropertyDescriptor',
  'defineProperty',
  'deleteProperty',
  'getPrototypeOf',
  'setPrototypeOf',
  'isExtensible',
  'preventExtensions',
  'apply',
  'construct',
] as const;

/** A handler whose every trap throws: any look at the object is the caller's exception. */
function throwingHandler<T extends object>(): ProxyHandler<T> {
  const handler: ProxyHandler<T> = {};
  for (const name of PROXY_TRAPS) (handler as Record<string, unknown>)[name] = trap(`Proxy ${name} trap`);
  return handler;
}

/** Keys the library might read off an argument; each becomes a throwing getter on the trap objects. */
const PROBED_KEYS = [
  '0',
  '1',
  'length',
  'shape',
  'dtype',
  'device',
  'handle',
  'size',
  'disposed',
  'then',
  'constructor',
  'mask',
  'text_len',
  'grid',
  'scale',
  'heads',
  'vocab',
  'pos',
  'seed',
  'offset',
  'tau',
  'eps',
];

function withThrowingGetters<T extends object>(target: T, keys: readonly string[] = PROBED_KEYS): T {
  for (const k of keys) Object.defineProperty(target, k, { get: trap(`getter '${k}'`), enumerable: true, configurable: true });
  return target;
}

function throwingConversions(): object {
  return {
    valueOf: trap('valueOf'),
    toString: trap('toString'),
    [Symbol.toPrimitive]: trap('Symbol.toPrimitive'),
    [Symbol.iterator]: trap('Symbol.iterator'),
  };
}

/** A typed array over a buffer that has been transferred away (length 0, buffer detached). */
function detachedFloat32Array(): Float32Array {
  const buf = new ArrayBuffer(16);
  const view = new Float32Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return view;
}

// Built once: these are expensive, and being read-only to the library they can be shared across runs.
const expensive = new Map<string, unknown>();
function once(key: string, build: () => unknown): unknown {
  if (!expensive.has(key)) expensive.set(key, build());
  return expensive.get(key);
}

/**
 * Objects whose mere enumeration costs the library in proportion to their size: the probes for work that is
 * quadratic, or out of proportion to what the caller paid, when such a value lands in an attributes position.
 */
const bulky: Hostile[] = [
  hostile('an object with 20000 numeric keys', () =>
    once('keys', () => Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, i]))),
  ),
  hostile('new Float32Array(1e6)', () => once('f32', () => new Float32Array(1e6))),
  hostile('new Array(1e5).fill(1)', () => once('array', () => new Array(1e5).fill(1))),
  hostile("new String('x'.repeat(1e6))", () => once('string', () => new String('x'.repeat(1e6)))),
  hostile('a Proxy whose ownKeys trap lists 1e5 keys', () =>
    once('proxyKeys', () => {
      const keys = Array.from({ length: 1e5 }, (_, i) => `p${i}`);
      return new Proxy(
        {},
        {
          ownKeys: () => keys,
          getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true, writable: true }),
          get: () => 1,
        },
      );
    }),
  ),
];

const SPECIAL_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  1.5,
  2,
  3,
  NaN,
  Infinity,
  -Infinity,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 40,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  2 ** 63,
  2 ** 64,
  1e308,
  -1e308,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  1e-300,
  3.4e38,
  3.5e38,
];

const NUMERIC_STRINGS = ['', ' ', '0', '1', '-1', '2', '1e3', '0x10', ' 2 ', 'NaN', 'Infinity', '1.5', '2147483648', '3n'];
const NAME_STRINGS = ['f32', 'bf16', 'i32', 'f64', 'F32', ' f32', 'f32\0', 'cpu', 'cuda', 'gpu', 'cuda:1', 'CPU', 'gelu_forward', '__proto__', 'constructor'];

const TYPED_ARRAY_CTORS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

const typedArrays: fc.Arbitrary<Hostile> = fc
  .tuple(fc.constantFrom(...TYPED_ARRAY_CTORS), fc.oneof(fc.constantFrom(0, 1, 6), fc.nat(24)))
  .map(([Ctor, n]) => hostile(`new ${Ctor.name}(${n})`, () => new Ctor(n)));

// ES2024's resizable buffers, which Node 20 has and this project's TypeScript lib (ES2022) does not describe.
const ResizableArrayBuffer = ArrayBuffer as unknown as new (n: number, options: { maxByteLength: number }) => ArrayBuffer;

const buffers: Hostile[] = [
  hostile('new ArrayBuffer(24)', () => new ArrayBuffer(24)),
  hostile('new SharedArrayBuffer(24)', () => new SharedArrayBuffer(24)),
  hostile('new DataView(new ArrayBuffer(24))', () => new DataView(new ArrayBuffer(24))),
  hostile('Buffer.alloc(24)', () => Buffer.alloc(24)),
  hostile('a Float32Array over a detached buffer', detachedFloat32Array),
  hostile('a Float32Array view at byte offset 4', () => new Float32Array(new ArrayBuffer(28), 4, 6)),
  hostile('a length-tracking Float32Array over a resizable buffer', () => new Float32Array(new ResizableArrayBuffer(24, { maxByteLength: 64 }))),
];

const functions: Hostile[] = [
  hostile('() => 1', () => () => 1),
  hostile('class {}', () => class {}),
  hostile('a function that throws', () => trap('function call')),
  hostile('async () => {}', () => async () => {}),
  hostile('function* () {}', () => function* () {}),
  hostile('Tensor (the class)', () => Tensor),
  hostile('Tensor.zeros', () => Tensor.zeros),
  hostile('Object.assign(() => 1, { length: 6 }-like props)', () => Object.assign(() => 1, { shape: [2, 3], dtype: 'f32' })),
];

const trapObjects: Hostile[] = [
  hostile('a Proxy whose every trap throws', () => new Proxy({}, throwingHandler())),
  hostile('a Proxy over an array whose every trap throws', () => new Proxy([1, 2], throwingHandler())),
  hostile('a Proxy over a function whose every trap throws', () => new Proxy(() => 1, throwingHandler())),
  hostile('an object whose probed keys are throwing getters', () => withThrowingGetters({})),
  hostile('an array whose probed keys are throwing getters', () => withThrowingGetters([] as unknown[], ['0', '1', 'shape', 'dtype', 'handle', 'constructor'])),
  hostile('an object whose valueOf, toString, toPrimitive and iterator throw', throwingConversions),
  hostile('an array whose iterator throws', () => Object.assign([2, 3], { [Symbol.iterator]: trap('Symbol.iterator') })),
  hostile('a thenable whose then throws', () => ({ then: trap('then') })),
];

const oddObjects: Hostile[] = [
  hostile('Object.create(null)', () => Object.create(null)),
  hostile('Object.create(null) with keys', () => Object.assign(Object.create(null) as object, { a: 1, length: 2, 0: 3 })),
  hostile('Object.freeze({})', () => Object.freeze({})),
  hostile('Object.freeze([2, 3])', () => Object.freeze([2, 3])),
  hostile('Object.seal({ scale: 1 })', () => Object.seal({ scale: 1 })),
  hostile('{ length: 2 ** 32 - 1 }', () => ({ length: 2 ** 32 - 1 })),
  hostile('{ length: 2 ** 53 }', () => ({ length: 2 ** 53 })),
  hostile('{ length: -1 }', () => ({ length: -1 })),
  hostile('{ length: NaN, 0: 1 }', () => ({ length: NaN, 0: 1 })),
  hostile('new Array(2 ** 32 - 1)', () => new Array(2 ** 32 - 1)),
  hostile('new Array(6)', () => new Array(6)),
  hostile('[1, , 3] (a hole)', () => [1, , 3]),
  hostile('an array of 2 ** 32 - 1 holes with a number at the end', () => {
    const a: number[] = [];
    a[2 ** 32 - 2] = 1;
    return a;
  }),
  hostile('an array subclass whose map returns a number', () => {
    class Odd extends Array {
      override map(): never {
        return 5 as never;
      }
    }
    return Odd.from([1]);
  }),
  hostile('an array whose species builds plain objects', () => {
    class Species extends Array {
      static override get [Symbol.species](): ArrayConstructor {
        return function () {
          return {};
        } as unknown as ArrayConstructor;
      }
    }
    return Species.of(1, 2);
  }),
  hostile('new Date(NaN)', () => new Date(NaN)),
  hostile('/x/g', () => /x/g),
  hostile('new Error("x")', () => new Error('x')),
  hostile('Promise.resolve(1)', () => Promise.resolve(1)),
  hostile('new Map([[0, 1]])', () => new Map([[0, 1]])),
  hostile('new Set([1])', () => new Set([1])),
  hostile('new WeakMap()', () => new WeakMap()),
  hostile('new Number(2)', () => new Number(2)),
  hostile('new String("f32")', () => new String('f32')),
  hostile('new Boolean(false)', () => new Boolean(false)),
  hostile('Symbol.iterator', () => Symbol.iterator),
  hostile('globalThis', () => globalThis),
  hostile('process.env', () => process.env),
];

const cudaUsable = (() => {
  try {
    return buildInfo().cudaDevices > 0;
  } catch {
    return false;
  }
})();

const DTYPES: readonly DType[] = ['f32', 'bf16', 'i32'];
const smallShape = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
// A brand check, not instanceof: that would run a hostile Proxy's getPrototypeOf trap.
const isTensor = (v: unknown): v is Tensor => Tensor.isTensor(v);

/** The tensor a recipe builds on: the valid value it replaces when that is a tensor, else the call's first tensor. */
function pick(ctx: HostileContext, k: number): Tensor {
  if (isTensor(ctx.base) && !ctx.base.disposed) return ctx.base;
  const live = ctx.peers.filter((t) => !t.disposed);
  return live[k % Math.max(1, live.length)] ?? ctx.scope.zeros([2, 3]);
}

/** Tensors that look right and are wrong: disposed, the wrong dtype, shape or rank, empty, aliased, impostors. */
const tensors: fc.Arbitrary<Hostile> = fc.oneof(
  fc.tuple(smallShape, fc.constantFrom(...DTYPES)).map(([shape, dtype]) =>
    hostile(`a ${dtype} tensor ${JSON.stringify(shape)}`, (ctx) => ctx.scope.filled(shape, dtype)),
  ),
  fc.constantFrom(...DTYPES).map((dtype) =>
    hostile(`the valid tensor's shape as ${dtype}`, (ctx) => ctx.scope.filled(pick(ctx, 0).shape, dtype)),
  ),
  fc.constantFrom('dim + 1', 'dim - 1', 'rank + 1', 'rank - 1', 'flattened', 'reversed').map((how) =>
    hostile(`the valid tensor's shape, ${how}`, (ctx) => {
      const base = pick(ctx, 0);
      const s = [...base.shape];
      if (how === 'dim + 1' && s.length) s[s.length - 1]! += 1;
      else if (how === 'dim - 1' && s.length && s[s.length - 1]! > 1) s[s.length - 1]! -= 1;
      else if (how === 'rank + 1') s.unshift(1);
      else if (how === 'rank - 1' && s.length > 1) s.splice(0, 2, s[0]! * s[1]!);
      else if (how === 'flattened') s.splice(0, s.length, numel(s));
      else s.reverse();
      return ctx.scope.filled(s, base.dtype);
    }),
  ),
  fc.nat(7).map((k) =>
    hostile(`valid tensor #${k} of the call (the same tensor in two positions)`, (ctx) => pick({ ...ctx, base: undefined }, k)),
  ),
  fc.nat(7).map((k) =>
    hostile(`a reshaped view of valid tensor #${k} (aliasing its memory)`, (ctx) => {
      const t = pick({ ...ctx, base: undefined }, k);
      return ctx.scope.track(t.reshape([t.size]));
    }),
  ),
  fc.constant(
    hostile('a disposed tensor of the valid shape', (ctx) => {
      const base = pick(ctx, 0);
      const t = ctx.scope.zeros(base.shape, base.dtype);
      t.dispose();
      return t;
    }),
  ),
  fc.constant(
    hostile('a second Tensor over a disposed tensor handle', (ctx) => {
      const base = pick(ctx, 0);
      const t = ctx.scope.zeros(base.shape, base.dtype);
      const twin = ctx.scope.track(new Tensor(t.handle));
      t.dispose();
      return twin;
    }),
  ),
  fc
    .constantFrom<number[]>([0], [2, 0], [0, 3], [1, 1, 1, 1, 1, 1, 1, 0], [0, 2 ** 40], [2 ** 40, 0], [0, 2 ** 20, 2 ** 20])
    .chain((shape) =>
      fc.constantFrom(...DTYPES).map((dtype) => hostile(`an empty ${dtype} tensor ${JSON.stringify(shape)}`, (ctx) => ctx.scope.zeros(shape, dtype))),
    ),
  fc.constantFrom<number[]>([], [1], [1, 1, 1, 1, 1, 1, 1, 1], [2, 1, 2, 1, 2, 1, 2, 1], [1, 1024], [1024], [32, 32]).map((shape) =>
    hostile(`an f32 tensor ${JSON.stringify(shape)}`, (ctx) => ctx.scope.filled(shape)),
  ),
  fc.constant(hostile('the raw native handle of a valid tensor', (ctx) => pick(ctx, 0).handle)),
  fc.constant(hostile('Object.create(Tensor.prototype)', () => Object.create(Tensor.prototype) as unknown)),
  fc.constant(hostile('a transparent Proxy of a valid tensor', (ctx) => new Proxy(pick(ctx, 0), {}))),
  fc.constant(hostile('a Proxy of a valid tensor whose every trap throws', (ctx) => new Proxy(pick(ctx, 0), throwingHandler()))),
  fc.constant(
    hostile('an instance of a Tensor subclass', (ctx) => {
      class SubTensor extends Tensor {}
      const base = pick(ctx, 0);
      const donor = ctx.scope.zeros(base.shape, base.dtype);
      return ctx.scope.track(new SubTensor(donor.handle));
    }),
  ),
  fc.constant(
    hostile('a plain object that copies a tensor (shape, dtype, device, handle)', (ctx) => {
      const base = pick(ctx, 0);
      return { shape: base.shape, dtype: base.dtype, device: base.device, handle: base.handle, size: base.size };
    }),
  ),
  fc.constant(hostile('a frozen valid tensor', (ctx) => Object.freeze(pick(ctx, 0)))),
  ...(cudaUsable
    ? [fc.constant(hostile('the valid tensor, on cuda', (ctx) => ctx.scope.track(pick(ctx, 0).to('cuda'))))]
    : []),
);

/** A copy of the valid list (by index: the base may be hostile itself, its iterator or getters throwing). */
function baseList(ctx: HostileContext): unknown[] {
  try {
    if (Array.isArray(ctx.base)) return Array.from({ length: Math.min(ctx.base.length, 16) }, (_, i) => (ctx.base as unknown[])[i]);
  } catch {
    // fall back to the call's tensors
  }
  return [...ctx.peers];
}

/** Lists that are almost the valid one (for the inputs and out positions): one short, one long, lying, holed. */
const lists: Hostile[] = [
  hostile('the valid list, one short', (ctx) => baseList(ctx).slice(0, -1)),
  hostile('the valid list and one more tensor', (ctx) => [...baseList(ctx), ctx.scope.zeros([2, 3])]),
  hostile('the valid list, reversed', (ctx) => baseList(ctx).reverse()),
  hostile('the valid list with a hole after it', (ctx) => {
    const l = baseList(ctx);
    l.length += 1;
    return l;
  }),
  hostile('the valid list, frozen', (ctx) => Object.freeze(baseList(ctx))),
  hostile('the valid list with an iterator that yields a number', (ctx) =>
    Object.assign(baseList(ctx), {
      *[Symbol.iterator]() {
        yield 5;
      },
    }),
  ),
  hostile('the valid list in a transparent Proxy', (ctx) => new Proxy(baseList(ctx), {})),
  hostile('the valid list in a Proxy whose get trap throws', (ctx) => new Proxy(baseList(ctx), { get: trap('Proxy get trap') })),
  hostile('the valid list with a throwing getter at index 0', (ctx) =>
    Object.defineProperty(baseList(ctx), 0, { get: trap("getter '0'"), enumerable: true }),
  ),
  hostile('the valid list with each tensor twice', (ctx) => baseList(ctx).flatMap((x) => [x, x])),
  hostile('the valid list of raw native handles', (ctx) => baseList(ctx).map((x) => (isTensor(x) && !x.disposed ? x.handle : x))),
];

const leafValues: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: fc.constantFrom(...lists), weight: 2 },
  { arbitrary: fc.constantFrom(...SPECIAL_NUMBERS).map(plain), weight: 4 },
  { arbitrary: fc.oneof(fc.double(), fc.integer(), fc.bigInt(), fc.maxSafeInteger()).map(plain), weight: 2 },
  { arbitrary: fc.constantFrom(null, undefined, true, false).map(plain), weight: 2 },
  { arbitrary: fc.oneof(fc.string(), fc.constantFrom(...NUMERIC_STRINGS, ...NAME_STRINGS)).map(plain), weight: 2 },
  { arbitrary: fc.string({ maxLength: 4 }).map((d) => hostile(`Symbol(${JSON.stringify(d)})`, () => Symbol(d))), weight: 1 },
  { arbitrary: fc.constantFrom(-1n, 0n, 2n, 2n ** 64n).map(plain), weight: 1 },
  { arbitrary: fc.constantFrom(...functions), weight: 1 },
  { arbitrary: fc.constantFrom(...trapObjects), weight: 3 },
  { arbitrary: fc.constantFrom(...oddObjects), weight: 3 },
  { arbitrary: fc.constantFrom(...buffers), weight: 1 },
  { arbitrary: typedArrays, weight: 2 },
  { arbitrary: tensors, weight: 6 },
  {
    arbitrary: fc
      .anything({
        maxDepth: 2,
        maxKeys: 4,
        withBigInt: true,
        withBoxedValues: true,
        withMap: true,
        withSet: true,
        withNullPrototype: true,
        withTypedArray: true,
        withSparseArray: true,
        withDate: true,
        withObjectString: true,
      })
      .map(plain),
    weight: 4,
  },
);

/**
 * Any hostile value: a leaf, or a small array or object of them (a list holding one impostor among tensors, an
 * options object with one poisoned field). `bulky` adds the expensive-to-enumerate objects.
 */
export function hostileValue(options: { bulky?: boolean } = {}): fc.Arbitrary<Hostile> {
  const nested = fc.letrec<{ value: Hostile }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { arbitrary: leafValues, weight: 8 },
      {
        arbitrary: fc.array(tie('value'), { maxLength: 3 }).map((items) =>
          hostile(`[${items.map((h) => h.label).join(', ')}]`, (ctx) => items.map((h) => h.make(ctx))),
        ),
        weight: 1,
      },
      {
        arbitrary: fc
          .array(fc.tuple(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(...PROBED_KEYS)), tie('value')), { maxLength: 3 })
          .map((entries) =>
            hostile(`{ ${entries.map(([k, h]) => `${JSON.stringify(k)}: ${h.label}`).join(', ')} }`, (ctx) => {
              const o: Record<string, unknown> = {};
              for (const [k, h] of entries) Object.defineProperty(o, k, { value: h.make(ctx), enumerable: true, configurable: true, writable: true });
              return o;
            }),
          ),
        weight: 1,
      },
    ),
  }));
  return options.bulky ? fc.oneof({ arbitrary: nested.value, weight: 20 }, { arbitrary: fc.constantFrom(...bulky), weight: 1 }) : nested.value;
}

/** Why an exception breaks the boundary's contract, or undefined when it keeps it. */
export function contractBreach(err: unknown): string | undefined {
  if (err instanceof DalleError) return typeof err.code === 'string' && err.code.length > 0 ? undefined : `a DalleError without a code: ${describeError(err)}`;
  if (err instanceof UserTrapError) return undefined;
  return `threw ${describeError(err)}, not a DalleError`;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try {
    return `a non-Error ${typeof err}: ${String(err)}`;
  } catch {
    return `a non-Error ${typeof err}`;
  }
}

/** The fast-check seed: FC_SEED overrides the fixed default, so CI runs are reproducible and a failure can be rerun. */
export const BASE_SEED = (() => {
  const env = process.env['FC_SEED'];
  const n = env === undefined ? 24_2026 : Number(env);
  if (!Number.isInteger(n)) throw new Error(`FC_SEED must be an integer, got ${env}`);
  return n | 0;
})();

/** A per-property seed from the base seed and a name (FNV-1a), so each property reproduces on its own. */
export function seedFor(name: string): number {
  let h = 0x811c9dc5 ^ BASE_SEED;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** Runs fc.assert and rethrows a failure with `what` in front of fast-check's report (seed, path, counterexample). */
export async function assertProperty<Ts extends [unknown, ...unknown[]]>(
  what: string,
  property: fc.IAsyncProperty<Ts>,
  params: fc.Parameters<Ts>,
): Promise<void> {
  try {
    await fc.assert(property, params);
  } catch (err) {
    // fast-check keeps the property's own error as the cause; it names the op, position and value.
    const cause = err instanceof Error && err.cause !== undefined ? `\nGot: ${describeError(err.cause)}` : '';
    throw new Error(`${what} (FC_SEED=${BASE_SEED}): ${err instanceof Error ? err.message : String(err)}${cause}`);
  }
}
