/**
 * The torch.save reader against torch's own numbers (test/fixtures/torch/expected.json, written by
 * make_fixtures.py with PyTorch), and against broken and hostile files made here from the good ones.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';

import test, { type ExecutionContext } from 'ava';

import { DalleError, type DalleErrorCode } from '../lib/errors.js';
import { unpickle } from '../lib/formats/pickle.js';
import {
  InertObject,
  TorchDevice,
  type TorchDtype,
  type TorchTensor,
  halfToFloat,
  moduleParameters,
  readTorchFile,
  toFloat32,
} from '../lib/formats/torch.js';
import { ZipArchive } from '../lib/formats/zip.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'torch');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  strides: number[];
  storage_offset: number;
  contiguous: boolean;
  sum: number;
  abs_sum: number;
  first: number[];
  last: number | null;
}
interface ExpectedFile {
  attributes?: Record<string, unknown>;
  tensors: ExpectedTensor[];
}
const expected = (JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as { fixtures: Record<string, ExpectedFile> }).fixtures;

const DTYPES: Record<string, TorchDtype> = {
  float32: 'f32', float16: 'f16', bfloat16: 'bf16', float64: 'f64', int64: 'i64', int32: 'i32', bool: 'bool', uint8: 'u8',
};

/** Any tensor's values in row-major order as numbers, by our own index walk (independent of toFloat32). */
function logicalValues(t: TorchTensor): number[] {
  if (['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) return Array.from(toFloat32(t));
  const out: number[] = [];
  const walk = (d: number, at: number): void => {
    if (d === t.shape.length) {
      out.push(Number(t.data[at]!));
      return;
    }
    for (let i = 0; i < t.shape[d]!; i++) walk(d + 1, at + i * t.strides[d]!);
  };
  walk(0, t.storageOffset);
  return out;
}

/** A DalleError with this code whose message matches; returns the error for further checks. */
function throwsDalle(t: ExecutionContext, fn: () => unknown, code: DalleErrorCode, message: RegExp): DalleError | undefined {
  const error = t.throws(fn, { instanceOf: DalleError, message });
  if (error) t.is((error as DalleError).code, code, error.message);
  return error as DalleError | undefined;
}

// --- building archives and pickles for the bad-input cases ---

interface Entry {
  name: string;
  data: Uint8Array;
}

/** Writes a zip: stored (as torch does) or deflated entries, optionally with ZIP64 end records. */
function writeZip(entries: Entry[], options: { deflate?: boolean; zip64?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const body = options.deflate ? deflateRawSync(data) : Buffer.from(data);
    const crc = crc32(data) >>> 0;
    const method = options.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(0x0800, 8);
    header.writeUInt16LE(method, 10);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, nameBytes);
    parts.push(local, nameBytes, body);
    offset += local.length + nameBytes.length + body.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  if (options.zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(entries.length), 24);
    record.writeBigUInt64LE(BigInt(entries.length), 32);
    record.writeBigUInt64LE(BigInt(cd.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(record, locator);
    eocd.writeUInt16LE(0xffff, 8);
    eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12);
    eocd.writeUInt32LE(0xffffffff, 16);
  } else {
    eocd.writeUInt16LE(entries.length, 8);
    eocd.writeUInt16LE(entries.length, 10);
    eocd.writeUInt32LE(cd.length, 12);
    eocd.writeUInt32LE(offset, 16);
  }
  return Buffer.concat([...parts, cd, ...tail, eocd]);
}

/** The entries of a zip, to rewrite them. */
function unzip(bytes: Uint8Array): Entry[] {
  const zip = new ZipArchive(bytes);
  return zip.names().map((name) => ({ name, data: Buffer.from(zip.read(name)) }));
}

/** A fixture with its entries changed (undefined drops one); CRCs are recomputed, so only the change is wrong. */
function rewrite(fixtureName: string, change: (entry: Entry) => Uint8Array | undefined): Buffer {
  const entries = unzip(fixture(fixtureName)).flatMap((e) => {
    const data = change(e);
    return data ? [{ name: e.name, data }] : [];
  });
  return writeZip(entries);
}

/** Pickle bytes from opcode bytes, raw latin1 text, and already-encoded pieces. */
function pickle(...parts: Array<number | string | Uint8Array>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}
const op = {
  proto2: Buffer.from([0x80, 2]),
  mark: 0x28,
  tuple: 0x74,
  emptyTuple: 0x29,
  emptyDict: 0x7d,
  setitem: 0x73,
  reduce: 0x52,
  binpersid: 0x51,
  newfalse: 0x89,
  stop: 0x2e,
  global: (module: string, name: string) => `c${module}\n${name}\n`,
  str(s: string): Buffer {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from('X'), len, b]);
  },
  int(n: number): Buffer {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  },
};

interface TensorSpec {
  storageType?: string;
  key?: string;
  numel: number;
  offset?: number;
  shape: number[];
  strides: number[];
}

/** `{'x': tensor}` pickled the way torch.save does it (protocol 2, _rebuild_tensor_v2, a persistent storage id). */
function tensorDictPickle(spec: TensorSpec): Buffer {
  return pickle(
    op.proto2,
    op.emptyDict,
    op.str('x'),
    op.global('torch._utils', '_rebuild_tensor_v2'),
    op.mark,
    op.mark, op.str('storage'), op.global('torch', spec.storageType ?? 'FloatStorage'), op.str(spec.key ?? '0'), op.str('cpu'), op.int(spec.numel), op.tuple,
    op.binpersid,
    op.int(spec.offset ?? 0),
    op.mark, ...spec.shape.map(op.int), op.tuple,
    op.mark, ...spec.strides.map(op.int), op.tuple,
    op.newfalse,
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple,
    op.reduce,
    op.setitem,
    op.stop,
  );
}

/** A torch-style archive from a data.pkl and storages. */
function archive(dataPkl: Uint8Array, storages: Record<string, Uint8Array>, options: { deflate?: boolean; zip64?: boolean; root?: string } = {}): Buffer {
  const root = options.root ?? 'archive';
  return writeZip(
    [
      { name: `${root}/data.pkl`, data: dataPkl },
      ...Object.entries(storages).map(([key, data]) => ({ name: `${root}/data/${key}`, data })),
      { name: `${root}/version`, data: Buffer.from('3\n') },
    ],
    options,
  );
}

const floats = (...values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);

// --- the fixtures against torch ---

for (const [file, want] of Object.entries(expected)) {
  if (file === 'legacy_tiny.pkl') continue;
  test(`${file}: every tensor's name, dtype, layout and values match torch`, (t) => {
    const params = moduleParameters(readTorchFile(join(FIXTURES, file)));
    t.deepEqual([...params.keys()], want.tensors.map((e) => e.name), 'names, in state_dict() order');
    for (const e of want.tensors) {
      const tensor = params.get(e.name)!;
      const where = `${file} ${e.name}`;
      t.is(tensor.dtype, DTYPES[e.dtype]!, where);
      t.deepEqual(tensor.shape, e.shape, where);
      t.deepEqual(tensor.strides, e.strides, where);
      t.is(tensor.storageOffset, e.storage_offset, where);
      const values = logicalValues(tensor);
      t.is(values.length, e.shape.reduce((a, b) => a * b, 1), where);
      // f64 goes through toFloat32, so torch's float64 values are rounded the same way before comparing.
      const round = e.dtype === 'float64' ? Math.fround : (x: number) => x;
      t.deepEqual(values.slice(0, e.first.length), e.first.map(round), `${where}: first values`);
      if (e.last !== null) t.is(values[values.length - 1], round(e.last), `${where}: last value`);
      const sum = values.reduce((a, b) => a + b, 0);
      const absSum = values.reduce((a, b) => a + Math.abs(b), 0);
      const tolerance = 1e-6 * Math.max(1, e.abs_sum);
      t.true(Math.abs(sum - e.sum) <= tolerance, `${where}: sum ${sum} vs torch ${e.sum}`);
      t.true(Math.abs(absSum - e.abs_sum) <= tolerance, `${where}: abs sum ${absSum} vs torch ${e.abs_sum}`);
    }
  });
}

test('encoder_tiny.pkl is an inert dall_e.encoder.Encoder with its attributes, and nothing in it was called', (t) => {
  const root = readTorchFile(join(FIXTURES, 'encoder_tiny.pkl'));
  t.true(root instanceof InertObject);
  const encoder = root as InertObject;
  const attributes = expected['encoder_tiny.pkl']!.attributes!;
  t.is(encoder.class, attributes['class'] as string);
  const state = encoder.state as Map<string, unknown>;
  for (const [name, value] of Object.entries(attributes)) if (name !== 'class') t.is(state.get(name), value, name);
  t.deepEqual(state.get('device'), new TorchDevice('cpu', null));
  const blocks = (state.get('_modules') as Map<string, InertObject>).get('blocks')!;
  t.is(blocks.class, 'torch.nn.modules.container.Sequential');
  const children = (blocks.state as Map<string, unknown>).get('_modules') as Map<string, InertObject>;
  t.deepEqual([...children.keys()], ['input', 'group_1', 'group_2', 'group_3', 'group_4', 'output']);
  const group1 = (children.get('group_1')!.state as Map<string, unknown>).get('_modules') as Map<string, InertObject>;
  t.is(group1.get('pool')!.class, 'torch.nn.modules.pooling.MaxPool2d');
  const block = group1.get('block_1')!;
  t.is(block.class, 'dall_e.encoder.EncoderBlock');
  t.is((block.state as Map<string, unknown>).get('post_gain'), 1 / 16);
  const output = ((children.get('output')!.state as Map<string, unknown>).get('_modules') as Map<string, InertObject>).get('conv')!;
  t.is(output.class, 'dall_e.utils.Conv2d');
  t.is((output.state as Map<string, unknown>).get('use_float16'), false);
  const w = moduleParameters(root).get('blocks.input.w')!;
  t.true(w.isParameter);
  t.false(w.requiresGrad);
});

test('decoder_tiny.pkl has the released decoder layout: upsample in groups 1–3, 1×1 conv_1, 3×3 conv_4', (t) => {
  const root = readTorchFile(join(FIXTURES, 'decoder_tiny.pkl')) as InertObject;
  t.is(root.class, 'dall_e.decoder.Decoder');
  const params = moduleParameters(root);
  t.deepEqual(params.get('blocks.input.w')!.shape, [8, 16, 1, 1]);
  t.deepEqual(params.get('blocks.group_1.block_1.res_path.conv_1.w')!.shape, [8, 8, 1, 1]);
  t.deepEqual(params.get('blocks.group_1.block_1.res_path.conv_4.w')!.shape, [32, 8, 3, 3]);
  t.deepEqual(params.get('blocks.output.conv.w')!.shape, [6, 4, 1, 1]);
  t.false([...params.keys()].some((k) => k.includes('upsample')));
});

test('a plain state dict gives the same names and values as the module it came from', (t) => {
  const fromModule = moduleParameters(readTorchFile(join(FIXTURES, 'encoder_tiny.pkl')));
  const fromDict = moduleParameters(readTorchFile(fixture('encoder_state_dict.pkl')));
  t.true(fromDict.size > 10);
  for (const [name, tensor] of fromDict) {
    t.deepEqual(tensor.shape, fromModule.get(name)!.shape, name);
    t.deepEqual(toFloat32(tensor), toFloat32(fromModule.get(name)!), name);
  }
});

test('the top folder of the archive may have any name (torch 1.x names it after the file)', (t) => {
  const bytes = archive(tensorDictPickle({ numel: 2, shape: [2], strides: [1] }), { 0: floats(1, 2) }, { root: 'some name' });
  t.deepEqual(toFloat32(moduleParameters(readTorchFile(bytes)).get('x')!), new Float32Array([1, 2]));
});

test('deflated entries and ZIP64 end records are read (and CRCs checked) too', (t) => {
  for (const options of [{ deflate: true }, { zip64: true }, { deflate: true, zip64: true }]) {
    const bytes = archive(tensorDictPickle({ numel: 3, shape: [3], strides: [1] }), { 0: floats(1.5, -2, 3) }, options);
    t.deepEqual(toFloat32(moduleParameters(readTorchFile(bytes)).get('x')!), new Float32Array([1.5, -2, 3]), JSON.stringify(options));
  }
});

// --- dtypes and layouts ---

test('f16 → f32 is exact, including subnormals, infinities, signed zero and NaN', (t) => {
  t.is(halfToFloat(0x3c00), 1);
  t.is(halfToFloat(0xc000), -2);
  t.is(halfToFloat(0x7bff), 65504);
  t.is(halfToFloat(0x0001), 2 ** -24);
  t.is(halfToFloat(0x03ff), 1023 * 2 ** -24);
  t.is(halfToFloat(0x3555), Math.fround(0.333251953125));
  t.is(halfToFloat(0x7c00), Infinity);
  t.is(halfToFloat(0xfc00), -Infinity);
  t.true(Number.isNaN(halfToFloat(0x7e00)));
  t.true(Object.is(halfToFloat(0x8000), -0));
  const params = moduleParameters(readTorchFile(fixture('half_module.pkl')));
  t.is(params.get('w')!.dtype, 'f16');
  t.is(params.get('b')!.dtype, 'f32');
  const want = expected['half_module.pkl']!.tensors[0]!;
  t.deepEqual(Array.from(toFloat32(params.get('w')!).slice(0, 4)), want.first);
});

test('non-contiguous tensors come out in row-major order of their shape: transposed, sliced, expanded, f16 transposed', (t) => {
  const params = moduleParameters(readTorchFile(fixture('mixed_state_dict.pkl')));
  // The fixture's base is arange(24).reshape(4, 6) / 8 - 1.
  const base = (r: number, c: number): number => (r * 6 + c) / 8 - 1;
  const transposed = params.get('transposed')!;
  t.deepEqual(transposed.strides, [1, 6]);
  const wantT: number[] = [];
  for (let i = 0; i < 6; i++) for (let j = 0; j < 4; j++) wantT.push(base(j, i));
  t.deepEqual(Array.from(toFloat32(transposed)), wantT);
  const sliced = params.get('sliced')!;
  t.is(sliced.storageOffset, 6);
  const wantS: number[] = [];
  for (let i = 1; i < 4; i++) for (let j = 0; j < 6; j += 2) wantS.push(base(i, j));
  t.deepEqual(Array.from(toFloat32(sliced)), wantS);
  t.deepEqual(Array.from(toFloat32(params.get('expanded')!)), [1, 2, 1, 2, 1, 2]);
  t.deepEqual(params.get('expanded')!.strides, [0, 1]);
  const halfT = params.get('half_transposed')!;
  const values = toFloat32(halfT);
  const bits = halfT.data as Uint16Array;
  for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) t.is(values[i * 3 + j], halfToFloat(bits[j * 5 + i]!));
  t.deepEqual(Array.from(toFloat32(params.get('scalar')!)), [2.5]);
  t.is(toFloat32(params.get('empty')!).length, 0);
  t.is(params.get('bfloat16')!.dtype, 'bf16');
  t.true(params.get('int64')!.data instanceof BigInt64Array);
  throwsDalle(t, () => toFloat32(params.get('int64')!), 'E_DTYPE', /not i64/);
});

test('tensors on one storage share it, and a misaligned buffer is copied rather than viewed unaligned', (t) => {
  const bytes = fixture('mixed_state_dict.pkl');
  const shifted = Buffer.alloc(bytes.length + 1);
  bytes.copy(shifted, 1);
  const params = moduleParameters(readTorchFile(shifted.subarray(1)));
  t.is(params.get('transposed')!.data, params.get('sliced')!.data);
  t.deepEqual(Array.from(toFloat32(params.get('sliced')!)).slice(0, 2), [-0.25, 0]);
});

test('protocol 4 pickles (STACK_GLOBAL, MEMOIZE, FRAME, SHORT_BINUNICODE) read the same way', (t) => {
  const params = moduleParameters(readTorchFile(fixture('protocol4.pkl')));
  t.deepEqual([...params.keys()], ['weight', 'bias']);
});

// --- refusals ---

test('the legacy (pre-1.6) format is refused with E_UNSUPPORTED and says how to re-save it', (t) => {
  throwsDalle(t, () => readTorchFile(join(FIXTURES, 'legacy_tiny.pkl')), 'E_UNSUPPORTED', /legacy_tiny\.pkl: .*legacy torch\.save format.*torch\.save\(torch\.load/);
});

test('a global that is code is refused and named, with no way around the allowlist', (t) => {
  const calls = [
    pickle(op.proto2, op.global('posix', 'system'), op.str('echo pwned'), 0x85, op.reduce, op.stop),
    // Protocol 4 spelling: STACK_GLOBAL with the names on the stack.
    pickle(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, op.str('1+1'), 0x85, op.reduce, op.stop),
  ];
  const names = [/refusing posix\.system: this file contains code, not just tensor data/, /refusing builtins\.eval: this file contains code/];
  calls.forEach((data, i) => {
    const bytes = rewrite('encoder_tiny.pkl', (e) => (e.name.endsWith('/data.pkl') ? data : e.data));
    throwsDalle(t, () => readTorchFile(bytes), 'E_INVALID_ARGUMENT', names[i]!);
  });
  // Torch's own loaders that unpickle nested data, and globals from the allowed packages' neighbours, are refused too.
  for (const [module, name] of [['torch.storage', '_load_from_bytes'], ['torch', 'load'], ['dall_e_evil', 'x'], ['os', 'system'], ['builtins', 'getattr']]) {
    const data = pickle(op.proto2, op.global(module!, name!), op.stop);
    throwsDalle(t, () => readTorchFile(archive(data, {})), 'E_INVALID_ARGUMENT', new RegExp(`refusing ${module!.replace('.', '\\.')}\\.${name}`));
  }
  // A module class is allowed only as an inert record: REDUCE on it never reaches anything callable.
  const inert = readTorchFile(archive(pickle(op.proto2, op.global('dall_e.utils', 'Conv2d'), op.str('arg'), 0x85, op.reduce, op.stop), {}));
  t.true(inert instanceof InertObject);
  t.deepEqual((inert as InertObject).args, ['arg']);
  // Extra prefixes are the caller's to add.
  const custom = archive(pickle(op.proto2, op.global('mylib.nets', 'Net'), op.emptyTuple, 0x81, op.stop), {});
  throwsDalle(t, () => readTorchFile(custom), 'E_INVALID_ARGUMENT', /refusing mylib\.nets\.Net/);
  t.is((readTorchFile(custom, { allowedModulePrefixes: ['mylib.'] }) as InertObject).class, 'mylib.nets.Net');
});

test('an unknown opcode is refused naming the opcode and its byte offset', (t) => {
  const bytes = archive(pickle(op.proto2, op.emptyDict, 0xff, op.stop), {});
  throwsDalle(t, () => readTorchFile(bytes), 'E_INVALID_ARGUMENT', /unknown opcode 0xff \(opcode at byte 3\)/);
  throwsDalle(t, () => unpickle(pickle(op.proto2, 'i', 'os\nsystem\n', op.stop), { findGlobal: () => undefined }), 'E_UNSUPPORTED', /INST .* at byte 2/);
});

test('a TorchScript archive is refused with E_UNSUPPORTED and an explanation', (t) => {
  const bytes = writeZip([
    { name: 'model/data.pkl', data: pickle(op.proto2, op.emptyDict, op.stop) },
    { name: 'model/constants.pkl', data: pickle(op.proto2, op.emptyTuple, op.stop) },
    { name: 'model/code/__torch__.py', data: Buffer.from('') },
  ]);
  throwsDalle(t, () => readTorchFile(bytes), 'E_UNSUPPORTED', /TorchScript archive \(torch\.jit\.save\)/);
});

// --- malformed files: each is a DalleError that says what is wrong ---

test('a missing path is E_NOT_FOUND', (t) => {
  throwsDalle(t, () => readTorchFile(join(FIXTURES, 'no-such-file.pkl')), 'E_NOT_FOUND', /no-such-file\.pkl: no such file/);
});

test('files that are not torch.save zips say what they are', (t) => {
  throwsDalle(t, () => readTorchFile(Buffer.alloc(0)), 'E_INVALID_ARGUMENT', /the file is empty/);
  throwsDalle(t, () => readTorchFile(Buffer.from('{"not": "a checkpoint"}')), 'E_INVALID_ARGUMENT', /not a torch\.save file: it is not a zip archive/);
  throwsDalle(t, () => readTorchFile(pickle(op.proto2, op.emptyDict, op.stop)), 'E_INVALID_ARGUMENT', /bare pickle/);
  const noPickle = writeZip([{ name: 'readme.txt', data: Buffer.from('hi') }]);
  throwsDalle(t, () => readTorchFile(noPickle), 'E_INVALID_ARGUMENT', /no entry ends in \/data\.pkl \(it has 1 entries: "readme\.txt"\)/);
});

test('a truncated file says it is truncated, wherever it was cut', (t) => {
  const bytes = fixture('half_module.pkl');
  throwsDalle(t, () => readTorchFile(bytes.subarray(0, bytes.length - 100)), 'E_INVALID_ARGUMENT', /truncated/);
  for (let cut = 1; cut < bytes.length; cut += 37) {
    const error = t.throws(() => readTorchFile(bytes.subarray(0, cut)), { instanceOf: DalleError });
    t.is((error as DalleError | undefined)?.code, 'E_INVALID_ARGUMENT', `cut at ${cut}: ${error?.message}`);
  }
});

test('a corrupted byte is caught by the CRC, naming the entry', (t) => {
  const bytes = Buffer.from(fixture('half_module.pkl'));
  const zip = new ZipArchive(bytes);
  const storage = zip.names().find((n) => n.endsWith('/data/0'))!;
  // The storage's bytes are the last stored data before the version entry; flip one inside it.
  const inside = bytes.indexOf(zip.read(storage).subarray(0, 16)) + 5;
  bytes[inside]! ^= 0x40;
  throwsDalle(t, () => readTorchFile(bytes), 'E_INVALID_ARGUMENT', /entry "half_module\/data\/0" is corrupt: its CRC-32 is 0x[0-9a-f]{8} but the directory records/);
});

test('a storage referenced by data.pkl but missing from the archive is named', (t) => {
  const bytes = rewrite('half_module.pkl', (e) => (e.name.endsWith('/data/1') ? undefined : e.data));
  throwsDalle(t, () => readTorchFile(bytes), 'E_INVALID_ARGUMENT', /refers to storage "1", but the archive has no entry "half_module\/data\/1"/);
});

test('a storage too small for its element count, or a tensor reaching past its storage, is refused', (t) => {
  const short = archive(tensorDictPickle({ numel: 4, shape: [4], strides: [1] }), { 0: floats(1, 2) });
  throwsDalle(t, () => readTorchFile(short), 'E_INVALID_ARGUMENT', /storage "0" should hold 4 f32 elements \(16 bytes\) but its entry has only 8 bytes/);
  const past = archive(tensorDictPickle({ numel: 4, shape: [3, 3], strides: [3, 1] }), { 0: floats(1, 2, 3, 4) });
  throwsDalle(t, () => readTorchFile(past), 'E_INVALID_ARGUMENT', /shape \[3,3\] with strides \[3,1\] at offset 0 reaches element 8, but storage "0" has only 4 f32 elements/);
  const offset = archive(tensorDictPickle({ numel: 4, offset: 3, shape: [2], strides: [1] }), { 0: floats(1, 2, 3, 4) });
  throwsDalle(t, () => readTorchFile(offset), 'E_INVALID_ARGUMENT', /at offset 3 reaches element 4/);
  const negative = archive(tensorDictPickle({ numel: 4, shape: [2], strides: [-1] }), { 0: floats(1, 2, 3, 4) });
  throwsDalle(t, () => readTorchFile(negative), 'E_INVALID_ARGUMENT', /tensor strides\[0\] is -1/);
  const complex = archive(tensorDictPickle({ storageType: 'ComplexFloatStorage', numel: 1, shape: [1], strides: [1] }), { 0: floats(1, 2) });
  throwsDalle(t, () => readTorchFile(complex), 'E_UNSUPPORTED', /ComplexFloatStorage tensors are not supported/);
  const badKey = archive(tensorDictPickle({ key: '../../etc/passwd', numel: 1, shape: [1], strides: [1] }), {});
  throwsDalle(t, () => readTorchFile(badKey), 'E_INVALID_ARGUMENT', /bad storage key/);
});

test('broken pickles give clear errors: truncation, underflow, a memo read before write, a missing MARK', (t) => {
  const cases: Array<[Buffer, RegExp]> = [
    [pickle(op.proto2, op.emptyDict), /ends before its STOP/],
    [pickle(op.proto2, 0x58, 0xff, 0xff, 0, 0, 'ab'), /truncated: BINUNICODE needs 65535 bytes but only 2 remain/],
    [pickle(op.proto2, op.setitem, op.stop), /stack underflow: SETITEM/],
    [pickle(op.proto2, 0x68, 7, op.stop), /memo entry 7 is read before it is written/],
    [pickle(op.proto2, op.tuple, op.stop), /TUPLE without a MARK/],
    [pickle(op.proto2, op.emptyTuple, op.int(1), 0x61, op.stop), /APPEND on a tuple, not a list/],
    [pickle(op.proto2, op.emptyDict, 0x85, op.emptyTuple, op.reduce, op.stop), /REDUCE calls a tuple, which is not an allowed callable/],
  ];
  for (const [data, message] of cases) throwsDalle(t, () => readTorchFile(archive(data, {})), 'E_INVALID_ARGUMENT', message);
});

test('a module tree that contains itself is refused, not walked forever', (t) => {
  // m = Module(); m._modules = {'child': m}
  const data = pickle(
    op.proto2,
    op.global('dall_e.x', 'M'), op.emptyTuple, 0x81, 0x71, 0,
    op.emptyDict, op.str('_modules'), op.emptyDict, op.str('child'), 0x68, 0, op.setitem, op.setitem,
    0x62, op.stop,
  );
  throwsDalle(t, () => moduleParameters(readTorchFile(archive(data, {}))), 'E_INVALID_ARGUMENT', /module child contains itself/);
});

test('random corruption of data.pkl and of the archive never crashes or hangs: a result or a DalleError', (t) => {
  const original = unzip(fixture('encoder_tiny.pkl'));
  const pkl = original.find((e) => e.name.endsWith('/data.pkl'))!;
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const started = Date.now();
  let errors = 0;
  for (let round = 0; round < 300; round++) {
    const mutated = Buffer.from(pkl.data);
    for (let k = 0; k <= random(4); k++) mutated[random(mutated.length)] = random(256);
    const bytes = writeZip(original.map((e) => (e === pkl ? { name: e.name, data: mutated } : e)));
    try {
      moduleParameters(readTorchFile(bytes));
    } catch (e) {
      if (!(e instanceof DalleError)) t.fail(`round ${round}: ${String(e)}`);
      errors++;
    }
    // Raw damage to the archive itself (CRC, headers, directory).
    const raw = Buffer.from(fixture('half_module.pkl'));
    const at = random(raw.length);
    raw[at] = raw[at]! ^ (1 + random(255));
    try {
      moduleParameters(readTorchFile(raw));
    } catch (e) {
      if (!(e instanceof DalleError)) t.fail(`raw round ${round}: ${String(e)}`);
    }
  }
  t.true(errors > 100, `${errors} of 300 mutations were refused`);
  t.true(Date.now() - started < 20_000);
});

test('hostile structures stay bounded: deep tuples in messages, exponentially shared modules, huge expanded views', (t) => {
  // A persistent id nested 100k tuples deep: the error message must not recurse into it.
  const deep = pickle(op.proto2, op.str('storage'), Buffer.alloc(100_000, 0x85), op.binpersid, op.stop);
  throwsDalle(t, () => readTorchFile(archive(deep, {})), 'E_INVALID_ARGUMENT', /unexpected persistent id \(\(a tuple\)\)/);

  // M_k has children a and b, both M_{k-1}: 2^40 paths from 40 small records.
  const parts: Array<number | string | Uint8Array> = [op.proto2, op.global('dall_e.x', 'M'), 0x71, 0, 0x30];
  for (let k = 1; k <= 40; k++) {
    parts.push(0x68, 0, op.emptyTuple, 0x81, op.emptyDict, op.str('_modules'), op.emptyDict);
    if (k > 1) parts.push(op.str('a'), 0x68, k - 1, op.setitem, op.str('b'), 0x68, k - 1, op.setitem);
    parts.push(op.setitem, 0x62, 0x71, k, 0x30);
  }
  parts.push(0x68, 40, op.stop);
  const started = Date.now();
  throwsDalle(t, () => moduleParameters(readTorchFile(archive(pickle(...parts), {}))), 'E_INVALID_ARGUMENT', /the tree is not a real model/);
  t.true(Date.now() - started < 10_000);

  // A stride-0 view may be far larger than its storage, as torch allows; converting it all at once is refused.
  const huge = archive(tensorDictPickle({ numel: 1, shape: [1 << 20, 1 << 20], strides: [0, 0] }), { 0: floats(1) });
  const tensor = moduleParameters(readTorchFile(huge)).get('x')!;
  throwsDalle(t, () => toFloat32(tensor), 'E_OUT_OF_MEMORY', /more than \d+ at once/);
});
