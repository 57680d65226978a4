import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DalleError } from '../lib/index.js';
import { bf16ToF32, f32ToBf16 } from '../lib/formats/half.js';
import {
  castFloating,
  parse,
  readSafetensors,
  serialize,
  toFloat32,
  writeSafetensors,
  type SafeTensor,
} from '../lib/formats/safetensors.js';
import { assertDalleError } from './helpers/gradcheck.js';

const dir = mkdtempSync(join(tmpdir(), 'dalle-safetensors-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A file from a header text and a data buffer, the way the spec lays it out (optionally with a forged length). */
function build(header: string, data: Uint8Array = new Uint8Array(0), opts: { pad?: boolean; length?: bigint } = {}): Buffer {
  let h = Buffer.from(header, 'utf8');
  if (opts.pad ?? true) h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(opts.length ?? BigInt(h.length));
  return Buffer.concat([prefix, h, data]);
}

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** One tensor of every dtype; odd byte sizes first in name order, so later tensors start unaligned. */
function everyDtype(): Record<string, SafeTensor> {
  return {
    'a.u8': { dtype: 'U8', shape: [7], data: Uint8Array.from([0, 1, 2, 3, 250, 254, 255]) },
    'b.bool': { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    'c.f32': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3e-38, Infinity, -0, 1 / 3]) },
    'd.f16': { dtype: 'F16', shape: [5], data: Uint16Array.from([0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff]) },
    'e.bf16': { dtype: 'BF16', shape: [3, 1], data: Uint16Array.from([0x3f80, 0x4049, 0xff80]) },
    'f.i32': { dtype: 'I32', shape: [4], data: Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
    'g.i64': { dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 40n + 3n]) },
    'h.u64': { dtype: 'U64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
    'i.f64': { dtype: 'F64', shape: [], data: Float64Array.from([Math.PI]) },
    'j.i8': { dtype: 'I8', shape: [2], data: Int8Array.from([-128, 127]) },
    'k.i16': { dtype: 'I16', shape: [1, 2], data: Int16Array.from([-32768, 12345]) },
    'l.u16': { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
    'm.u32': { dtype: 'U32', shape: [1], data: Uint32Array.from([4294967295]) },
    'n.f8': { dtype: 'F8_E4M3', shape: [2], data: Uint8Array.from([0x38, 0xb8]) },
    'o.f8': { dtype: 'F8_E5M2', shape: [1], data: Uint8Array.from([0x3c]) },
    'p.empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

function assertSameTensors(t: import('ava').ExecutionContext, got: Map<string, SafeTensor>, want: Record<string, SafeTensor>): void {
  t.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got.get(name)!;
    t.is(g.dtype, w.dtype, name);
    t.deepEqual([...g.shape], [...w.shape], name);
    t.is(g.data.constructor, w.data.constructor, `${name} array type`);
    t.deepEqual(bytesOf(g.data), bytesOf(w.data), `${name} bytes`);
  }
}

test('round trip of every dtype and metadata through a file and through serialize/parse', async (t) => {
  const tensors = everyDtype();
  const metadata = { format: 'pt', config: JSON.stringify({ nHid: 256, vocab: 8192 }), 'ünï 🐱': 'ẑ "quoted" \n\t\\' };
  const path = join(dir, 'all.safetensors');
  await writeSafetensors(path, tensors, metadata);
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('all.safetensors.tmp-')), [], 'no temporary file left behind');
  const file = readFileSync(path);
  t.deepEqual(file, serialize(tensors, metadata), 'the file is exactly serialize()');
  const n = Number(file.readBigUInt64LE(0));
  t.is((8 + n) % 8, 0, 'header padded to a multiple of 8');
  const headerText = file.subarray(8, 8 + n).toString('utf8');
  t.regex(headerText, /^\{"__metadata__":\{.*\} {0,7}$/s, 'metadata first, then spaces');
  t.is(Object.keys(JSON.parse(headerText) as object).length, Object.keys(tensors).length + 1);

  for (const back of [readSafetensors(path), parse(file)]) {
    assertSameTensors(t, back.tensors, tensors);
    t.deepEqual(back.metadata, metadata);
  }
  // A Map works as input too, and no metadata means no __metadata__ entry.
  const bare = serialize(new Map([['x', { dtype: 'I32', shape: [1], data: Int32Array.from([5]) } as SafeTensor]]));
  t.false(bare.toString('utf8').includes('__metadata__'));
  t.deepEqual(parse(bare).metadata, {});
});

test('byte-exact with a file built by hand from the spec; names sorted as UTF-8 bytes', async (t) => {
  const header =
    '{"__metadata__":{"a":"1","format":"pt"},' +
    '"10":{"dtype":"I32","shape":[1,1],"data_offsets":[0,4]},' +
    '"9":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},' +
    '"B":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},' +
    '"b":{"dtype":"U8","shape":[3],"data_offsets":[14,17]}}';
  const data = Uint8Array.from([
    ...[0x07, 0x00, 0x00, 0x00], // I32 7
    ...[0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0], // F32 1, -2.5
    ...[0x49, 0x40], // BF16 3.140625
    ...[9, 8, 7],
  ]);
  const hand = build(header, data);
  // 259 bytes of JSON, padded with 5 spaces so that 8 + 264 is a multiple of 8.
  t.is(Buffer.byteLength(header), 259);
  t.is(hand.readBigUInt64LE(0), 264n);
  t.is(hand.subarray(8 + 259, 8 + 264).toString('latin1'), '     ');
  t.is(hand.length, 8 + 264 + 17);

  // Given in a different order (JS objects put integer-like keys first), written in byte order.
  const tensors: Record<string, SafeTensor> = {
    b: { dtype: 'U8', shape: [3], data: Uint8Array.from([9, 8, 7]) },
    B: { dtype: 'BF16', shape: [], data: Uint16Array.from([0x4049]) },
    '9': { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2.5]) },
    '10': { dtype: 'I32', shape: [1, 1], data: Int32Array.from([7]) },
  };
  t.deepEqual(serialize(tensors, { format: 'pt', a: '1' }), hand);
  const path = join(dir, 'hand.safetensors');
  await writeSafetensors(path, tensors, { format: 'pt', a: '1' });
  t.deepEqual(readFileSync(path), hand);

  // Other writers' layouts read too: pretty-printed JSON, keys in any order, data not in name order.
  const other = build(
    '{\n  "b": {"data_offsets": [0, 3], "shape": [3], "dtype": "U8"},\n  "9": {"shape": [2], "dtype": "F32", "data_offsets": [3, 11]},\n  "__metadata__": {}\n}',
    Uint8Array.from([9, 8, 7, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0]),
  );
  const back = parse(other);
  t.deepEqual([...back.tensors.keys()], ['b', '9'], 'in buffer order');
  t.deepEqual(Array.from(back.tensors.get('9')!.data as Float32Array), [1, -2.5]);
  t.deepEqual(Array.from(back.tensors.get('b')!.data as Uint8Array), [9, 8, 7]);
  t.deepEqual(back.metadata, {});
  const fromHand = readSafetensors(path);
  t.deepEqual([...fromHand.tensors.keys()], ['10', '9', 'B', 'b']);
  t.is(toFloat32(fromHand.tensors.get('B')!)[0], 3.140625);
});

test('F16 and BF16 widen to F32 on request', (t) => {
  const bytes = serialize(everyDtype());
  const raw = parse(bytes);
  t.is(raw.tensors.get('d.f16')!.dtype, 'F16');
  const wide = parse(bytes, { toFloat32: true });
  const f16 = wide.tensors.get('d.f16')!;
  t.is(f16.dtype, 'F32');
  t.deepEqual(Array.from(f16.data as Float32Array), [1, -2, Infinity, 2 ** -24, 65504]);
  const bf16 = wide.tensors.get('e.bf16')!;
  t.is(bf16.dtype, 'F32');
  t.deepEqual([...bf16.shape], [3, 1]);
  t.deepEqual(Array.from(bf16.data as Float32Array), [1, 3.140625, -Infinity]);
  t.is(wide.tensors.get('f.i32')!.dtype, 'I32', 'integers are left alone');
  t.is(wide.tensors.get('i.f64')!.dtype, 'F64', 'only F16 and BF16 are widened by the option');
  t.is(toFloat32(wide.tensors.get('i.f64')!)[0], Math.fround(Math.PI));
  const f32 = raw.tensors.get('c.f32')!;
  t.is(toFloat32(f32), f32.data as Float32Array);
  t.true(Number.isNaN(toFloat32({ dtype: 'F16', shape: [1], data: Uint16Array.from([0x7e00]) })[0]));
  t.true(Number.isNaN(toFloat32({ dtype: 'BF16', shape: [1], data: Uint16Array.from([0x7fc0]) })[0]));
  t.is(toFloat32({ dtype: 'F16', shape: [1], data: Uint16Array.from([0x8000]) })[0], -0);
  assertDalleError(t, () => toFloat32(raw.tensors.get('f.i32')!), 'E_DTYPE', 'toFloat32 of I32');
});

test('castFloating: every floating dtype to BF16 (nearest even) or F32 (exact); integers and same-dtype tensors untouched', (t) => {
  const values = Float32Array.from([1, -2.5, 3.14159, 1e-3, 65504, -Infinity, 1 + 2 ** -8, 1 + 3 * 2 ** -8]);
  const f32: SafeTensor = { dtype: 'F32', shape: [2, 4], data: values };
  const bf16 = castFloating(f32, 'BF16');
  t.is(bf16.dtype, 'BF16');
  t.deepEqual([...bf16.shape], [2, 4]);
  t.deepEqual(bf16.data, f32ToBf16(values));
  // Ties go to the even neighbour: 1 + 2⁻⁸ → 1, 1 + 3·2⁻⁸ → 1 + 2⁻⁶.
  t.deepEqual([...bf16ToF32(bf16.data as Uint16Array).subarray(6)], [1, 1 + 2 ** -6]);
  const back = castFloating(bf16, 'F32');
  t.is(back.dtype, 'F32');
  t.deepEqual(back.data, bf16ToF32(bf16.data as Uint16Array), 'widening is exact');
  const f16: SafeTensor = { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3800, 0xbc00]) };
  t.deepEqual(bf16ToF32(castFloating(f16, 'BF16').data as Uint16Array), Float32Array.from([0.5, -1]));
  const f64: SafeTensor = { dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) };
  t.deepEqual(bf16ToF32(castFloating(f64, 'BF16').data as Uint16Array), Float32Array.from([3.140625]));
  const i32: SafeTensor = { dtype: 'I32', shape: [1], data: Int32Array.from([7]) };
  t.is(castFloating(i32, 'BF16'), i32);
  t.is(castFloating(f32, 'F32'), f32);
  t.is(castFloating(bf16, 'BF16'), bf16);
});

test('readSafetensors widens on request too', async (t) => {
  const path = join(dir, 'half.safetensors');
  await writeSafetensors(path, { h: { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3800, 0xbc00]) } });
  const t16 = readSafetensors(path).tensors.get('h')!;
  t.is(t16.dtype, 'F16');
  const t32 = readSafetensors(path, { toFloat32: true }).tensors.get('h')!;
  t.is(t32.dtype, 'F32');
  t.deepEqual(Array.from(t32.data as Float32Array), [0.5, -1]);
});

test('malformed files are E_INVALID_ARGUMENT with a clear message', (t) => {
  const f32 = (offsets: string, shape = '[2]', dtype = '"F32"') => `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;
  const eight = new Uint8Array(8);
  const good = serialize({ a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }, b: { dtype: 'I32', shape: [3], data: Int32Array.from([1, 2, 3]) } }, { k: 'v' });
  t.notThrows(() => parse(good));

  const badJson = Buffer.from(good);
  badJson[8 + 1] = 0x78; // {x__metadata__":…
  const badUtf8 = build('{"a\xff":' + f32('[0,8]') + '}', eight);
  badUtf8[8 + 3] = 0xff;
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty file', new Uint8Array(0), /too short/],
    ['5 bytes', new Uint8Array(5), /too short/],
    ['header length larger than the file', build(`{"a":${f32('[0,8]')}}`, eight, { length: 4096n }), /header length 4096 is larger/],
    ['header length 2^63', build('{}', new Uint8Array(0), { length: 2n ** 63n }), /header length 9223372036854775808/],
    ['header length 0', build('', new Uint8Array(0), { length: 0n }), /too small/],
    ['truncated data', good.subarray(0, good.length - 4), /past the end.*truncated/],
    ['truncated inside the header', good.subarray(0, 20), /larger than the 12 bytes/],
    ['bad JSON', badJson, /not valid JSON/],
    ['bad UTF-8', badUtf8, /not valid UTF-8/],
    ['not an object', build('[1, 2]'), /does not start with "\{"/],
    ['JSON null', build('{}null'), /not valid JSON/],
    ['tensor info not an object', build('{"a":[0,8]}', eight), /tensor "a" is not an object/],
    ['overlapping offsets', build(`{"a":${f32('[0,8]')},"b":${f32('[4,12]')}}`, new Uint8Array(12)), /"a" and "b" overlap/],
    ['same offsets twice', build(`{"a":${f32('[0,8]')},"b":${f32('[0,8]')}}`, eight), /overlap/],
    ['a gap', build(`{"a":${f32('[0,8]')},"b":${f32('[12,20]')}}`, new Uint8Array(20)), /bytes \[8, 12\) .* belong to no tensor/],
    ['not starting at 0', build(`{"a":${f32('[4,12]')}}`, new Uint8Array(12)), /bytes \[0, 4\)/],
    ['trailing bytes', Buffer.concat([good, Buffer.from([1, 2, 3])]), /3 bytes after the last tensor/],
    ['wrong size for shape', build(`{"a":${f32('[0,8]', '[3]')}}`, eight), /F32 \[3\], 12 bytes, but data_offsets \[0, 8\] hold 8/],
    ['wrong size for dtype', build(`{"a":${f32('[0,8]', '[2]', '"F64"')}}`, eight), /16 bytes/],
    ['unknown dtype', build(`{"a":${f32('[0,8]', '[2]', '"F128"')}}`, eight), /unknown dtype "F128"/],
    ['lower-case dtype', build(`{"a":${f32('[0,8]', '[2]', '"f32"')}}`, eight), /unknown dtype "f32"/],
    ['negative dim', build(`{"a":${f32('[0,8]', '[-2]')}}`, eight), /shape \[-2\]/],
    ['fractional dim', build(`{"a":${f32('[0,8]', '[1.5]')}}`, eight), /shape \[1.5\]/],
    ['shape not a list', build(`{"a":${f32('[0,8]', '2')}}`, eight), /shape 2/],
    ['begin > end', build(`{"a":${f32('[8,0]')}}`, eight), /data_offsets \[8,0\]/],
    ['three offsets', build(`{"a":${f32('[0,4,8]')}}`, eight), /data_offsets \[0,4,8\]/],
    ['negative offset', build(`{"a":${f32('[-8,0]')}}`, eight), /data_offsets/],
    ['string offsets', build(`{"a":${f32('["0","8"]')}}`, eight), /data_offsets/],
    ['offsets missing', build('{"a":{"dtype":"F32","shape":[2]}}', eight), /data_offsets undefined/],
    ['metadata not an object', build('{"__metadata__":"x"}'), /__metadata__ must be an object/],
    ['metadata value a number', build('{"__metadata__":{"step":3}}'), /__metadata__.step must be a string, got 3/],
    ['metadata value null', build('{"__metadata__":{"k":null}}'), /__metadata__.k must be a string/],
  ];
  for (const [what, bytes, message] of cases) {
    const err = t.throws(() => parse(bytes, { source: 'x.safetensors' }), undefined, what);
    if (!(err instanceof DalleError)) {
      t.fail(`${what}: threw ${String(err)}, not a DalleError`);
      continue;
    }
    t.is(err.code, 'E_INVALID_ARGUMENT', `${what}: ${err.message}`);
    t.regex(err.message, /^x\.safetensors: not a valid safetensors file: /, what);
    t.regex(err.message, message, what);
  }
  // The same checks guard files on disk (read in pieces, never whole).
  for (const [what, bytes, message] of cases.filter(([w]) => /truncated|larger|overlapping|trailing|wrong size|5 bytes|empty/.test(w))) {
    const path = join(dir, `bad-${what.replace(/\W+/g, '-')}.safetensors`);
    writeFileSync(path, bytes);
    const err = t.throws(() => readSafetensors(path), undefined, `file: ${what}`);
    t.is((err as DalleError).code, 'E_INVALID_ARGUMENT', `file: ${what}`);
    t.true(err!.message.startsWith(`${path}: `), err!.message);
    t.regex(err!.message, message, `file: ${what}`);
  }
});

test('a missing file is E_NOT_FOUND; a directory is E_INVALID_ARGUMENT', (t) => {
  assertDalleError(t, () => readSafetensors(join(dir, 'nope.safetensors')), 'E_NOT_FOUND', 'missing file');
  const sub = join(dir, 'a-directory');
  mkdirSync(sub, { recursive: true });
  assertDalleError(t, () => readSafetensors(sub), 'E_INVALID_ARGUMENT', 'directory');
});

test('bad tensors fail before anything is written; an existing file is replaced atomically', async (t) => {
  const path = join(dir, 'atomic.safetensors');
  const v1 = { w: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } as SafeTensor };
  await writeSafetensors(path, v1, { step: '1' });
  const before = readFileSync(path);
  const bad: Array<[string, Record<string, SafeTensor>, Record<string, string> | undefined, 'E_DTYPE' | 'E_INVALID_ARGUMENT']> = [
    ['data of the wrong type', { w: { dtype: 'I32', shape: [2], data: Float32Array.from([1, 2]) } }, undefined, 'E_DTYPE'],
    ['F16 given as floats', { w: { dtype: 'F16', shape: [2], data: Float32Array.from([1, 2]) } }, undefined, 'E_DTYPE'],
    ['too few elements', { w: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2]) } }, undefined, 'E_INVALID_ARGUMENT'],
    ['bad shape', { w: { dtype: 'F32', shape: [-2], data: Float32Array.from([1, 2]) } }, undefined, 'E_INVALID_ARGUMENT'],
    ['unknown dtype', { w: { dtype: 'F128' as 'F32', shape: [2], data: Float32Array.from([1, 2]) } }, undefined, 'E_INVALID_ARGUMENT'],
    ['reserved name', { __metadata__: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) } }, undefined, 'E_INVALID_ARGUMENT'],
    ['metadata not a string', v1, { step: 2 as unknown as string }, 'E_INVALID_ARGUMENT'],
  ];
  for (const [what, tensors, metadata, code] of bad) {
    const err = await t.throwsAsync(writeSafetensors(path, tensors, metadata), undefined, what);
    t.true(err instanceof DalleError, `${what}: ${String(err)}`);
    t.is((err as DalleError).code, code, `${what}: ${err!.message}`);
  }
  t.deepEqual(readFileSync(path), before, 'the old file is untouched');

  // Overwrites, including two saves in flight at once: the file is always one whole version.
  const v = (k: number) => ({ w: { dtype: 'F32', shape: [3], data: Float32Array.from([k, k, k]) } as SafeTensor });
  await Promise.all([writeSafetensors(path, v(2), { step: '2' }), writeSafetensors(path, v(3), { step: '3' })]);
  const back = readSafetensors(path);
  t.deepEqual(Array.from(back.tensors.get('w')!.data as Float32Array), [3, 3, 3]);
  t.is(back.metadata.step, '3');
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('atomic.safetensors.tmp-')), [], 'no temporary file left behind');
  const missingDir = join(dir, 'no-such-dir', 'x.safetensors');
  const err = await t.throwsAsync(writeSafetensors(missingDir, v1));
  t.is((err as DalleError).code, 'E_NOT_FOUND', err!.message);
  t.false(existsSync(join(dir, 'no-such-dir')), 'nothing created');
});
