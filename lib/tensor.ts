/**
 * Tensor: a typed handle on native memory (CPU or CUDA). Always contiguous; reshape() gives a
 * view on the same memory. Free it with dispose() or a `using` declaration; a tensor that is
 * garbage collected undisposed is freed too, but GC timing is not a memory strategy.
 */
import { DalleError } from './errors.js';
import { bf16ToF32, f32ToBf16 } from './formats/half.js';
import { loadAddon } from './native/loader.js';
import type { NativeDevice, NativeDType, NativeTensorHandle } from './native/addon.js';

export { bf16ToF32, f32ToBf16 };

export type DType = NativeDType;
export type DeviceName = NativeDevice;
export type TensorData = Float32Array | Int32Array | Uint16Array | readonly number[];

export interface TensorOptions {
  dtype?: DType;
  device?: DeviceName;
}

const finalizer = new FinalizationRegistry<NativeTensorHandle>((handle) => handle.dispose());

/** A caller's value in an error message; String() itself throws for symbols and null-prototype objects. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function checkShape(shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new DalleError('E_INVALID_ARGUMENT', 'shape must be an array');
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    // Names the one bad dim: printing the whole shape would walk all 2^32 - 1 slots of a sparse one.
    if (!Number.isInteger(d) || (d as number) < 0)
      throw new DalleError('E_INVALID_ARGUMENT', `bad shape: dim ${i} of ${shape.length} is ${show(d)}, not a non-negative integer`);
    n *= d as number;
  }
  return n;
}

/**
 * The values of Tensor.from's data, each read once: the typed array itself, or a copy of a number array (a Proxy or
 * getters could answer differently on a second read); undefined for anything else. A hole is not a number (every()
 * skipped holes, which then became NaN), and the first non-number ends the scan, so new Array(2 ** 32 - 1) is
 * refused at once instead of walked.
 */
function valuesOf(data: unknown): Float32Array | Int32Array | Uint16Array | number[] | undefined {
  // isView first: a Proxy of a typed array passes instanceof, and then every typed-array getter throws a TypeError.
  if (ArrayBuffer.isView(data)) {
    // One over a detached buffer cannot be read, not even to copy nothing: use a fresh empty one. The buffer's
    // byteLength is what tells (0 once detached), not the view's length, which optimised code was seen to misreport.
    const empty = data.buffer.byteLength === 0 || data.byteLength === 0;
    if (data instanceof Float32Array) return empty ? new Float32Array(0) : data;
    if (data instanceof Int32Array) return empty ? new Int32Array(0) : data;
    if (data instanceof Uint16Array) return empty ? new Uint16Array(0) : data;
    return undefined;
  }
  if (!Array.isArray(data)) return undefined;
  const values: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number') return undefined;
    values.push(v);
  }
  return values;
}

export class Tensor implements Disposable {
  #handle: NativeTensorHandle | null;

  /** Wraps a native handle; takes ownership of it. */
  constructor(handle: NativeTensorHandle) {
    // Anything else would throw from every accessor, and from the finalizer, where a throw ends the process.
    if (!loadAddon().isTensorHandle(handle)) throw new DalleError('E_INVALID_ARGUMENT', `new Tensor: expected a native tensor handle, got ${show(handle)}`);
    this.#handle = handle;
    finalizer.register(this, handle, this);
  }

  /** Whether `value` is a Tensor: unlike instanceof, false for Object.create(Tensor.prototype) and Proxies of one. */
  static isTensor(value: unknown): value is Tensor {
    return typeof value === 'object' && value !== null && #handle in value;
  }

  /**
   * Refuses a receiver that only inherits Tensor's getters (Object.create(Tensor.prototype), a Proxy of a tensor,
   * an options object built that way): reading its private field would be a TypeError.
   */
  static #own(receiver: Tensor): void {
    if (!Tensor.isTensor(receiver)) throw new DalleError('E_INVALID_ARGUMENT', 'not a Tensor: an object that only inherits from Tensor.prototype');
  }

  /** Zero-filled tensor. */
  static zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
    if (typeof options !== 'object' || options === null) throw new DalleError('E_INVALID_ARGUMENT', 'options must be an object');
    checkShape(shape);
    return new Tensor(loadAddon().empty(shape, options.dtype ?? 'f32', options.device ?? 'cpu'));
  }

  /**
   * A tensor holding a copy of `data`. Float32Array and number[] default to f32 (converted when
   * dtype is 'bf16'), Int32Array to i32; a Uint16Array is taken as raw bf16 bits.
   */
  static from(data: TensorData, shape: readonly number[], options: TensorOptions = {}): Tensor {
    const values = valuesOf(data);
    if (!values) throw new DalleError('E_INVALID_ARGUMENT', 'data must be a Float32Array, Int32Array, Uint16Array or an array of numbers');
    if (typeof options !== 'object' || options === null) throw new DalleError('E_INVALID_ARGUMENT', 'options must be an object');
    const n = checkShape(shape);
    const dtype: DType =
      options.dtype ?? (values instanceof Int32Array ? 'i32' : values instanceof Uint16Array ? 'bf16' : 'f32');
    const device = options.device ?? 'cpu';
    if (values.length !== n)
      throw new DalleError('E_INVALID_ARGUMENT', `data has ${values.length} values, shape [${shape.join(', ')}] needs ${n}`);
    // Conversions by the typed-array constructors, which read a typed array's elements directly: from() would call
    // its iterator, which an instance may override.
    let bytes: ArrayBufferView;
    if (dtype === 'f32') bytes = values instanceof Float32Array ? values : new Float32Array(values);
    else if (dtype === 'i32') {
      if (!(values instanceof Int32Array)) {
        for (let i = 0; i < values.length; i++) {
          const v = values[i]!;
          if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)
            throw new DalleError('E_INVALID_ARGUMENT', `i32 data must be 32-bit integers, got ${v}`);
        }
      }
      bytes = values instanceof Int32Array ? values : new Int32Array(values);
    } else bytes = values instanceof Uint16Array ? values : f32ToBf16(new Float32Array(values));
    const t = new Tensor(loadAddon().empty(shape, dtype, 'cpu'));
    try {
      t.handle.write(bytes);
      if (device === 'cpu') return t;
      const moved = t.to(device);
      t.dispose();
      return moved;
    } catch (err) {
      // Not left for the garbage collector: its memory may be large, and the collector sees only the small handle.
      t.dispose();
      throw err;
    }
  }

  /** The native handle; throws E_DISPOSED after dispose(). For lib/ internals. */
  get handle(): NativeTensorHandle {
    Tensor.#own(this);
    if (!this.#handle) throw new DalleError('E_DISPOSED', 'tensor was disposed');
    return this.#handle;
  }

  get disposed(): boolean {
    Tensor.#own(this);
    return this.#handle === null;
  }
  get shape(): readonly number[] {
    return this.handle.shape;
  }
  get dtype(): DType {
    return this.handle.dtype;
  }
  get device(): DeviceName {
    return this.handle.device;
  }
  /** Number of elements. */
  get size(): number {
    return this.handle.shape.reduce((a, b) => a * b, 1);
  }

  /** The values as a Float32Array (bf16 converted); i32 tensors are refused. */
  toFloat32Array(): Float32Array {
    const buf = this.handle.read();
    if (this.dtype === 'f32') return new Float32Array(buf);
    if (this.dtype === 'bf16') return bf16ToF32(new Uint16Array(buf));
    throw new DalleError('E_DTYPE', 'toFloat32Array: tensor is i32; use toInt32Array()');
  }

  toInt32Array(): Int32Array {
    if (this.dtype !== 'i32') throw new DalleError('E_DTYPE', `toInt32Array: tensor is ${this.dtype}`);
    return new Int32Array(this.handle.read());
  }

  /** Raw bf16 bits. */
  toUint16Array(): Uint16Array {
    if (this.dtype !== 'bf16') throw new DalleError('E_DTYPE', `toUint16Array: tensor is ${this.dtype}`);
    return new Uint16Array(this.handle.read());
  }

  /** Overwrites the contents with `data` (same element count and dtype). */
  write(data: Float32Array | Int32Array | Uint16Array): void {
    const want = this.dtype === 'f32' ? Float32Array : this.dtype === 'i32' ? Int32Array : Uint16Array;
    if (!(data instanceof want)) {
      const got = typeof data === 'object' && data !== null && typeof data.constructor === 'function' ? data.constructor.name : show(data);
      throw new DalleError('E_DTYPE', `write: tensor is ${this.dtype}, got ${got}`);
    }
    this.handle.write(data);
  }

  /** A view with another shape over the same memory; disposing either leaves the other valid. */
  reshape(shape: readonly number[]): Tensor {
    checkShape(shape);
    return new Tensor(this.handle.reshape(shape));
  }

  /** A copy on `device`. */
  to(device: DeviceName): Tensor {
    return new Tensor(this.handle.to(device));
  }

  dispose(): void {
    Tensor.#own(this);
    if (!this.#handle) return;
    finalizer.unregister(this);
    this.#handle.dispose();
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    Tensor.#own(this);
    return this.#handle ? `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})` : 'Tensor(disposed)';
  }
}
