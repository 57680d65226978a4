/**
 * Byte-level writers for the seed corpus: pickles, torch.save zip archives, zips and tars, built from parts so
 * that a seed can hold exactly the structure it is meant to exercise (and a regression exactly its defect).
 */
import { crc32 } from 'node:zlib';

import { deflateStored } from '../../test/fuzz/targets/_samples.js';

// --- pickle ---

export type PicklePart = number | string | Uint8Array;

/** Pickle bytes from opcode bytes, latin1 text (GLOBAL's lines) and already-encoded operands. */
export function pickle(...parts: PicklePart[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Opcodes by pickletools' names, and operand encoders. */
export const op = {
  proto: (n: number) => Buffer.from([0x80, n]),
  frame: (n: number) => Buffer.concat([Buffer.from([0x95]), u64(n)]),
  mark: 0x28, stop: 0x2e, pop: 0x30, popMark: 0x31, dup: 0x32,
  none: 0x4e, newTrue: 0x88, newFalse: 0x89,
  emptyTuple: 0x29, emptyList: 0x5d, emptyDict: 0x7d, emptySet: 0x8f,
  tuple: 0x74, tuple1: 0x85, tuple2: 0x86, tuple3: 0x87, list: 0x6c, dict: 0x64, frozenset: 0x91,
  append: 0x61, appends: 0x65, setitem: 0x73, setitems: 0x75, additems: 0x90,
  reduce: 0x52, newobj: 0x81, newobjEx: 0x92, build: 0x62, binpersid: 0x51, stackGlobal: 0x93, memoize: 0x94,
  global: (module: string, name: string) => `c${module}\n${name}\n`,
  binput: (i: number) => Buffer.from([0x71, i]),
  longBinput: (i: number) => Buffer.concat([Buffer.from([0x72]), u32(i)]),
  binget: (i: number) => Buffer.from([0x68, i]),
  longBinget: (i: number) => Buffer.concat([Buffer.from([0x6a]), u32(i)]),
  /** BINUNICODE. */
  str(s: string): Buffer {
    const b = Buffer.from(s, 'utf8');
    return Buffer.concat([Buffer.from([0x58]), u32(b.length), b]);
  },
  shortStr(s: string): Buffer {
    const b = Buffer.from(s, 'utf8');
    return Buffer.concat([Buffer.from([0x8c, b.length]), b]);
  },
  str8(s: string): Buffer {
    const b = Buffer.from(s, 'utf8');
    return Buffer.concat([Buffer.from([0x8d]), u64(b.length), b]);
  },
  bytes: (b: Uint8Array) => Buffer.concat([Buffer.from([0x42]), u32(b.length), b]),
  shortBytes: (b: Uint8Array) => Buffer.concat([Buffer.from([0x43, b.length]), b]),
  bytes8: (b: Uint8Array) => Buffer.concat([Buffer.from([0x8e]), u64(b.length), b]),
  bytearray8: (b: Uint8Array) => Buffer.concat([Buffer.from([0x96]), u64(b.length), b]),
  int(n: number): Buffer {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  },
  int1: (n: number) => Buffer.from([0x4b, n]),
  int2: (n: number) => Buffer.from([0x4d, n & 0xff, n >> 8]),
  /** LONG1 of a two's-complement little-endian value. */
  long1: (bytes: number[]) => Buffer.from([0x8a, bytes.length, ...bytes]),
  long4: (bytes: number[]) => Buffer.concat([Buffer.from([0x8b]), u32(bytes.length), Buffer.from(bytes)]),
  float(x: number): Buffer {
    const b = Buffer.alloc(9);
    b[0] = 0x47;
    b.writeDoubleBE(x, 1);
    return b;
  },
};

export interface TensorRef {
  /** torch storage class, e.g. FloatStorage. */
  storage: string;
  key: string;
  numel: number;
  offset?: number;
  shape: number[];
  strides: number[];
  parameter?: boolean;
}

/** `_rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())`, as torch.save pickles a tensor. */
export function tensorParts(t: TensorRef): PicklePart[] {
  const tensor: PicklePart[] = [
    op.global('torch._utils', '_rebuild_tensor_v2'),
    op.mark,
    op.mark, op.str('storage'), op.global('torch', t.storage), op.str(t.key), op.str('cpu'), op.int(t.numel), op.tuple,
    op.binpersid,
    op.int(t.offset ?? 0),
    op.mark, ...t.shape.map(op.int), op.tuple,
    op.mark, ...t.strides.map(op.int), op.tuple,
    op.newFalse,
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple,
    op.reduce,
  ];
  if (!t.parameter) return tensor;
  return [op.global('torch._utils', '_rebuild_parameter'), op.mark, ...tensor, op.newTrue, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.tuple, op.reduce];
}

/** An OrderedDict of name → tensor, protocol 2: what torch.save(model.state_dict()) writes. */
export function stateDictPickle(tensors: Array<[string, TensorRef]>): Buffer {
  return pickle(
    op.proto(2),
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    ...tensors.flatMap(([name, t]) => [op.str(name), ...tensorParts(t), op.setitem]),
    op.stop,
  );
}

// --- zip ---

export interface ZipEntryInput {
  name: string;
  data: Uint8Array;
}

export interface ZipOptions {
  deflate?: boolean;
  zip64?: boolean;
  /** Set flag bit 3 and write data descriptors after each entry, with zero sizes in the local headers (as torch does). */
  dataDescriptor?: boolean;
  comment?: string;
}

/** A zip archive of stored or deflated entries (deflate as stored blocks: see _samples.ts). */
export function writeZip(entries: ZipEntryInput[], options: ZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const body = options.deflate ? deflateStored(data, { raw: true }) : Buffer.from(data);
    const crc = crc32(data) >>> 0;
    const method = options.deflate ? 8 : 0;
    const flags = 0x0800 | (options.dataDescriptor ? 0x0008 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    if (!options.dataDescriptor) {
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(body.length, 18);
      local.writeUInt32LE(data.length, 22);
    }
    local.writeUInt16LE(nameBytes.length, 26);
    const descriptor = Buffer.alloc(options.dataDescriptor ? 16 : 0);
    if (options.dataDescriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(data.length, 12);
    }
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(flags, 8);
    header.writeUInt16LE(method, 10);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, nameBytes);
    parts.push(local, nameBytes, body, descriptor);
    offset += local.length + nameBytes.length + body.length + descriptor.length;
  }
  const cd = Buffer.concat(central);
  const comment = Buffer.from(options.comment ?? '', 'utf8');
  const tail: Buffer[] = [];
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(comment.length, 20);
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
  return Buffer.concat([...parts, cd, ...tail, eocd, comment]);
}

/** A torch.save archive: `<root>/data.pkl`, `<root>/data/<key>` per storage, `<root>/byteorder` and `version`. */
export function torchArchive(dataPkl: Uint8Array, storages: Record<string, Uint8Array>, options: ZipOptions & { root?: string } = {}): Buffer {
  const root = options.root ?? 'archive';
  return writeZip(
    [
      { name: `${root}/data.pkl`, data: dataPkl },
      { name: `${root}/byteorder`, data: Buffer.from('little') },
      ...Object.entries(storages).map(([key, data]) => ({ name: `${root}/data/${key}`, data })),
      { name: `${root}/version`, data: Buffer.from('3\n') },
    ],
    options,
  );
}

// --- tar ---

export interface TarMemberInput {
  name: string;
  data: string | Uint8Array;
  /** '0' regular (default), '5' folder, 'L' GNU long name, 'x' pax header. */
  type?: string;
  /** The ustar prefix field (joined to the name with '/'). */
  prefix?: string;
}

/** A ustar archive; `endBlocks: false` leaves out the two zero blocks, as many writers do. */
export function tarFile(members: TarMemberInput[], options: { endBlocks?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data);
    const h = Buffer.alloc(512);
    h.write(m.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0001750\0', 108);
    h.write('0001750\0', 116);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('14763625000\0', 136);
    h.write('        ', 148);
    h.write(m.type ?? '0', 156, 'latin1');
    h.write('ustar\0', 257);
    h.write('00', 263);
    if (m.prefix !== undefined) h.write(m.prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (options.endBlocks !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A pax extended header record: "<length> key=value\n", the length counting itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}
