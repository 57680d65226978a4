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

function checkShape(shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new DalleError('E_INVALID_ARGUMENT', 'shape must be an array');
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new DalleError('E_INVALID_ARGUMENT', `bad shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export class Tensor implements Disposable {
  #handle: NativeTensorHandle | null;

  /** Wraps a native handle; takes ownership of it. */
  constructor(handle: NativeTensorHandle) {
    this.#handle = handle;
    finalizer.register(this, handle, this);
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
    const isTyped = data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint16Array;
    if (!isTyped && !(Array.isArray(data) && data.every((v) => typeof v === 'number')))
      throw new DalleError('E_INVALID_ARGUMENT', 'data must be a Float32Array, Int32Array, Uint16Array or an array of numbers');
    if (typeof options !== 'object' || options === null) throw new DalleError('E_INVALID_ARGUMENT', 'options must be an object');
    const n = checkShape(shape);
    const dtype: DType =
      options.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'bf16' : 'f32');
    if (data.length !== n)
      throw new DalleError('E_INVALID_ARGUMENT', `data has ${data.length} values, shape [${shape.join(', ')}] needs ${n}`);
    let bytes: ArrayBufferView;
    if (dtype === 'f32') bytes = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    else if (dtype === 'i32') {
      if (!(data instanceof Int32Array)) {
        for (const v of data as readonly number[])
          if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)
            throw new DalleError('E_INVALID_ARGUMENT', `i32 data must be 32-bit integers, got ${v}`);
      }
      bytes = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
    } else bytes = data instanceof Uint16Array ? data : f32ToBf16(Float32Array.from(data as ArrayLike<number>));
    const t = new Tensor(loadAddon().empty(shape, dtype, 'cpu'));
    t.handle.write(bytes);
    if ((options.device ?? 'cpu') === 'cpu') return t;
    try {
      return t.to(options.device ?? 'cpu');
    } finally {
      t.dispose();
    }
  }

  /** The native handle; throws E_DISPOSED after dispose(). For lib/ internals. */
  get handle(): NativeTensorHandle {
    if (!this.#handle) throw new DalleError('E_DISPOSED', 'tensor was disposed');
    return this.#handle;
  }

  get disposed(): boolean {
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
    if (!(data instanceof want)) throw new DalleError('E_DTYPE', `write: tensor is ${this.dtype}, got ${data.constructor.name}`);
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
    if (!this.#handle) return;
    finalizer.unregister(this);
    this.#handle.dispose();
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.#handle ? `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})` : 'Tensor(disposed)';
  }
}
