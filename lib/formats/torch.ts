/**
 * Reads files written by `torch.save` (the zip format, PyTorch ≥ 1.6) without Python and without running anything the
 * file contains: `<archive>/data.pkl` is unpickled by the restricted machine in pickle.ts, whose only callables are the
 * few torch uses to rebuild tensors, and tensor bytes come from `<archive>/data/<key>` as typed-array views.
 *
 * A pickled nn.Module (such as OpenAI's dVAE encoder.pkl / decoder.pkl) names its own classes; those are allowed only
 * under known module prefixes and become inert records ({ class, state }) that are never called. `moduleParameters`
 * then walks such a tree, or a plain state dict, into torch's `state_dict()` names.
 */
import { endianness } from 'node:os';

import { DalleError, type DalleErrorCode } from '../errors.js';
import { type PickleGlobal, type PickleTuple, isTuple, unpickle } from './pickle.js';
import { ZipArchive } from './zip.js';
import { readFileBytes } from './files.js';
import { halfToFloat } from './half.js';

export type TorchDtype = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

/** Storage elements as stored. f16 and bf16 have no JS array type, so they are their raw 16-bit patterns. */
export type TorchData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A tensor as torch stores it: a view (shape, strides, offset, all in elements) into a storage. */
export interface TorchTensor {
  readonly dtype: TorchDtype;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly storageOffset: number;
  /** The whole storage the tensor views (little-endian bytes), shared with any other tensor on the same storage. */
  readonly data: TorchData;
  readonly requiresGrad: boolean;
  /** Whether it was an nn.Parameter (`_rebuild_parameter`). */
  readonly isParameter: boolean;
}

/** An instance of an allowed module class (e.g. dall_e.encoder.Encoder), kept as data: its class name and state. */
export class InertObject {
  /** The class as `module.Name`, e.g. `dall_e.encoder.Encoder`. */
  readonly class: string;
  /** The arguments NEWOBJ or REDUCE passed (empty for an nn.Module). */
  readonly args: PickleTuple;
  /** The state BUILD gave it: for an nn.Module, its `__dict__` (a Map with `_modules`, `_parameters`, ...). */
  state: unknown = null;
  constructor(className: string, args: PickleTuple) {
    this.class = className;
    this.args = args;
  }
}

/** A `torch.device` attribute. */
export class TorchDevice {
  constructor(
    readonly type: string,
    readonly index: number | null,
  ) {}
}

/** A dtype global such as `torch.float32`, when a file pickles one. */
export class TorchDtypeValue {
  constructor(readonly dtype: TorchDtype | string) {}
}

export interface ReadTorchOptions {
  /** More module prefixes whose classes may appear as inert records, beyond `torch.nn.modules.` and `dall_e.`. */
  allowedModulePrefixes?: readonly string[];
  /** Check every entry's CRC-32 (default true; a 100 MB checkpoint takes ~30 ms). */
  verifyCrc?: boolean;
}

const DEFAULT_MODULE_PREFIXES = ['torch.nn.modules.', 'dall_e.'];
const MAX_DIMS = 64;
const MAX_MODULE_DEPTH = 256;
/** Modules plus parameter/buffer/child entries looked at: shared submodules can make a small file describe an
 * exponentially large tree, and this bounds the walk (real models have thousands of entries). */
const MAX_WALK_STEPS = 1 << 22;
/** The most elements toFloat32 converts at once (4 GiB of output). */
const MAX_CONVERT_ELEMENTS = 2 ** 30;
/** The most elements toFloat32 makes of a view larger than its storage (64 MiB of output). */
const MAX_EXPANDED_ELEMENTS = 2 ** 24;

/** torch.save's storage classes (the names it pickles even for typed storages in torch 2.x). */
const STORAGE_DTYPES: Record<string, TorchDtype> = {
  FloatStorage: 'f32', DoubleStorage: 'f64', HalfStorage: 'f16', BFloat16Storage: 'bf16', LongStorage: 'i64',
  IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8', ByteStorage: 'u8', BoolStorage: 'bool', UntypedStorage: 'u8',
};
/** Storage classes that exist but have no use in this library. */
const UNSUPPORTED_STORAGES = new Set([
  'ComplexFloatStorage', 'ComplexDoubleStorage', 'ComplexHalfStorage', 'QInt8Storage', 'QUInt8Storage', 'QInt32Storage',
  'QUInt4x2Storage', 'QUInt2x4Storage',
]);
const DTYPE_GLOBALS: Record<string, TorchDtype> = {
  float32: 'f32', float: 'f32', float64: 'f64', double: 'f64', float16: 'f16', half: 'f16', bfloat16: 'bf16',
  int64: 'i64', long: 'i64', int32: 'i32', int: 'i32', int16: 'i16', short: 'i16', int8: 'i8', uint8: 'u8', bool: 'bool',
};
const ELEMENT_BYTES: Record<TorchDtype, number> = { f32: 4, f64: 8, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

/** The first bytes of a pre-1.6 torch.save file: PROTO 2, then LONG1 of the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function refuse(message: string, code: DalleErrorCode = 'E_INVALID_ARGUMENT'): DalleError {
  return new DalleError(code, message);
}

// --- values the allowlist hands to the pickle machine ---

/** A global the file may call: `construct` is our code, chosen by name, never the file's. */
class AllowedCallable implements PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    private readonly fn: (args: PickleTuple, how: 'reduce' | 'newobj') => unknown,
  ) {}
  construct(args: PickleTuple, how: 'reduce' | 'newobj'): unknown {
    return this.fn(args, how);
  }
}

/** A storage class such as torch.FloatStorage: only ever a tag inside a persistent id, never called. */
class StorageType implements PickleGlobal {
  readonly module = 'torch';
  constructor(
    readonly name: string,
    readonly dtype: TorchDtype,
  ) {}
  construct(): never {
    throw refuse(`torch.${this.name} is only expected inside a storage reference, not called`);
  }
}

/** A module class (dall_e.encoder.Encoder, torch.nn.modules.conv.Conv2d, ...): calling it makes an inert record. */
class ModuleClass implements PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  construct(args: PickleTuple): InertObject {
    return new InertObject(`${this.module}.${this.name}`, args);
  }
}

/** One `data/<key>` entry as elements; a class so that nothing else from the pickle can pass for one. */
class Storage {
  constructor(
    readonly dtype: TorchDtype,
    readonly key: string,
    readonly numel: number,
    readonly data: TorchData,
  ) {}
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function intTuple(v: unknown, what: string): number[] {
  if (!isTuple(v) && !Array.isArray(v)) throw refuse(`${what} is not a tuple of integers`);
  const items = v as readonly unknown[];
  if (items.length > MAX_DIMS) throw refuse(`${what} has ${items.length} dimensions; more than ${MAX_DIMS} is not a real tensor`);
  return items.map((x, i) => {
    if (!isNonNegativeInt(x)) throw refuse(`${what}[${i}] is ${String(x)}, not a non-negative integer`);
    return x;
  });
}

function typedView(dtype: TorchDtype, bytes: Buffer, numel: number): TorchData {
  const size = ELEMENT_BYTES[dtype];
  // Typed arrays need their offset aligned to the element size; torch aligns storages to 64 bytes in the archive,
  // but the Buffer itself may start anywhere in its ArrayBuffer, so copy when it does not line up.
  const src = bytes.byteOffset % size === 0 ? bytes : Buffer.from(bytes);
  const { buffer, byteOffset } = src;
  switch (dtype) {
    case 'f32': return new Float32Array(buffer, byteOffset, numel);
    case 'f64': return new Float64Array(buffer, byteOffset, numel);
    case 'f16':
    case 'bf16': return new Uint16Array(buffer, byteOffset, numel);
    case 'i64': return new BigInt64Array(buffer, byteOffset, numel);
    case 'i32': return new Int32Array(buffer, byteOffset, numel);
    case 'i16': return new Int16Array(buffer, byteOffset, numel);
    case 'i8': return new Int8Array(buffer, byteOffset, numel);
    case 'u8':
    case 'bool': return new Uint8Array(buffer, byteOffset, numel);
  }
}

/** Everything one file's unpickling needs: its archive, storages already loaded, and the allowlist. */
class TorchReader {
  private readonly storages = new Map<string, Storage>();
  private readonly prefixes: readonly string[];
  private readonly callables: Map<string, AllowedCallable>;

  constructor(
    private readonly zip: ZipArchive,
    /** The archive's top folder with its slash, e.g. "archive/" (torch ≥ 2) or "encoder/" (1.x names it after the file). */
    private readonly root: string,
    private readonly options: ReadTorchOptions,
  ) {
    this.prefixes = [...DEFAULT_MODULE_PREFIXES, ...(options.allowedModulePrefixes ?? [])];
    const list: AllowedCallable[] = [
      new AllowedCallable('collections', 'OrderedDict', (args) => {
        if (args.length !== 0) throw refuse('collections.OrderedDict is only expected with no arguments');
        return new Map();
      }),
      ...['builtins', '__builtin__'].flatMap((m) => [
        new AllowedCallable(m, 'set', (args) => new Set(iterableArg(args, `${m}.set`))),
        new AllowedCallable(m, 'frozenset', (args) => Object.freeze(new Set(iterableArg(args, `${m}.frozenset`)))),
      ]),
      new AllowedCallable('torch._utils', '_rebuild_tensor_v2', (args) => this.rebuildTensor(args, '_rebuild_tensor_v2')),
      new AllowedCallable('torch._utils', '_rebuild_tensor', (args) => this.rebuildTensor(args, '_rebuild_tensor')),
      new AllowedCallable('torch._utils', '_rebuild_parameter', (args) => rebuildParameter(args, 3)),
      new AllowedCallable('torch._utils', '_rebuild_parameter_with_state', (args) => rebuildParameter(args, 4)),
      new AllowedCallable('torch', 'device', (args) => makeDevice(args)),
    ];
    this.callables = new Map(list.map((c) => [`${c.module}.${c.name}`, c]));
  }

  load(): unknown {
    const pickle = this.zip.read(`${this.root}data.pkl`, { verifyCrc: this.options.verifyCrc !== false });
    return unpickle(pickle, {
      findGlobal: (module, name) => this.findGlobal(module, name),
      persistentLoad: (pid) => this.loadStorage(pid),
      build: (obj, state) => build(obj, state),
    });
  }

  private findGlobal(module: string, name: string): unknown {
    const callable = this.callables.get(`${module}.${name}`);
    if (callable) return callable;
    if (module === 'torch') {
      if (name in STORAGE_DTYPES) return new StorageType(name, STORAGE_DTYPES[name]!);
      if (UNSUPPORTED_STORAGES.has(name)) throw refuse(`torch.${name} tensors are not supported (only real float, integer and bool tensors)`, 'E_UNSUPPORTED');
      if (name in DTYPE_GLOBALS) return new TorchDtypeValue(DTYPE_GLOBALS[name]!);
    }
    if (this.prefixes.some((p) => module.startsWith(p) || `${module}.` === p)) return new ModuleClass(module, name);
    return undefined;
  }

  /** A persistent id ('storage', storage_type, key, location, numel) → the storage's elements, read once per key. */
  private loadStorage(pid: unknown): Storage {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw refuse(`unexpected persistent id ${describe(pid)}: torch.save writes ('storage', type, key, location, numel)`);
    }
    const [, type, key, location, numel] = pid;
    if (!(type instanceof StorageType)) throw refuse(`persistent id for storage ${describe(key)} has ${describe(type)} where a storage class belongs`);
    if (typeof key !== 'string' || key === '' || !/^[\w.-]+$/.test(key)) throw refuse(`persistent id has a bad storage key ${describe(key)}`);
    if (typeof location !== 'string') throw refuse(`storage ${key} has a bad location ${describe(location)}`);
    if (!isNonNegativeInt(numel)) throw refuse(`storage ${key} has a bad element count ${describe(numel)}`);
    const cacheKey = `${key}:${type.dtype}`;
    const cached = this.storages.get(cacheKey);
    if (cached) return cached;
    const entryName = `${this.root}data/${key}`;
    if (!this.zip.entries.has(entryName)) {
      throw refuse(`data.pkl refers to storage ${JSON.stringify(key)}, but the archive has no entry ${JSON.stringify(entryName)}: the file is incomplete or was edited`);
    }
    const bytes = this.zip.read(entryName, { verifyCrc: this.options.verifyCrc !== false });
    const needed = numel * ELEMENT_BYTES[type.dtype];
    if (bytes.length < needed) {
      throw refuse(`storage ${JSON.stringify(key)} should hold ${numel} ${type.dtype} elements (${needed} bytes) but its entry has only ${bytes.length} bytes`);
    }
    const storage = new Storage(type.dtype, key, numel, typedView(type.dtype, bytes, numel));
    this.storages.set(cacheKey, storage);
    return storage;
  }

  /** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`. */
  private rebuildTensor(args: PickleTuple, fn: string): TorchTensor {
    if (args.length < 4 || args.length > 7) throw refuse(`torch._utils.${fn} with ${args.length} arguments`);
    const storage = args[0];
    if (!(storage instanceof Storage)) throw refuse(`torch._utils.${fn} got ${describe(storage)} where a storage belongs`);
    if (!isNonNegativeInt(args[1])) throw refuse(`tensor storage offset ${describe(args[1])} is not a non-negative integer`);
    const storageOffset = args[1];
    const shape = intTuple(args[2], 'tensor shape');
    const strides = intTuple(args[3], 'tensor strides');
    if (shape.length !== strides.length) throw refuse(`tensor shape [${shape}] and strides [${strides}] differ in length`);
    // Stride-0 (expanded) views may legally be much larger than their storage, but not beyond exact integers.
    if (!Number.isSafeInteger(shape.reduce((a, b) => a * b, 1))) throw refuse(`tensor shape [${shape}] has an impossible number of elements`);
    const requiresGrad = args[4] === true;
    checkInStorage(shape, strides, storageOffset, storage);
    return { dtype: storage.dtype, shape, strides, storageOffset, data: storage.data, requiresGrad, isParameter: false };
  }
}

function iterableArg(args: PickleTuple, what: string): unknown[] {
  if (args.length === 0) return [];
  if (args.length === 1 && Array.isArray(args[0])) return [...(args[0] as unknown[])];
  throw refuse(`${what} is only expected with one list argument`);
}

function makeDevice(args: PickleTuple): TorchDevice {
  const [type, index] = args;
  if (typeof type !== 'string' || args.length > 2 || (index !== undefined && index !== null && !isNonNegativeInt(index))) {
    throw refuse(`torch.device with unexpected arguments ${describe(args)}`);
  }
  // torch.device pickles as device('cuda:0') in some versions and device('cuda', 0) in others.
  const m = /^(\w+)(?::(\d+))?$/.exec(type);
  if (!m) throw refuse(`torch.device ${JSON.stringify(type)} is not a device name`);
  return new TorchDevice(m[1]!, m[2] !== undefined ? Number(m[2]) : typeof index === 'number' ? index : null);
}

function isTorchTensorLike(v: unknown): v is TorchTensor {
  return typeof v === 'object' && v !== null && 'shape' in v && 'strides' in v && 'storageOffset' in v && 'data' in v;
}

/** `_rebuild_parameter(data, requires_grad, backward_hooks)`, and `_with_state(..., state)`. */
function rebuildParameter(args: PickleTuple, arity: number): TorchTensor {
  if (args.length !== arity) throw refuse(`torch._utils._rebuild_parameter expects ${arity} arguments, got ${args.length}`);
  const data = args[0];
  if (!isTorchTensorLike(data)) throw refuse(`a parameter wraps ${describe(data)}, not a tensor`);
  return { ...data, requiresGrad: args[1] === true, isParameter: true };
}

/** The largest storage index a view reaches must exist; an empty view only needs its offset in range. */
function checkInStorage(shape: number[], strides: number[], offset: number, storage: Storage): void {
  let last = offset;
  let empty = false;
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 0) empty = true;
    else last += (shape[d]! - 1) * strides[d]!;
  }
  if (!Number.isSafeInteger(last)) throw refuse(`tensor shape [${shape}] with strides [${strides}] overflows`);
  if (empty ? offset > storage.numel : last >= storage.numel) {
    throw refuse(
      `tensor of shape [${shape}] with strides [${strides}] at offset ${offset} reaches element ${last}, ` +
        `but storage ${JSON.stringify(storage.key)} has only ${storage.numel} ${storage.dtype} elements`,
    );
  }
}

/** BUILD: the state of an inert module record, or the attributes of an OrderedDict (state_dict()'s `_metadata`). */
function build(obj: unknown, state: unknown): unknown {
  if (obj instanceof InertObject) {
    // `(dict, slots)` is how objects with __slots__ pickle their state; merge the two into one dict.
    if (isTuple(state) && state.length === 2) {
      const merged = new Map<unknown, unknown>();
      for (const part of state) if (part instanceof Map) for (const [k, v] of part) merged.set(k, v);
      obj.state = merged;
    } else {
      obj.state = state;
    }
    return obj;
  }
  // An OrderedDict subclass's attributes (state_dict()'s `_metadata`: per-module version numbers) are dropped: they
  // matter to torch's load_state_dict, not to the tensors.
  if (obj instanceof Map && (state instanceof Map || state === null)) return obj;
  throw refuse(`BUILD sets the state of ${describe(obj)}, which nothing in a tensor file does`);
}

/** A short description of a pickled value for messages; depth- and length-capped, since the value is the file's. */
function describe(v: unknown, depth = 0): string {
  if (v === null) return 'None';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (isTuple(v)) {
    if (depth >= 2) return 'a tuple';
    const shown = v.slice(0, 6).map((x) => describe(x, depth + 1));
    return `(${shown.join(', ')}${v.length > 6 ? ', …' : ''})`;
  }
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map) return 'a dict';
  if (v instanceof InertObject) return `a ${v.class}`;
  if (isTorchTensorLike(v)) return 'a tensor';
  if (v instanceof StorageType) return `torch.${v.name}`;
  return typeof v;
}

// --- reading a file ---

function readBytes(pathOrBytes: string | Uint8Array): { bytes: Buffer; label: string } {
  if (typeof pathOrBytes !== 'string') {
    const bytes = Buffer.isBuffer(pathOrBytes) ? pathOrBytes : Buffer.from(pathOrBytes.buffer, pathOrBytes.byteOffset, pathOrBytes.byteLength);
    return { bytes, label: 'torch file' };
  }
  return { bytes: readFileBytes(pathOrBytes), label: pathOrBytes };
}

function isLegacyFormat(bytes: Buffer): boolean {
  if (bytes.length < 2 + LEGACY_MAGIC.length || bytes[0] !== 0x80) return false;
  return LEGACY_MAGIC.every((b, i) => bytes[2 + i] === b);
}

/** The archive folder holding data.pkl; exactly one, since two would leave the tensors ambiguous. */
function findArchiveRoot(zip: ZipArchive): string {
  const names = zip.names();
  const pickles = names.filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pickles.length === 0) {
    const shown = names.slice(0, 5).map((n) => JSON.stringify(n)).join(', ');
    throw refuse(`a zip archive but not a torch.save file: no entry ends in /data.pkl (it has ${names.length} entries${names.length > 0 ? `: ${shown}${names.length > 5 ? ', …' : ''}` : ''})`);
  }
  // Shallowest first: TorchScript archives can carry nested pickles, torch.save's sits one folder down.
  pickles.sort((a, b) => a.split('/').length - b.split('/').length);
  const root = pickles[0]!.slice(0, -'data.pkl'.length);
  if (pickles.length > 1 && pickles[1]!.split('/').length === pickles[0]!.split('/').length) {
    throw refuse(`a zip archive with more than one data.pkl (${pickles.slice(0, 3).join(', ')}); torch.save writes exactly one`);
  }
  if (zip.entries.has(`${root}constants.pkl`) || names.some((n) => n.startsWith(`${root}code/`))) {
    throw refuse(
      'this is a TorchScript archive (torch.jit.save), not a torch.save file; in Python, load it with torch.jit.load ' +
        'and save its state_dict() with torch.save',
      'E_UNSUPPORTED',
    );
  }
  const byteorder = zip.entries.has(`${root}byteorder`) ? zip.read(`${root}byteorder`).toString('latin1') : 'little';
  if (byteorder !== 'little') throw refuse(`storages are stored ${byteorder}-endian; only little-endian files are supported`, 'E_UNSUPPORTED');
  return root;
}

/**
 * Reads a torch.save file (a path or its bytes) and returns the unpickled object: a Map for a state dict, an
 * InertObject for a pickled nn.Module, TorchTensor for tensors. Throws DalleError: E_NOT_FOUND for a missing path,
 * E_UNSUPPORTED for the legacy format and other valid-but-unsupported contents, E_INVALID_ARGUMENT for anything
 * malformed or not allowed (code in the pickle); the message starts with the path.
 */
export function readTorchFile(pathOrBytes: string | Uint8Array, options: ReadTorchOptions = {}): unknown {
  const { bytes, label } = readBytes(pathOrBytes);
  try {
    if (endianness() !== 'LE') throw refuse('reading torch files needs a little-endian machine', 'E_UNSUPPORTED');
    if (isLegacyFormat(bytes)) {
      throw refuse(
        'this is the legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization=False), which is not ' +
          'supported. Re-save it with a modern PyTorch: torch.save(torch.load(path), new_path)',
        'E_UNSUPPORTED',
      );
    }
    if (!ZipArchive.looksLikeZip(bytes)) {
      const what = bytes.length === 0 ? 'the file is empty' : bytes[0] === 0x80 ? 'it is a bare pickle, not a torch.save zip archive' : 'it is not a zip archive';
      throw refuse(`not a torch.save file: ${what}`);
    }
    const zip = new ZipArchive(bytes);
    return new TorchReader(zip, findArchiveRoot(zip), options).load();
  } catch (e) {
    if (e instanceof DalleError) throw new DalleError(e.code, `${label}: ${e.message}`, { cause: e });
    throw e;
  }
}

// --- parameters by name ---

export function isTorchTensor(v: unknown): v is TorchTensor {
  return isTorchTensorLike(v);
}

function stateField(module: InertObject, field: string, path: string): Map<unknown, unknown> | null {
  const state = module.state;
  if (!(state instanceof Map)) throw refuse(`module ${path || '(root)'} (${module.class}) has no state dict`);
  const value = state.get(field);
  if (value === undefined || value === null) return null;
  if (!(value instanceof Map)) throw refuse(`module ${path || '(root)'} (${module.class}) has ${field} = ${describe(value)}, not a dict`);
  return value;
}

/**
 * The tensors of an unpickled nn.Module tree (or a plain state dict) by the names torch's `state_dict()` gives:
 * a module's own parameters, then its persistent buffers, then each child's under `child.`, recursively.
 */
export function moduleParameters(root: unknown): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  if (root instanceof Map) {
    for (const [name, value] of root) {
      if (typeof name === 'string' && isTorchTensorLike(value)) out.set(name, value);
    }
    if (out.size === 0 && root.size > 0) throw refuse('the dict holds no tensors: it is not a state dict');
    return out;
  }
  if (!(root instanceof InertObject)) throw refuse(`the file holds ${describe(root)}, neither a module nor a state dict`);
  let steps = 0;
  const step = (): void => {
    if (++steps > MAX_WALK_STEPS) throw refuse(`more than ${MAX_WALK_STEPS} modules and tensors: the tree is not a real model`);
  };
  const ancestors = new Set<InertObject>();
  const walk = (module: InertObject, prefix: string): void => {
    step();
    if (ancestors.size >= MAX_MODULE_DEPTH) throw refuse(`modules nested more than ${MAX_MODULE_DEPTH} deep at ${prefix}`);
    if (ancestors.has(module)) throw refuse(`module ${prefix.slice(0, -1)} contains itself`);
    ancestors.add(module);
    const path = prefix.slice(0, -1);
    const nonPersistent = module.state instanceof Map ? module.state.get('_non_persistent_buffers_set') : undefined;
    for (const field of ['_parameters', '_buffers']) {
      for (const [name, value] of stateField(module, field, path) ?? []) {
        step();
        if (value === null) continue; // a registered-but-unset parameter or buffer, which state_dict() skips too
        if (field === '_buffers' && nonPersistent instanceof Set && nonPersistent.has(name)) continue;
        if (!isTorchTensorLike(value)) throw refuse(`${prefix}${String(name)} is ${describe(value)}, not a tensor`);
        out.set(`${prefix}${String(name)}`, value);
      }
    }
    for (const [name, child] of stateField(module, '_modules', path) ?? []) {
      step();
      if (child === null) continue;
      if (!(child instanceof InertObject)) throw refuse(`submodule ${prefix}${String(name)} is ${describe(child)}, not a module`);
      walk(child, `${prefix}${String(name)}.`);
    }
    ancestors.delete(module);
  };
  walk(root, '');
  return out;
}

// --- conversion ---

export { halfToFloat };

/** A bf16 is the top half of a float32, so widening is a shift. */
function bf16Reader(): (bits: number) => number {
  const word = new Uint32Array(1);
  const float = new Float32Array(word.buffer);
  return (bits) => {
    word[0] = bits << 16;
    return float[0]!;
  };
}

/**
 * The tensor's values as a new contiguous Float32Array in row-major order of its shape, whatever its strides and
 * storage offset. Floating dtypes only (f32, f16, bf16, f64; f64 is rounded to f32).
 */
export function toFloat32(tensor: TorchTensor): Float32Array {
  const { dtype, shape, strides, storageOffset, data } = tensor;
  let read: (index: number) => number;
  if (dtype === 'f32' || dtype === 'f64') {
    const values = data as Float32Array | Float64Array;
    read = (i) => values[i]!;
  } else if (dtype === 'f16') {
    const bits = data as Uint16Array;
    read = (i) => halfToFloat(bits[i]!);
  } else if (dtype === 'bf16') {
    const bits = data as Uint16Array;
    const widen = bf16Reader();
    read = (i) => widen(bits[i]!);
  } else {
    throw new DalleError('E_DTYPE', `toFloat32 converts floating tensors (f32, f16, bf16, f64), not ${dtype}`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_CONVERT_ELEMENTS) throw new DalleError('E_OUT_OF_MEMORY', `toFloat32: a tensor of shape [${shape}] has ${count} elements, more than ${MAX_CONVERT_ELEMENTS} at once`);
  // A view with more elements than its storage repeats storage elements (stride 0, or overlapping strides): a few
  // bytes of file can describe gigabytes that way. Small broadcast views are expanded; large ones are refused.
  if (count > data.length && count > MAX_EXPANDED_ELEMENTS) {
    throw new DalleError(
      'E_INVALID_ARGUMENT',
      `toFloat32: a view of shape [${shape}] with strides [${strides}] has ${count} elements but its storage only ${data.length}; ` +
        `expanding a repeated view of more than ${MAX_EXPANDED_ELEMENTS} elements is refused (no real weight is stored that way)`,
    );
  }
  const out = new Float32Array(count);
  if (count === 0) return out;
  const rank = shape.length;
  const contiguous = strides.every((s, d) => s === shape.slice(d + 1).reduce((a, b) => a * b, 1) || shape[d] === 1);
  if (contiguous && dtype === 'f32') {
    out.set((data as Float32Array).subarray(storageOffset, storageOffset + count));
    return out;
  }
  // Odometer over the index: bump the last dimension, carrying into earlier ones, keeping the storage index in step.
  const index = new Array<number>(rank).fill(0);
  let at = storageOffset;
  for (let i = 0; i < count; i++) {
    out[i] = read(at);
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        at += strides[d]!;
        break;
      }
      at -= (shape[d]! - 1) * strides[d]!;
      index[d] = 0;
    }
  }
  return out;
}
