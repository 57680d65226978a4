/**
 * A restricted pickle reader. Python's unpickler runs whatever callables a file names, which is how a pickle can
 * carry code; this one never runs anything. A GLOBAL opcode is resolved only through the caller's allowlist
 * (`findGlobal`), and what REDUCE / NEWOBJ / BUILD do with the result is decided by the caller's objects, not by the
 * file. Anything else is refused with an error that names the global, or the opcode and its byte offset.
 *
 * Python values map to JS as: None → null, bool → boolean, int → number (bigint past 2^53), float → number,
 * str → string, bytes → Uint8Array, list → Array, tuple → PickleTuple (a frozen Array), dict → Map, set → Set,
 * frozenset → frozen Set. Everything else comes from the caller's globals.
 *
 * The machine is a loop over the bytes with an explicit stack (no recursion), every opcode consumes at least one
 * byte, and the memo and the sizes read from the file are capped, so malformed input ends in an error, quickly.
 */
import { DalleError } from '../errors.js';

/** A tuple: a frozen array, so that code can tell it from a list and nothing appends to it. */
export type PickleTuple = readonly unknown[];

/** What the allowlist hands back for a GLOBAL: a value the file may then call (REDUCE/NEWOBJ) or use as is. */
export interface PickleGlobal {
  readonly module: string;
  readonly name: string;
  /** REDUCE `f(*args)` and NEWOBJ `cls.__new__(cls, *args)`. Throw a DalleError to refuse the arguments. */
  construct(args: PickleTuple, how: 'reduce' | 'newobj'): unknown;
}

export interface PickleLimits {
  /** Most memo entries (BINPUT/MEMOIZE); a real torch pickle uses a few per tensor. */
  maxMemo: number;
  /** Longest string or bytes value, in bytes. */
  maxValueBytes: number;
  /** Longest LONG1/LONG4 integer, in bytes. */
  maxLongBytes: number;
}

export interface PickleOptions {
  /** The allowlist: a value for `module.name`, or undefined to refuse it. */
  findGlobal(module: string, name: string): unknown;
  /** BINPERSID: what a persistent id stands for (torch: a storage). Without it, persistent ids are refused. */
  persistentLoad?(pid: unknown): unknown;
  /** BUILD `obj.__setstate__(state)`: return the object to leave on the stack, or throw to refuse. */
  build?(obj: unknown, state: unknown): unknown;
  limits?: Partial<PickleLimits>;
}

export const defaultPickleLimits: PickleLimits = {
  maxMemo: 1 << 22,
  maxValueBytes: 1 << 30,
  maxLongBytes: 1 << 10,
};

/** Marks the frames of MARK on the stack. A class, so no value read from the file can be mistaken for it. */
class Mark {}
const MARK = new Mark();

export function isTuple(value: unknown): value is PickleTuple {
  return Array.isArray(value) && Object.isFrozen(value);
}

export function isPickleGlobal(value: unknown): value is PickleGlobal {
  return typeof value === 'object' && value !== null && typeof (value as PickleGlobal).construct === 'function' && typeof (value as PickleGlobal).module === 'string';
}

function tuple(items: unknown[]): PickleTuple {
  return Object.freeze(items);
}

/** Opcode bytes by name, for the messages; the names are pickletools'. */
const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

function describeValue(value: unknown): string {
  if (value === null) return 'None';
  if (isTuple(value)) return 'a tuple';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Map) return 'a dict';
  if (value instanceof Set) return 'a set';
  if (value instanceof Uint8Array) return 'bytes';
  if (isPickleGlobal(value)) return `${value.module}.${value.name}`;
  return typeof value;
}

/** Runs one pickle; construct it per file, call `load()` once. */
class Machine {
  private pos = 0;
  /** Offset of the opcode being run, for messages. */
  private at = 0;
  private stack: unknown[] = [];
  /** Stacks saved by MARK; `stack` is the innermost frame. */
  private marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly limits: PickleLimits;
  private readonly latin1 = new TextDecoder('latin1');
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: PickleOptions,
  ) {
    this.limits = { ...defaultPickleLimits, ...options.limits };
  }

  private fail(message: string, code: 'E_INVALID_ARGUMENT' | 'E_UNSUPPORTED' = 'E_INVALID_ARGUMENT'): DalleError {
    return new DalleError(code, `pickle: ${message} (opcode at byte ${this.at})`);
  }

  // --- reading operands ---

  private take(n: number, what: string): Uint8Array {
    if (n < 0 || this.pos + n > this.bytes.length) {
      throw this.fail(`truncated: ${what} needs ${n} bytes but only ${this.bytes.length - this.pos} remain`);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private view(n: number, what: string): DataView {
    const b = this.take(n, what);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private u8(): number {
    return this.take(1, 'a 1-byte operand')[0]!;
  }
  private u16(): number {
    return this.view(2, 'a 2-byte operand').getUint16(0, true);
  }
  private u32(): number {
    return this.view(4, 'a 4-byte operand').getUint32(0, true);
  }
  private i32(): number {
    return this.view(4, 'a 4-byte operand').getInt32(0, true);
  }
  private u64(): number {
    const v = this.view(8, 'an 8-byte operand').getBigUint64(0, true);
    // Anything past the limit cannot be a real length in this file; the limit is far below 2^53.
    if (v > BigInt(this.limits.maxValueBytes)) throw this.fail(`length ${v} is larger than the ${this.limits.maxValueBytes}-byte limit`);
    return Number(v);
  }
  private sized(n: number, what: string): Uint8Array {
    if (n > this.limits.maxValueBytes) throw this.fail(`${what} of ${n} bytes is larger than the ${this.limits.maxValueBytes}-byte limit`);
    return this.take(n, what);
  }
  private line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw this.fail(`truncated: ${what} has no terminating newline`);
    const text = this.latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }
  private text(raw: Uint8Array, what: string): string {
    try {
      return this.utf8.decode(raw);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    }
  }
  /** Two's-complement little-endian integer of any length (LONG1/LONG4), as a number when exact, else a bigint. */
  private long(raw: Uint8Array): number | bigint {
    if (raw.length === 0) return 0;
    let v = 0n;
    for (let i = raw.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!);
    if (raw[raw.length - 1]! & 0x80) v -= 1n << BigInt(8 * raw.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  // --- stack ---

  private push(v: unknown): void {
    this.stack.push(v);
  }
  private pop(what: string): unknown {
    if (this.stack.length === 0) throw this.fail(`stack underflow: ${what} needs a value${this.marks.length > 0 ? ' after the last MARK' : ''}`);
    return this.stack.pop();
  }
  private top(what: string): unknown {
    if (this.stack.length === 0) throw this.fail(`stack underflow: ${what} needs a value`);
    return this.stack[this.stack.length - 1];
  }
  /** The items pushed since the last MARK, leaving the stack as it was before the MARK. */
  private popMark(what: string): unknown[] {
    const outer = this.marks.pop();
    if (!outer) throw this.fail(`${what} without a MARK`);
    const items = this.stack;
    this.stack = outer;
    return items;
  }
  private memoPut(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= this.limits.maxMemo) throw this.fail(`more than ${this.limits.maxMemo} memo entries`);
    this.memo.set(index, this.top('PUT'));
  }
  private memoGet(index: number): void {
    if (!this.memo.has(index)) throw this.fail(`memo entry ${index} is read before it is written`);
    this.push(this.memo.get(index));
  }

  // --- containers ---

  private setItems(dict: unknown, items: unknown[], what: string): void {
    if (!(dict instanceof Map)) throw this.fail(`${what} on ${describeValue(dict)}, not a dict`);
    if (items.length % 2 !== 0) throw this.fail(`${what} with an odd number of keys and values`);
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  }
  private appendItems(list: unknown, items: unknown[], what: string): void {
    if (!Array.isArray(list) || Object.isFrozen(list)) throw this.fail(`${what} on ${describeValue(list)}, not a list`);
    for (const item of items) list.push(item);
  }
  private addItems(set: unknown, items: unknown[]): void {
    if (!(set instanceof Set) || Object.isFrozen(set)) throw this.fail(`ADDITEMS on ${describeValue(set)}, not a set`);
    for (const item of items) set.add(item);
  }

  // --- globals and calls ---

  private global(module: string, name: string): unknown {
    if (!/^[\w.]+$/.test(module) || !/^[\w.]+$/.test(name)) throw this.fail(`malformed global name ${JSON.stringify(`${module}.${name}`)}`);
    const found = this.options.findGlobal(module, name);
    if (found === undefined) {
      throw new DalleError(
        'E_INVALID_ARGUMENT',
        `refusing ${module}.${name}: this file contains code, not just tensor data — the global is not on the allowlist of a tensor file (opcode at byte ${this.at})`,
      );
    }
    return found;
  }
  private construct(callable: unknown, args: unknown, how: 'reduce' | 'newobj', opcode: string): unknown {
    if (!isPickleGlobal(callable)) throw this.fail(`${opcode} calls ${describeValue(callable)}, which is not an allowed callable`);
    if (!isTuple(args)) throw this.fail(`${opcode} on ${callable.module}.${callable.name} with ${describeValue(args)} for arguments, not a tuple`);
    try {
      return callable.construct(args, how);
    } catch (e) {
      if (e instanceof DalleError) throw new DalleError(e.code, `${e.message} (${opcode} at byte ${this.at})`, { cause: e });
      throw e;
    }
  }

  load(): unknown {
    const bytes = this.bytes;
    for (;;) {
      this.at = this.pos;
      if (this.pos >= bytes.length) throw this.fail('truncated: the pickle ends before its STOP opcode');
      const op = bytes[this.pos++]!;
      switch (op) {
        case 0x80: { // PROTO
          const proto = this.u8();
          if (proto > 5) throw this.fail(`pickle protocol ${proto} is newer than 5`, 'E_UNSUPPORTED');
          break;
        }
        case 0x95: // FRAME: a read-ahead hint; only its length is checked.
          if (this.u64() > bytes.length - this.pos) throw this.fail('truncated: a FRAME is longer than the rest of the pickle');
          break;
        case 0x2e: { // STOP
          if (this.marks.length > 0) throw this.fail('STOP inside an unclosed MARK');
          return this.pop('STOP');
        }
        case 0x28: // MARK
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case 0x30: this.pop('POP'); break;
        case 0x31: this.popMark('POP_MARK'); break;
        case 0x32: this.push(this.top('DUP')); break;

        // Constants and scalars.
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x8a: { // LONG1
          const n = this.u8();
          if (n > this.limits.maxLongBytes) throw this.fail(`a ${n}-byte integer is too long`);
          this.push(this.long(this.take(n, 'LONG1')));
          break;
        }
        case 0x8b: { // LONG4
          const n = this.i32();
          if (n < 0 || n > this.limits.maxLongBytes) throw this.fail(`a ${n}-byte integer is too long`);
          this.push(this.long(this.take(n, 'LONG4')));
          break;
        }
        case 0x47: this.push(this.view(8, 'BINFLOAT').getFloat64(0, false)); break; // BINFLOAT is big-endian
        case 0x49: { // INT (text); protocol 0 also writes bools as I01 / I00
          const text = this.line('INT');
          if (text === '01' || text === '00') this.push(text === '01');
          else this.push(this.parseInt(text, 'INT'));
          break;
        }
        case 0x4c: this.push(this.parseInt(this.line('LONG').replace(/L$/, ''), 'LONG')); break; // LONG (text)
        case 0x46: { // FLOAT (text)
          const text = this.line('FLOAT');
          const v = Number(text);
          if (text.trim() === '' || (Number.isNaN(v) && !/^[-+]?nan$/i.test(text.trim()))) throw this.fail(`FLOAT ${JSON.stringify(text)} is not a number`);
          this.push(v);
          break;
        }

        // Strings and bytes. Python 2 str (BINSTRING) is read as latin1 text, as Python 3 does with encoding='latin1'.
        case 0x58: this.push(this.text(this.sized(this.u32(), 'BINUNICODE'), 'BINUNICODE')); break;
        case 0x8c: this.push(this.text(this.take(this.u8(), 'SHORT_BINUNICODE'), 'SHORT_BINUNICODE')); break;
        case 0x8d: this.push(this.text(this.sized(this.u64(), 'BINUNICODE8'), 'BINUNICODE8')); break;
        case 0x54: { // BINSTRING
          const n = this.i32();
          if (n < 0) throw this.fail('BINSTRING with a negative length');
          this.push(this.latin1.decode(this.sized(n, 'BINSTRING')));
          break;
        }
        case 0x55: this.push(this.latin1.decode(this.take(this.u8(), 'SHORT_BINSTRING'))); break;
        case 0x42: this.push(this.sized(this.u32(), 'BINBYTES').slice()); break;
        case 0x43: this.push(this.take(this.u8(), 'SHORT_BINBYTES').slice()); break;
        case 0x8e: this.push(this.sized(this.u64(), 'BINBYTES8').slice()); break;
        case 0x96: this.push(this.sized(this.u64(), 'BYTEARRAY8').slice()); break;

        // Containers.
        case 0x7d: this.push(new Map()); break; // EMPTY_DICT
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x29: this.push(tuple([])); break; // EMPTY_TUPLE
        case 0x8f: this.push(new Set()); break; // EMPTY_SET
        case 0x64: { // DICT
          const dict = new Map();
          this.setItems(dict, this.popMark('DICT'), 'DICT');
          this.push(dict);
          break;
        }
        case 0x6c: this.push(this.popMark('LIST')); break; // LIST
        case 0x74: this.push(tuple(this.popMark('TUPLE'))); break; // TUPLE
        case 0x85: this.push(tuple([this.pop('TUPLE1')])); break;
        case 0x86: { // TUPLE2
          const b = this.pop('TUPLE2');
          this.push(tuple([this.pop('TUPLE2'), b]));
          break;
        }
        case 0x87: { // TUPLE3
          const c = this.pop('TUPLE3');
          const b = this.pop('TUPLE3');
          this.push(tuple([this.pop('TUPLE3'), b, c]));
          break;
        }
        case 0x91: this.push(Object.freeze(new Set(this.popMark('FROZENSET')))); break;
        case 0x73: { // SETITEM
          const value = this.pop('SETITEM');
          const key = this.pop('SETITEM');
          this.setItems(this.top('SETITEM'), [key, value], 'SETITEM');
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark('SETITEMS');
          this.setItems(this.top('SETITEMS'), items, 'SETITEMS');
          break;
        }
        case 0x61: { // APPEND
          const item = this.pop('APPEND');
          this.appendItems(this.top('APPEND'), [item], 'APPEND');
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark('APPENDS');
          this.appendItems(this.top('APPENDS'), items, 'APPENDS');
          break;
        }
        case 0x90: { // ADDITEMS
          const items = this.popMark('ADDITEMS');
          this.addItems(this.top('ADDITEMS'), items);
          break;
        }

        // Memo.
        case 0x71: this.memoPut(this.u8()); break; // BINPUT
        case 0x72: this.memoPut(this.u32()); break; // LONG_BINPUT
        case 0x94: this.memoPut(this.memo.size); break; // MEMOIZE
        case 0x70: this.memoPut(this.memoIndex(this.line('PUT'), 'PUT')); break; // PUT (text)
        case 0x68: this.memoGet(this.u8()); break; // BINGET
        case 0x6a: this.memoGet(this.u32()); break; // LONG_BINGET
        case 0x67: this.memoGet(this.memoIndex(this.line('GET'), 'GET')); break; // GET (text)

        // Globals, calls and objects: everything here goes through the caller's allowlist.
        case 0x63: { // GLOBAL "module\nname\n"
          const module = this.line('GLOBAL module');
          this.push(this.global(module, this.line('GLOBAL name')));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop('STACK_GLOBAL');
          const module = this.pop('STACK_GLOBAL');
          if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('STACK_GLOBAL needs two strings');
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop('REDUCE');
          const callable = this.pop('REDUCE');
          this.push(this.construct(callable, args, 'reduce', 'REDUCE'));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop('NEWOBJ');
          const cls = this.pop('NEWOBJ');
          this.push(this.construct(cls, args, 'newobj', 'NEWOBJ'));
          break;
        }
        case 0x92: { // NEWOBJ_EX: keyword arguments are not something any torch object needs
          const kwargs = this.pop('NEWOBJ_EX');
          const args = this.pop('NEWOBJ_EX');
          const cls = this.pop('NEWOBJ_EX');
          if (!(kwargs instanceof Map) || kwargs.size > 0) throw this.fail('NEWOBJ_EX with keyword arguments is not supported', 'E_UNSUPPORTED');
          this.push(this.construct(cls, args, 'newobj', 'NEWOBJ_EX'));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop('BUILD');
          const obj = this.pop('BUILD');
          if (!this.options.build) throw this.fail(`BUILD (setting the state of ${describeValue(obj)}) is not allowed here`);
          this.push(this.options.build(obj, state));
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.pop('BINPERSID');
          if (!this.options.persistentLoad) throw this.fail('a persistent id, and no persistent loader was given');
          this.push(this.options.persistentLoad(pid));
          break;
        }

        // Known opcodes that a tensor file has no use for.
        case 0x69: // INST
        case 0x6f: // OBJ
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: // EXT4
        case 0x50: // PERSID
        case 0x53: // STRING
        case 0x56: // UNICODE
        case 0x97: // NEXT_BUFFER
        case 0x98: // READONLY_BUFFER
          throw this.fail(`opcode ${OPCODE_NAMES[op]} (0x${op.toString(16)}) is not supported in tensor files`, 'E_UNSUPPORTED');
        default:
          throw this.fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}${op >= 0x20 && op < 0x7f ? ` (${JSON.stringify(String.fromCharCode(op))})` : ''}`);
      }
    }
  }

  private memoIndex(text: string, what: string): number {
    const v = this.parseInt(text, what);
    if (typeof v !== 'number' || v < 0) throw this.fail(`${what} ${JSON.stringify(text)} is not a memo index`);
    return v;
  }

  private parseInt(text: string, what: string): number | bigint {
    if (!/^[-+]?\d+$/.test(text)) throw this.fail(`${what} ${JSON.stringify(text)} is not an integer`);
    const v = BigInt(text);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
}

/** Unpickles `bytes` with nothing callable beyond what `options.findGlobal` allows. */
export function unpickle(bytes: Uint8Array, options: PickleOptions): unknown {
  return new Machine(bytes, options).load();
}
