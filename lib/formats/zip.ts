/**
 * A minimal ZIP reader over bytes already in memory, enough for the archives torch.save writes (stored entries,
 * data descriptors, ZIP64 end records) and for ordinary deflated ones. Entries are listed from the central directory
 * once; their data is taken out only when asked for, and a stored entry comes back as a view into the input, not a
 * copy, so a 100 MB checkpoint is not duplicated. Every offset and length read from the file is bounds-checked
 * before use: a damaged archive gives a DalleError that says what is wrong, never a crash or an out-of-range read.
 */
import { crc32, inflateRawSync } from 'node:zlib';

import { DalleError } from '../errors.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate; others are refused when the entry is read. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN_SIZE = 56;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
/** The EOCD's trailing comment is at most 65535 bytes, so the EOCD starts within this distance of the end. */
const MAX_EOCD_SEARCH = EOCD_SIZE + 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;

function malformed(message: string): DalleError {
  return new DalleError('E_INVALID_ARGUMENT', `not a valid zip archive: ${message}`);
}

/** Little-endian reads that check the range first, so a lying length field cannot reach past the buffer. */
class Bytes {
  constructor(readonly buf: Buffer) {}
  get length(): number {
    return this.buf.length;
  }
  need(offset: number, length: number, what: string): void {
    if (offset < 0 || length < 0 || offset + length > this.buf.length) {
      throw malformed(`${what} at byte ${offset} (${length} bytes) runs past the end of the ${this.buf.length}-byte file`);
    }
  }
  u16(offset: number): number {
    return this.buf.readUInt16LE(offset);
  }
  u32(offset: number): number {
    return this.buf.readUInt32LE(offset);
  }
  /** 64-bit sizes are only usable while they are exact in a double; anything larger cannot be in memory anyway. */
  u64(offset: number, what: string): number {
    const value = this.buf.readBigUInt64LE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${what} ${value} is impossibly large`);
    return Number(value);
  }
}

function findEndOfCentralDirectory(bytes: Bytes): number {
  if (bytes.length < EOCD_SIZE) throw malformed(`the file is only ${bytes.length} bytes, too short for a zip end record`);
  const lowest = Math.max(0, bytes.length - MAX_EOCD_SEARCH);
  for (let at = bytes.length - EOCD_SIZE; at >= lowest; at--) {
    // A real end record's comment runs exactly to the end of the file; checking that skips signature bytes that
    // merely happen to occur inside the comment or the last entry.
    if (bytes.u32(at) === EOCD_SIGNATURE && at + EOCD_SIZE + bytes.u16(at + 20) === bytes.length) return at;
  }
  // A file that starts like a zip but has no end record was cut short (an interrupted download or copy).
  if (bytes.u32(0) === LOCAL_SIGNATURE) throw malformed(`the file starts like a zip but has no end-of-central-directory record: it is truncated (${bytes.length} bytes)`);
  throw malformed('no end-of-central-directory record');
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

function readDirectoryLocation(bytes: Bytes, eocd: number): Directory {
  const disk = bytes.u16(eocd + 4);
  const cdDisk = bytes.u16(eocd + 6);
  let dir: Directory = { count: bytes.u16(eocd + 10), size: bytes.u32(eocd + 12), offset: bytes.u32(eocd + 16) };
  const locator = eocd - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && bytes.u32(locator) === ZIP64_LOCATOR_SIGNATURE) {
    // ZIP64: the classic record may hold 0xFFFF/0xFFFFFFFF placeholders; the ZIP64 record has the real values.
    const record = bytes.u64(locator + 8, 'ZIP64 end record offset');
    bytes.need(record, ZIP64_EOCD_MIN_SIZE, 'the ZIP64 end record');
    if (bytes.u32(record) !== ZIP64_EOCD_SIGNATURE) throw malformed(`no ZIP64 end record at byte ${record}, where the locator points`);
    if (bytes.buf.readUInt32LE(record + 16) !== 0 || bytes.buf.readUInt32LE(record + 20) !== 0) {
      throw new DalleError('E_UNSUPPORTED', 'multi-disk (split) zip archives are not supported');
    }
    dir = {
      count: bytes.u64(record + 32, 'entry count'),
      size: bytes.u64(record + 40, 'central directory size'),
      offset: bytes.u64(record + 48, 'central directory offset'),
    };
  } else if (disk !== 0 || cdDisk !== 0) {
    throw new DalleError('E_UNSUPPORTED', 'multi-disk (split) zip archives are not supported');
  }
  bytes.need(dir.offset, dir.size, 'the central directory');
  // Every central header is at least 46 bytes, so a count the directory cannot hold is a lie; refusing it here also
  // bounds the loop below by the file size.
  if (dir.count * CENTRAL_HEADER_SIZE > dir.size) throw malformed(`the central directory (${dir.size} bytes) cannot hold ${dir.count} entries`);
  return dir;
}

/** Replaces 0xFFFFFFFF placeholders with the values of the ZIP64 extra field, in the order the format defines. */
function applyZip64Extra(bytes: Bytes, extraStart: number, extraLength: number, entry: { uncompressedSize: number; compressedSize: number; localHeaderOffset: number }, name: string): void {
  const wants = [entry.uncompressedSize === 0xffffffff, entry.compressedSize === 0xffffffff, entry.localHeaderOffset === 0xffffffff];
  if (!wants.some(Boolean)) return;
  let at = extraStart;
  const end = extraStart + extraLength;
  while (at + 4 <= end) {
    const id = bytes.u16(at);
    const size = bytes.u16(at + 2);
    if (at + 4 + size > end) break;
    if (id === ZIP64_EXTRA_ID) {
      let field = at + 4;
      const take = (what: string): number => {
        if (field + 8 > at + 4 + size) throw malformed(`entry ${JSON.stringify(name)}: ZIP64 extra field lacks its ${what}`);
        const value = bytes.u64(field, `entry ${JSON.stringify(name)} ${what}`);
        field += 8;
        return value;
      };
      if (wants[0]) entry.uncompressedSize = take('uncompressed size');
      if (wants[1]) entry.compressedSize = take('compressed size');
      if (wants[2]) entry.localHeaderOffset = take('local header offset');
      return;
    }
    at += 4 + size;
  }
  throw malformed(`entry ${JSON.stringify(name)} has 32-bit placeholders but no ZIP64 extra field`);
}

export class ZipArchive {
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly bytes: Bytes;

  constructor(data: Uint8Array) {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.bytes = new Bytes(buf);
    this.entries = this.readCentralDirectory();
  }

  /** Whether the bytes start like a zip archive (a local header, or the end record of an empty archive). */
  static looksLikeZip(data: Uint8Array): boolean {
    if (data.length < 4) return false;
    const sig = data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24);
    return sig >>> 0 === LOCAL_SIGNATURE || sig >>> 0 === EOCD_SIGNATURE;
  }

  private readCentralDirectory(): Map<string, ZipEntry> {
    const bytes = this.bytes;
    const dir = readDirectoryLocation(bytes, findEndOfCentralDirectory(bytes));
    const entries = new Map<string, ZipEntry>();
    let at = dir.offset;
    const end = dir.offset + dir.size;
    for (let i = 0; i < dir.count; i++) {
      if (at + CENTRAL_HEADER_SIZE > end) throw malformed(`central directory ends after ${i} of ${dir.count} entries`);
      if (bytes.u32(at) !== CENTRAL_SIGNATURE) throw malformed(`bad central directory header signature at byte ${at}`);
      const flags = bytes.u16(at + 8);
      const nameLength = bytes.u16(at + 28);
      const extraLength = bytes.u16(at + 30);
      const commentLength = bytes.u16(at + 32);
      const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
      if (next > end) throw malformed(`central directory entry ${i} runs past the directory's end`);
      const rawName = bytes.buf.subarray(at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength);
      // Names without the UTF-8 flag are nominally CP437; latin1 keeps ASCII names (all torch writes) exact.
      const name = rawName.toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1');
      const entry = {
        name,
        flags,
        method: bytes.u16(at + 10),
        crc32: bytes.u32(at + 16),
        compressedSize: bytes.u32(at + 20),
        uncompressedSize: bytes.u32(at + 24),
        localHeaderOffset: bytes.u32(at + 42),
      };
      applyZip64Extra(bytes, at + CENTRAL_HEADER_SIZE + nameLength, extraLength, entry, name);
      // Two entries with one name would make "the entry called X" ambiguous; an honest writer never does it.
      if (entries.has(name)) throw malformed(`the name ${JSON.stringify(name)} appears twice`);
      entries.set(name, entry);
      at = next;
    }
    return entries;
  }

  /** Names of the entries, in the order of the central directory. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * The uncompressed contents of one entry, with its CRC-32 checked (unless `verifyCrc` is false). Stored entries are
   * views into the archive's bytes.
   */
  read(name: string, options: { verifyCrc?: boolean } = {}): Buffer {
    const entry = this.entries.get(name);
    if (!entry) throw new DalleError('E_NOT_FOUND', `the zip archive has no entry named ${JSON.stringify(name)}`);
    const bytes = this.bytes;
    const label = `entry ${JSON.stringify(name)}`;
    if (entry.flags & FLAG_ENCRYPTED) throw new DalleError('E_UNSUPPORTED', `${label} is encrypted`);
    bytes.need(entry.localHeaderOffset, LOCAL_HEADER_SIZE, `the local header of ${label}`);
    const local = entry.localHeaderOffset;
    if (bytes.u32(local) !== LOCAL_SIGNATURE) throw malformed(`${label}: no local header at byte ${local}`);
    const nameLength = bytes.u16(local + 26);
    const extraLength = bytes.u16(local + 28);
    bytes.need(local + LOCAL_HEADER_SIZE, nameLength + extraLength, `the local header of ${label}`);
    const localName = bytes.buf.subarray(local + LOCAL_HEADER_SIZE, local + LOCAL_HEADER_SIZE + nameLength);
    if (localName.toString(entry.flags & FLAG_UTF8 ? 'utf8' : 'latin1') !== name) {
      throw malformed(`${label}: its local header names a different file`);
    }
    // Sizes come from the central directory: with a data descriptor (flag bit 3, which torch sets) the local
    // header's sizes are zeros.
    const dataStart = local + LOCAL_HEADER_SIZE + nameLength + extraLength;
    bytes.need(dataStart, entry.compressedSize, `the data of ${label}`);
    const raw = bytes.buf.subarray(dataStart, dataStart + entry.compressedSize);
    const data = this.decompress(entry, raw, label);
    if (options.verifyCrc !== false) {
      const actual = crc32(data) >>> 0;
      if (actual !== entry.crc32) {
        throw malformed(`${label} is corrupt: its CRC-32 is ${hex(actual)} but the directory records ${hex(entry.crc32)}`);
      }
    }
    return data;
  }

  private decompress(entry: ZipEntry, raw: Buffer, label: string): Buffer {
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.uncompressedSize) {
        throw malformed(`${label} is stored but its sizes differ (${entry.compressedSize} vs ${entry.uncompressedSize})`);
      }
      return raw;
    }
    if (entry.method === 8) {
      let out: Buffer;
      try {
        // The cap stops a small entry from inflating into gigabytes (a zip bomb) before the size check below.
        out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (cause) {
        throw new DalleError('E_INVALID_ARGUMENT', `not a valid zip archive: ${label} does not inflate: ${(cause as Error).message}`, { cause });
      }
      if (out.length !== entry.uncompressedSize) {
        throw malformed(`${label} inflates to ${out.length} bytes, not the ${entry.uncompressedSize} recorded`);
      }
      return out;
    }
    throw new DalleError('E_UNSUPPORTED', `${label} uses zip compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
