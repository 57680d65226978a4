/**
 * The safetensors format, read and written without Python:
 *
 *   [8 bytes]  N, the header's length in bytes, unsigned 64-bit little-endian
 *   [N bytes]  a UTF-8 JSON object: {"__metadata__": {string: string}, name: {"dtype": "F32", "shape": [2, 3],
 *              "data_offsets": [begin, end]}, ...}, padded with spaces so that 8 + N is a multiple of 8
 *   [rest]     the byte buffer: every tensor's little-endian, row-major data, at [begin, end) relative to the
 *              buffer's start; together the tensors cover the buffer exactly, without overlap
 *
 * We write the tensors in name order (names compared as UTF-8 bytes), both in the header and in the buffer, with
 * `__metadata__` first when there is any. Reading validates everything and reports any defect as E_INVALID_ARGUMENT
 * naming the file and what is wrong; a missing file is E_NOT_FOUND.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';

import { DalleError } from '../errors.js';
import { readError, removeStaleTemporaries } from './files.js';
import { bf16ToF32, f32ToBf16, halfToFloat } from './half.js';

/** Every dtype of the format. F8 types and BOOL are carried as raw bytes (Uint8Array). */
export type SafetensorsDType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** The typed array a dtype's data lives in (F16 and BF16 as their raw bits in a Uint16Array). */
export type SafeTensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int16Array
  | Int32Array
  | Uint32Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

export interface SafeTensor {
  dtype: SafetensorsDType;
  /** Row-major; [] is a scalar (one element). */
  shape: readonly number[];
  /** Exactly shape's element count, in the array type of `dtype` (see DTYPES). */
  data: SafeTensorData;
}

export interface SafetensorsFile {
  /** In the header's order of data offsets. */
  tensors: Map<string, SafeTensor>;
  /** `__metadata__`, or {} when the file has none. */
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /** Widen F16 and BF16 tensors to F32 (dtype 'F32', a Float32Array); other dtypes are left as they are. */
  toFloat32?: boolean;
}

type TypedArrayCtor = { new (length: number): SafeTensorData; readonly BYTES_PER_ELEMENT: number; readonly name: string };

/** Each dtype's element size and the array type it is read into and written from. */
export const DTYPES: Readonly<Record<SafetensorsDType, TypedArrayCtor>> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/** Headers above this are refused as corrupt (the reference implementation's limit too). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

function invalid(source: string, why: string): DalleError {
  return new DalleError('E_INVALID_ARGUMENT', `${source}: not a valid safetensors file: ${why}`);
}

/**
 * A value from a header (or a caller) for an error message: JSON, cut to 80 characters. Never throws: JSON.stringify
 * overflows the stack on an array nested a few thousand deep, which a 10 KB header can hold, and rejects BigInts and
 * cycles from callers.
 */
function show(v: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    text = Array.isArray(v) ? 'an array nested too deeply to show' : typeof v === 'object' && v !== null ? 'an object that cannot be shown' : typeof v === 'symbol' || typeof v === 'bigint' ? String(v) : typeof v;
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function checkHost(): void {
  if (endianness() !== 'LE') throw new DalleError('E_UNSUPPORTED', 'safetensors: big-endian hosts are not supported');
}

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, v);
}

/** The element count of a shape, or null when a dimension is not a non-negative safe integer or the count overflows. */
function elementCount(shape: unknown): number | null {
  if (!Array.isArray(shape)) return null;
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) return null;
    n *= d as number;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Byte-wise UTF-8 order (the order Rust's String sorts in), not JS's UTF-16 code-unit order. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// --- writing ---

interface Plan {
  /** The 8-byte length prefix and the padded header. */
  head: Buffer;
  /** The tensors' bytes in buffer order. */
  chunks: Uint8Array[];
  total: number;
}

function plan(tensors: Record<string, SafeTensor> | ReadonlyMap<string, SafeTensor>, metadata: Record<string, string> | undefined): Plan {
  checkHost();
  const fail = (why: string) => new DalleError('E_INVALID_ARGUMENT', `writeSafetensors: ${why}`);
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)) as Array<[string, SafeTensor]>;
  entries.sort(([a], [b]) => compareUtf8(a, b));
  const parts: string[] = [];
  const meta = Object.entries(metadata ?? {});
  if (meta.length > 0) {
    meta.sort(([a], [b]) => compareUtf8(a, b));
    const fields = meta.map(([k, v]) => {
      if (typeof v !== 'string') throw fail(`metadata ${JSON.stringify(k)} must be a string, got ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw fail(`${METADATA_KEY} is reserved and cannot name a tensor`);
    if (!isDType(t?.dtype)) throw fail(`${name}: unknown dtype ${show(t?.dtype)}`);
    const ctor = DTYPES[t.dtype];
    const count = elementCount(t.shape);
    if (count === null) throw fail(`${name}: shape ${show(t.shape)} must be a list of non-negative integers`);
    if (!(t.data instanceof ctor)) {
      throw new DalleError('E_DTYPE', `writeSafetensors: ${name}: a ${t.dtype} tensor's data must be a ${ctor.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    if (t.data.length !== count) throw fail(`${name}: shape [${t.shape.join(', ')}] has ${count} elements but its data has ${t.data.length}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    parts.push(`${JSON.stringify(name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`);
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return { head, chunks, total: head.length + offset };
}

/** The file's bytes, for tensors and optional string metadata (see writeSafetensors). */
export function serialize(tensors: Record<string, SafeTensor> | ReadonlyMap<string, SafeTensor>, metadata?: Record<string, string>): Buffer {
  const p = plan(tensors, metadata);
  const out = Buffer.allocUnsafe(p.total);
  p.head.copy(out, 0);
  let at = p.head.length;
  for (const c of p.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// One write at a time per temporary file, so two saves to one path from this process cannot interleave.
const pendingWrites = new Map<string, Promise<void>>();

/**
 * Writes `tensors` (and `metadata`, string values only) to `path` atomically: the bytes go to `path + '.tmp-<pid>'`,
 * are flushed to disk, and the file is then renamed over `path`, so a crash leaves either the old file or the new
 * one, never half of one. Temporaries of earlier writers that were killed before their rename are removed first.
 * Bad tensors (unknown dtype, data not matching dtype × shape) fail before anything is written.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensor> | ReadonlyMap<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const p = plan(tensors, metadata);
  removeStaleTemporaries(path);
  const tmp = `${path}.tmp-${process.pid}`;
  const previous = pendingWrites.get(tmp) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => writeAtomically(path, tmp, p));
  pendingWrites.set(tmp, run);
  try {
    await run;
  } finally {
    if (pendingWrites.get(tmp) === run) pendingWrites.delete(tmp);
  }
}

async function writeAtomically(path: string, tmp: string, p: Plan): Promise<void> {
  try {
    const file = await open(tmp, 'w');
    try {
      await file.write(p.head);
      for (const c of p.chunks) if (c.length > 0) await file.write(c);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DalleError('E_NOT_FOUND', `${path}: cannot write it: its directory does not exist`, { cause });
    throw new DalleError('E_INVALID_ARGUMENT', `${path}: cannot write it (${code ?? (cause as Error).message})`, { cause });
  }
}

// --- reading ---

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  entries: Entry[];
  metadata: Record<string, string>;
  /** Where the byte buffer starts in the file: 8 + N. */
  dataStart: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The header's length from the 8-byte prefix, checked against the file's size. */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) throw invalid(source, `${fileSize} bytes is too short for the 8-byte header length (truncated?)`);
  const n = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(fileSize - 8)) throw invalid(source, `the header length ${n} is larger than the ${fileSize - 8} bytes after it (truncated?)`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw invalid(source, `the header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) throw invalid(source, `the header length ${n} is too small for a JSON object`);
  return Number(n);
}

/** Parses and checks the header against a byte buffer of `bufferLength` bytes. */
function parseHeader(headerBytes: Uint8Array, bufferLength: number, source: string): Header {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw invalid(source, 'the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw invalid(source, 'the header does not start with "{"');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(source, `the header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid(source, 'the header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) throw invalid(source, `${METADATA_KEY} must be an object of strings`);
      const pairs = Object.entries(info as Record<string, unknown>);
      for (const [k, v] of pairs) {
        if (typeof v !== 'string') throw invalid(source, `${METADATA_KEY}.${k} must be a string, got ${show(v)}`);
      }
      metadata = Object.fromEntries(pairs) as Record<string, string>;
      continue;
    }
    const what = `tensor ${JSON.stringify(name)}`;
    if (typeof info !== 'object' || info === null || Array.isArray(info)) throw invalid(source, `${what} is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDType(dtype)) throw invalid(source, `${what} has unknown dtype ${show(dtype)}`);
    const count = elementCount(shape);
    if (count === null) throw invalid(source, `${what} has shape ${show(shape)}; expected a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw invalid(source, `${what} has data_offsets ${show(offsets)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > bufferLength) {
      throw invalid(source, `${what} has data_offsets [${begin}, ${end}] past the end of the ${bufferLength}-byte data buffer (truncated?)`);
    }
    const want = count * DTYPES[dtype].BYTES_PER_ELEMENT;
    if (end - begin !== want) {
      throw invalid(source, `${what} is ${dtype} [${(shape as number[]).join(', ')}], ${want} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }

  // Sorted by offset, each tensor must start where the previous one ended, and the last end the buffer.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let last: Entry | undefined;
  for (const e of entries) {
    if (e.begin < at) throw invalid(source, `tensors ${JSON.stringify(last!.name)} and ${JSON.stringify(e.name)} overlap in the data buffer`);
    if (e.begin > at) throw invalid(source, `bytes [${at}, ${e.begin}) of the data buffer belong to no tensor`);
    at = e.end;
    last = e;
  }
  if (at !== bufferLength) throw invalid(source, `the data buffer has ${bufferLength - at} bytes after the last tensor`);
  return { entries, metadata, dataStart: 8 + headerBytes.length };
}

function finish(header: Header, fill: (e: Entry, dest: Uint8Array) => void, options: ReadSafetensorsOptions): SafetensorsFile {
  const tensors = new Map<string, SafeTensor>();
  for (const e of header.entries) {
    const ctor = DTYPES[e.dtype];
    const data = new ctor((e.end - e.begin) / ctor.BYTES_PER_ELEMENT);
    fill(e, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const t: SafeTensor = { dtype: e.dtype, shape: e.shape, data };
    tensors.set(e.name, options.toFloat32 && (e.dtype === 'F16' || e.dtype === 'BF16') ? { dtype: 'F32', shape: e.shape, data: toFloat32(t) } : t);
  }
  return { tensors, metadata: header.metadata };
}

/** Reads a safetensors file held in memory; `source` names it in errors. Tensor data is copied out. */
export function parse(bytes: Uint8Array, options: ReadSafetensorsOptions & { source?: string } = {}): SafetensorsFile {
  checkHost();
  const source = options.source ?? 'safetensors buffer';
  const n = headerLength(bytes, bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, source);
  return finish(header, (e, dest) => dest.set(bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end)), options);
}

/**
 * Reads and validates a safetensors file, reading each tensor straight into its own array (the file is never held
 * whole in memory). E_NOT_FOUND when the file does not exist; E_INVALID_ARGUMENT, naming the file and the defect,
 * for anything malformed.
 */
export function readSafetensors(path: string, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  checkHost();
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw readError(path, cause);
  }
  try {
    let size: number;
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new DalleError('E_INVALID_ARGUMENT', `${path} is a folder, not a file`);
      if (!st.isFile()) throw new DalleError('E_INVALID_ARGUMENT', `${path}: not a regular file`);
      size = st.size;
    } catch (cause) {
      if (cause instanceof DalleError) throw cause;
      throw new DalleError('E_INVALID_ARGUMENT', `${path}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
    }
    const readExactly = (dest: Uint8Array, position: number): void => {
      let done = 0;
      while (done < dest.length) {
        const got = readSync(fd, dest, done, dest.length - done, position + done);
        if (got === 0) throw invalid(path, `the file ended at byte ${position + done} while reading (changed while being read?)`);
        done += got;
      }
    };
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(prefix, 0);
    const n = headerLength(prefix, size, path);
    const headerBytes = new Uint8Array(n);
    readExactly(headerBytes, 8);
    const header = parseHeader(headerBytes, size - 8 - n, path);
    return finish(header, (e, dest) => readExactly(dest, header.dataStart + e.begin), options);
  } finally {
    closeSync(fd);
  }
}

// --- conversion ---

/**
 * A floating tensor's values as a Float32Array: F32 as it is (the same array), F16 and BF16 widened exactly, F64
 * rounded to nearest. Any other dtype is E_DTYPE.
 */
export function toFloat32(t: SafeTensor): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    case 'BF16':
      return bf16ToF32(t.data as Uint16Array);
    case 'F16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]!);
      return out;
    }
    default:
      throw new DalleError('E_DTYPE', `toFloat32 converts floating tensors (F32, F16, BF16, F64), not ${t.dtype}`);
  }
}

/**
 * A floating tensor (F32, F16, BF16, F64) in `dtype`: BF16 rounds to nearest even (from F64 through F32), F32 widens
 * exactly. Other dtypes, and a tensor already in `dtype`, come back as they are.
 */
export function castFloating(t: SafeTensor, dtype: 'F32' | 'BF16'): SafeTensor {
  if (t.dtype === dtype || !(t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64')) return t;
  const values = toFloat32(t);
  return dtype === 'F32' ? { dtype, shape: t.shape, data: values } : { dtype, shape: t.shape, data: f32ToBf16(values) };
}
