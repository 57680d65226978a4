/**
 * Property tests for the op boundary (issue 24, "hostile input never takes the process down"): for every op the
 * registry lists, any JS value in any argument position of runOp / runOpAsync (the op name, the inputs list, each
 * input, the out list, each out, the attributes object, each attribute the op reads, unknown attributes) gives a
 * result or a DalleError, never another exception, a crash or a hang. Each property replaces one position of a
 * valid call with a hostile value (test/helpers/hostile.ts), so the value meets the op's real validation rather
 * than an earlier refusal of some other argument; a last property poisons several positions at once.
 *
 * Seeds are fixed (FC_SEED overrides them); every failure names the op, the position and the value, and fast-check's
 * report gives the seed and path that replay it. FC_RUNS scales the runs per property.
 */
import test from 'ava';
import fc from 'fast-check';

import { DalleError, Tensor, liveBytes, loadAddon, type DType } from '../lib/index.js';
import { runOp, runOpAsync } from '../lib/ops/run.js';
import {
  BASE_SEED,
  TensorScope,
  assertProperty,
  contractBreach,
  describeError,
  hostileValue,
  seedFor,
  type Hostile,
  type HostileContext,
} from './helpers/hostile.js';

interface InputSpec {
  shape: number[];
  dtype?: DType;
  values?: number[];
}

/** A call that succeeds: the base every property perturbs one position of. */
interface ValidCall {
  inputs: InputSpec[];
  attrs?: Record<string, number>;
  /**
   * Attributes that size an output (embedding_backward's vocab gives a [vocab, C] gradient). An in-range value of
   * a billion there is a real request for gigabytes, not a malformed value; what the allocator does with a request
   * too large for the machine is tested in test/tensor-boundary.property.test.ts, so the properties skip such values.
   */
  sizing?: string[];
}

const f = (...shape: number[]): InputSpec => ({ shape });
const i32 = (shape: number[], values?: number[]): InputSpec => (values ? { shape, dtype: 'i32', values } : { shape, dtype: 'i32' });
const pattern = { mask: 1, text_len: 2, grid: 2, scale: 0.5 };
const qkv = [f(1, 2, 6, 4), f(1, 2, 6, 4), f(1, 2, 6, 4)];
const ones = (n: number) => new Array<number>(n).fill(1);
/** Pixels in (0, 1), as the logit-Laplace loss requires. */
const unit = (...shape: number[]): InputSpec => ({ shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i + 1) / 8) });

/**
 * One valid call per registered op. An op added to the registry without an entry here fails the first test, so the
 * properties cover every op the addon has.
 */
const validCalls: Record<string, ValidCall> = {
  gelu_forward: { inputs: [f(2, 3)] },
  gelu_backward: { inputs: [f(2, 3), f(2, 3)] },
  relu_forward: { inputs: [f(2, 3)] },
  relu_backward: { inputs: [f(2, 3), f(2, 3)] },
  softmax_forward: { inputs: [f(2, 3)] },
  softmax_backward: { inputs: [f(2, 3), f(2, 3)] },
  cast_f32_to_bf16: { inputs: [f(2, 3)] },
  cast_bf16_to_f32: { inputs: [{ shape: [2, 3], dtype: 'bf16' }] },
  bias_add_forward: { inputs: [f(2, 3), f(3)] },
  bias_add_backward: { inputs: [f(2, 3)] },
  residual_forward: { inputs: [f(2, 3), f(2, 3)], attrs: { scale: 0.5 } },
  residual_backward: { inputs: [f(2, 3)], attrs: { scale: 0.5 } },
  matmul_forward: { inputs: [f(2, 3), f(3, 4)], attrs: { trans_a: 0, trans_b: 0 } },
  matmul_backward: { inputs: [f(2, 3), f(3, 4), f(2, 4)], attrs: { trans_a: 0, trans_b: 0 } },
  layernorm_forward: { inputs: [f(2, 3), f(3), f(3)], attrs: { eps: 1e-5 } },
  layernorm_backward: { inputs: [f(2, 3), f(3), f(2), f(2), f(2, 3)] },
  embedding_forward: { inputs: [i32([2, 3]), f(5, 4)] },
  embedding_backward: { inputs: [i32([2, 3]), f(2, 3, 4)], attrs: { vocab: 5 }, sizing: ['vocab'] },
  cross_entropy_forward: { inputs: [f(3, 5), i32([3], [0, 1, 2]), f(3), i32([3, 2], [0, 5, 0, 5, 1, 4])] },
  cross_entropy_backward: { inputs: [f(3, 5), i32([3], [0, 1, 2]), f(3), i32([3, 2], [0, 5, 0, 5, 1, 4]), f(1)] },
  conv2d_forward: { inputs: [f(1, 4, 4, 2), f(3, 3, 2, 3), f(3)] },
  conv2d_backward: { inputs: [f(1, 4, 4, 2), f(3, 3, 2, 3), f(1, 4, 4, 3)] },
  conv2d_backward_weights: { inputs: [f(1, 4, 4, 2), f(3, 3, 2, 3), f(1, 4, 4, 3)] },
  maxpool2x2_forward: { inputs: [f(1, 4, 4, 2)] },
  maxpool2x2_backward: { inputs: [f(1, 4, 4, 2), f(1, 2, 2, 2)] },
  upsample2x_forward: { inputs: [f(1, 2, 2, 2)] },
  upsample2x_backward: { inputs: [f(1, 4, 4, 2)] },
  attention_forward: { inputs: qkv, attrs: pattern },
  attention_backward: { inputs: [...qkv, f(1, 2, 6, 4), f(1, 2, 6), f(1, 2, 6, 4)], attrs: pattern },
  attention_dense_forward: { inputs: [...qkv, i32([6, 6], ones(36))], attrs: { scale: 0.5 } },
  attention_dense_backward: {
    inputs: [...qkv, i32([6, 6], ones(36)), f(1, 2, 6, 4), f(1, 2, 6), f(1, 2, 6, 4)],
    attrs: { scale: 0.5 },
  },
  attention_mask: { inputs: [i32([6])], attrs: { mask: 3, text_len: 2, grid: 2, raster: 1 } },
  attention_cached_forward: {
    inputs: [f(1, 2, 2, 3), f(1, 2, 6, 3), f(1, 2, 6, 3)],
    attrs: { pos: 1, mask: 2, text_len: 2, grid: 2, scale: 0.5 },
  },
  kv_cache_write: { inputs: [f(1, 2, 6, 3), f(1, 2, 2, 3)], attrs: { pos: 1 } },
  image_transpose_forward: { inputs: [f(1, 6, 3)], attrs: { text_len: 2, grid: 2 } },
  image_transpose_backward: { inputs: [f(1, 6, 3)], attrs: { text_len: 2, grid: 2 } },
  qkv_split_forward: { inputs: [f(2, 3, 12)], attrs: { heads: 2 } },
  qkv_split_backward: { inputs: [f(2, 2, 3, 2), f(2, 2, 3, 2), f(2, 2, 3, 2)] },
  heads_merge_forward: { inputs: [f(2, 2, 3, 2)] },
  heads_merge_backward: { inputs: [f(2, 3, 4)], attrs: { heads: 2 } },
  dalle_embed_forward: { inputs: [i32([2, 3]), f(5, 3), f(2, 3), f(2, 3), f(2, 3)], attrs: { pos: 0, text_len: 2, grid: 2 } },
  dalle_embed_backward: {
    inputs: [i32([2, 3]), f(2, 3, 3)],
    attrs: { vocab: 5, pos: 0, text_len: 2, grid: 2 },
    sizing: ['vocab', 'text_len'],
  },
  gumbel_softmax_forward: { inputs: [f(2, 3)], attrs: { tau: 1, seed: 1, offset: 0 } },
  gumbel_softmax_backward: { inputs: [f(2, 3), f(2, 3)], attrs: { tau: 1 } },
  kl_uniform_forward: { inputs: [f(2, 3)] },
  kl_uniform_backward: { inputs: [f(2, 3), f(1)] },
  logit_laplace_forward: { inputs: [unit(2, 3), f(2, 6)] },
  logit_laplace_backward: { inputs: [unit(2, 3), f(2, 6), f(1)] },
  sigmoid_mse_forward: { inputs: [unit(2, 3), f(2, 6)] },
  sigmoid_mse_backward: { inputs: [unit(2, 3), f(2, 6), f(1)] },
  adamw_step: { inputs: [f(4), f(4), f(4), f(4)], attrs: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 1 } },
  grad_norm: { inputs: [f(4)] },
  clip_grad_norm: { inputs: [f(4)], attrs: { max_norm: 1 } },
  ema_update: { inputs: [f(4), f(4)], attrs: { decay: 0.9 } },
  philox_uint32: { inputs: [f(5)], attrs: { seed: 1, offset: 0 } },
  random_uniform: { inputs: [f(5)], attrs: { seed: 1, offset: 0 } },
  random_normal: { inputs: [f(5)], attrs: { seed: 1, offset: 0 } },
};

/** Where a hostile value goes. */
type Position =
  | { kind: 'name' }
  | { kind: 'inputs' }
  | { kind: 'input'; index: number }
  | { kind: 'out' }
  | { kind: 'outItem'; index: number }
  | { kind: 'attrs' }
  | { kind: 'attr'; key: string }
  | { kind: 'unknownAttr'; key: string };

interface OpUnderTest {
  name: string;
  inputNames: string[];
  outputNames: string[];
  call: ValidCall;
  outSpecs: { shape: number[]; dtype: DType }[];
}

function describePosition(op: OpUnderTest, p: Position): string {
  switch (p.kind) {
    case 'name':
      return 'the op name';
    case 'inputs':
      return 'the inputs list';
    case 'input':
      return `inputs[${p.index}] (${op.inputNames[p.index]})`;
    case 'out':
      return 'the out list';
    case 'outItem':
      return `out[${p.index}] (${op.outputNames[p.index]})`;
    case 'attrs':
      return 'the attributes object';
    case 'attr':
      return `attribute '${p.key}'`;
    case 'unknownAttr':
      return `unknown attribute ${JSON.stringify(p.key)}`;
  }
}

function positionsOf(op: OpUnderTest): Position[] {
  return [
    { kind: 'name' },
    { kind: 'inputs' },
    ...op.inputNames.map((_, index): Position => ({ kind: 'input', index })),
    { kind: 'out' },
    ...op.outputNames.map((_, index): Position => ({ kind: 'outItem', index })),
    { kind: 'attrs' },
    ...Object.keys(op.call.attrs ?? {}).map((key): Position => ({ kind: 'attr', key })),
    // Its key is drawn with the value (positionArb): one that collides with Object.prototype matters most.
    { kind: 'unknownAttr', key: '' },
  ];
}

const unknownKey = (op: OpUnderTest) =>
  fc
    .oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '0', 'length', ' mask', 'MASK', 'text_len\0', 'scale '))
    .filter((k) => !(k in (op.call.attrs ?? {})));

/** A position with its key drawn when it is an unknown attribute. */
function positionArb(op: OpUnderTest, p: Position): fc.Arbitrary<Position> {
  return p.kind === 'unknownAttr' ? unknownKey(op).map((key): Position => ({ kind: 'unknownAttr', key })) : fc.constant(p);
}

interface Args {
  name: unknown;
  inputs: unknown;
  attrs: unknown;
  out: unknown;
  /**
   * The valid lists and attributes object, which the item positions write into while they are still in place: a
   * hostile replacement may be frozen, or throw at the look (and the test must not trip over it itself).
   */
  valid: { inputs: unknown[]; out: unknown[] | undefined; attrs: Record<string, unknown> };
}

/** The valid call, fresh in `scope`: inputs, attributes, and a valid out list when `withOut`. */
function validArgs(op: OpUnderTest, scope: TensorScope, withOut: boolean): { args: Args; peers: Tensor[] } {
  const inputs = op.call.inputs.map((s) => scope.filled(s.shape, s.dtype, s.values));
  const out = withOut ? op.outSpecs.map((s) => scope.zeros(s.shape, s.dtype)) : undefined;
  const attrs = { ...op.call.attrs };
  return { args: { name: op.name, inputs, attrs, out, valid: { inputs, out, attrs } }, peers: [...inputs, ...(out ?? [])] };
}

const ownProperty = (o: object, key: string, value: unknown) =>
  Object.defineProperty(o, key, { value, enumerable: true, configurable: true, writable: true });

/** Puts the hostile value at its position; false when a sizing attribute got a merely large request (skipped). */
function poison(op: OpUnderTest, args: Args, p: Position, h: Hostile, ctx: Omit<HostileContext, 'base'>): boolean {
  switch (p.kind) {
    case 'name':
      args.name = h.make({ ...ctx, base: args.name });
      return true;
    case 'inputs':
      args.inputs = h.make({ ...ctx, base: args.inputs });
      return true;
    case 'input': {
      const inputs = args.valid.inputs;
      if (args.inputs === inputs) inputs[p.index] = h.make({ ...ctx, base: inputs[p.index] });
      return true;
    }
    case 'out':
      args.out = h.make({ ...ctx, base: args.out });
      return true;
    case 'outItem': {
      const out = args.valid.out;
      if (out && args.out === out) out[p.index] = h.make({ ...ctx, base: out[p.index] });
      return true;
    }
    case 'attrs':
      args.attrs = h.make({ ...ctx, base: args.attrs });
      return true;
    case 'attr':
    case 'unknownAttr': {
      const v = h.make({ ...ctx, base: undefined });
      if (p.kind === 'attr' && op.call.sizing?.includes(p.key) && isLargeRequest(v)) return false;
      if (args.attrs === args.valid.attrs) ownProperty(args.valid.attrs, p.key, v);
      return true;
    }
  }
}

const isLargeRequest = (v: unknown) => (typeof v === 'number' && v > 4096) || (typeof v === 'bigint' && v > 4096n);

/** One call taking longer than this is a hang: every call here works on a few hundred numbers at most. */
const SLOW_CALL_MS = 2000;

/** Runs the call both ways and throws when either breaks the contract; results go into `scope`. */
async function check(what: string, args: Args, scope: TensorScope): Promise<void> {
  type Outcome = { result: unknown } | { error: unknown };
  const judge = (mode: string, ms: number, outcome: Outcome) => {
    if (ms > SLOW_CALL_MS) throw new Error(`${what} (${mode}): took ${ms.toFixed(0)} ms`);
    if ('error' in outcome) {
      const breach = contractBreach(outcome.error);
      if (breach) throw new Error(`${what} (${mode}): ${breach}`);
      return;
    }
    const r = outcome.result;
    if (!Array.isArray(r) || !r.every((x) => Tensor.isTensor(x))) throw new Error(`${what} (${mode}): returned ${typeof r}, not Tensor[]`);
    for (const x of r as Tensor[]) scope.track(x);
  };
  const call = [args.name, args.inputs, args.attrs, args.out] as Parameters<typeof runOp>;
  let outcome: Outcome;
  let started = performance.now();
  try {
    outcome = { result: runOp(...call) };
  } catch (error) {
    outcome = { error };
  }
  judge('runOp', performance.now() - started, outcome);

  started = performance.now();
  let pending: Promise<Tensor[]>;
  try {
    pending = runOpAsync(...call);
  } catch (error) {
    throw new Error(`${what} (runOpAsync): threw synchronously instead of rejecting: ${describeError(error)}`);
  }
  try {
    outcome = { result: await pending };
  } catch (error) {
    outcome = { error };
  }
  judge('runOpAsync', performance.now() - started, outcome);
}

const RUNS = Number(process.env['FC_RUNS'] ?? 1);
if (!(RUNS > 0)) throw new Error(`FC_RUNS must be a positive number, got ${process.env['FC_RUNS']}`);
const RUNS_PER_POSITION = Math.round(100 * RUNS);
const RUNS_MULTI = Math.round(200 * RUNS);
const RSS_LIMIT = 3 * 2 ** 30;

const addon = loadAddon();
const ops = addon.opNames().flatMap((name): OpUnderTest[] => {
  const call = validCalls[name];
  if (!call) return [];
  const info = addon.opInfo(name);
  return [{ name, inputNames: info.inputs, outputNames: info.outputs, call, outSpecs: [] }];
});

/** Runs the valid call once, which also tells the outputs' shapes and dtypes (for valid out lists). */
function runValid(op: OpUnderTest): void {
  const scope = new TensorScope();
  try {
    const { args } = validArgs(op, scope, false);
    const outs = runOp(op.name, args.inputs as Tensor[], args.attrs as Record<string, number>);
    op.outSpecs = outs.map((o) => ({ shape: [...o.shape], dtype: o.dtype }));
    for (const o of outs) o.dispose();
  } finally {
    scope.disposeAll();
  }
}

test.serial('every registered op has a valid call here, and it runs', (t) => {
  for (const name of addon.opNames()) t.truthy(validCalls[name], `${name} has no entry in validCalls (test/op-boundary.property.test.ts)`);
  for (const name of Object.keys(validCalls)) t.true(addon.opNames().includes(name), `validCalls has ${name}, which is not registered`);
  for (const op of ops) t.notThrows(() => runValid(op), `${op.name}: the valid call runs`);
});

for (const op of ops) {
  test.serial(`${op.name}: a hostile value in any one position gives a result or a DalleError (seed ${BASE_SEED})`, async (t) => {
    runValid(op);
    const before = liveBytes();
    let calls = 0;
    for (const position of positionsOf(op)) {
      const label = describePosition(op, position);
      const property = fc.asyncProperty(positionArb(op, position), hostileValue({ bulky: position.kind.startsWith('attr') }), fc.boolean(), async (p, h, withOut) => {
        const scope = new TensorScope();
        try {
          const { args, peers } = validArgs(op, scope, withOut || p.kind === 'outItem');
          fc.pre(poison(op, args, p, h, { scope, peers }));
          calls += 2;
          await check(`${op.name}, ${describePosition(op, p)} = ${h.label}`, args, scope);
        } finally {
          scope.disposeAll();
        }
      });
      try {
        await assertProperty(`${op.name}, ${label}`, property, { seed: seedFor(`${op.name}/${label}`), numRuns: RUNS_PER_POSITION, interruptAfterTimeLimit: 30_000 });
      } catch (err) {
        t.fail((err as Error).message);
      }
    }
    t.is(liveBytes(), before, 'every tensor the runs made was freed: no native memory leaked on an error path');
    t.true(process.memoryUsage().rss < RSS_LIMIT, `rss ${process.memoryUsage().rss} stays under ${RSS_LIMIT}`);
    t.log(`${calls} calls`);
  });
}

test.serial(`several hostile positions at once, every op (seed ${BASE_SEED})`, async (t) => {
  const before = liveBytes();
  let calls = 0;
  for (const op of ops) {
    runValid(op);
    const positions = fc
      .subarray(positionsOf(op), { minLength: 2 })
      .chain((ps) => fc.tuple(...ps.map((p) => fc.tuple(positionArb(op, p), hostileValue()))));
    const property = fc.asyncProperty(positions, fc.boolean(), async (poisoned, withOut) => {
      const scope = new TensorScope();
      try {
        const { args, peers } = validArgs(op, scope, withOut || poisoned.some(([p]) => p.kind === 'outItem'));
        for (const [p, h] of poisoned) fc.pre(poison(op, args, p, h, { scope, peers }));
        calls += 2;
        const what = poisoned.map(([p, h]) => `${describePosition(op, p)} = ${h.label}`).join('; ');
        await check(`${op.name}, ${what}`, args, scope);
      } finally {
        scope.disposeAll();
      }
    });
    try {
      await assertProperty(`${op.name}, several positions`, property, { seed: seedFor(`${op.name}/multi`), numRuns: RUNS_MULTI, interruptAfterTimeLimit: 30_000 });
    } catch (err) {
      t.fail((err as Error).message);
    }
  }
  t.is(liveBytes(), before, 'no native memory leaked');
  t.log(`${calls} calls`);
});

// ---- counterexamples the properties found (regression tests) ------------------------------------------------

const refusedWith = (code: string) => ({ instanceOf: DalleError, code }) as never;

test('adamw_step with inputs[0] = Object.create(Tensor.prototype) is E_INVALID_ARGUMENT (reading #handle was a TypeError)', (t) => {
  const scope = new TensorScope();
  try {
    const [param, grad, m, v] = [0, 1, 2, 3].map(() => scope.zeros([4]));
    const attrs = validCalls['adamw_step']!.attrs;
    t.throws(() => runOp('adamw_step', [Object.create(Tensor.prototype) as Tensor, grad!, m!, v!], attrs), refusedWith('E_INVALID_ARGUMENT'));
    t.throws(() => runOp('gelu_backward', [param!, new Proxy(param!, {})]), refusedWith('E_INVALID_ARGUMENT'), 'a transparent Proxy of a tensor');
    t.throws(() => runOp('gelu_forward', [param!], undefined, [new Proxy(param!, {})]), refusedWith('E_INVALID_ARGUMENT'), 'as an out');
  } finally {
    scope.disposeAll();
  }
});

test('upsample2x_backward with inputs = new Array(2 ** 32 - 1) is refused at once (map() walked 4 billion holes)', async (t) => {
  const started = performance.now();
  t.throws(() => runOp('upsample2x_backward', new Array(2 ** 32 - 1)), refusedWith('E_INVALID_ARGUMENT'));
  await t.throwsAsync(runOpAsync('upsample2x_backward', new Array(2 ** 32 - 1)), refusedWith('E_INVALID_ARGUMENT'));
  t.true(performance.now() - started < 500, `${(performance.now() - started).toFixed(0)} ms`);
});

test('upsample2x_forward with attributes new Array(1e5).fill(1) is refused at once (the addon spent O(keys²) on it)', (t) => {
  using x = Tensor.zeros([1, 2, 2, 2]);
  const manyKeys = Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, i]));
  const started = performance.now();
  t.throws(() => runOp('upsample2x_forward', [x], new Array(1e5).fill(1) as never), refusedWith('E_INVALID_ARGUMENT'));
  t.throws(() => runOp('upsample2x_forward', [x], new Float32Array(1e6) as never), refusedWith('E_INVALID_ARGUMENT'));
  t.throws(() => runOp('upsample2x_forward', [x], manyKeys), refusedWith('E_INVALID_ARGUMENT'), 'a plain object with 20000 keys (the addon caps keys)');
  t.true(performance.now() - started < 500, `${(performance.now() - started).toFixed(0)} ms`);
  using y = runOp('upsample2x_forward', [x], { unknown: 1 })[0]!;
  t.deepEqual(y.shape, [1, 4, 4, 2], 'a few unknown attributes are still ignored');
});

test('a symbol as the op name, with a bad inputs list, is E_INVALID_ARGUMENT (the name went into a message: TypeError)', async (t) => {
  t.throws(() => runOp(Symbol('op') as never, null as never), refusedWith('E_INVALID_ARGUMENT'));
  await t.throwsAsync(runOpAsync(Object.create(null) as never, null as never), refusedWith('E_INVALID_ARGUMENT'));
});

test('an out list whose iterator yields something else still returns the given tensors', (t) => {
  using x = Tensor.zeros([2, 3]);
  using y = Tensor.zeros([2, 3]);
  const out = Object.assign([y], {
    *[Symbol.iterator]() {
      yield 5;
    },
  });
  const got = runOp('gelu_forward', [x], undefined, out);
  t.is(got.length, 1);
  t.is(got[0], y, 'the out tensor, not what the iterator made up ([...out] returned [5])');
});

test('the addon itself refuses an object posing as a TensorHandle with E_INVALID_ARGUMENT (Unwrap threw a plain Error)', (t) => {
  using x = Tensor.zeros([2, 3]);
  const proto = Object.getPrototypeOf(x.handle) as object;
  const err = t.throws(() => loadAddon().runOp('gelu_forward', [Object.create(proto) as never]));
  t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', String(err));
  t.throws(() => loadAddon().runOp('gelu_forward', [new Proxy(x.handle, {})]), refusedWith('E_INVALID_ARGUMENT'));
});
