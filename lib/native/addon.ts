/** The typed shape of the native addon (bindings/). Only lib/ talks to it directly. */

export type NativeDType = 'f32' | 'bf16' | 'i32';
export type NativeDevice = 'cpu' | 'cuda';

export interface NativeTensorHandle {
  readonly shape: number[];
  readonly dtype: NativeDType;
  readonly device: NativeDevice;
  readonly disposed: boolean;
  readonly byteLength: number;
  read(): ArrayBuffer;
  write(data: ArrayBufferView): void;
  reshape(shape: readonly number[]): NativeTensorHandle;
  to(device: NativeDevice): NativeTensorHandle;
  dispose(): void;
}

export interface NativeOpInfo {
  name: string;
  inputs: string[];
  outputs: string[];
  mutatedInputs: number[];
  cuda: boolean;
}

export interface NativeBuildInfo {
  cudaCompiled: boolean;
  cudaDevices: number;
  cudaDeviceName: string;
  cudaError: string;
  cublasLt: boolean;
  /** The CUDA device is the emulated one (a DALLE_CUDA=EMULATE build): kernels run on the CPU, for tests. */
  cudaEmulated: boolean;
  simd: string;
  activeSimd: string;
  threads: number;
  sanitized: boolean;
  napiVersion: number;
}

export type NativeAttrs = Record<string, number | boolean | undefined>;

export interface NativeArena {
  flat: NativeTensorHandle;
  tensors: NativeTensorHandle[];
  offsets: number[];
  byteLength: number;
}

export interface NativeAddon {
  TensorHandle: unknown;
  empty(shape: readonly number[], dtype: NativeDType, device: NativeDevice): NativeTensorHandle;
  /** A handle the addon made (disposed or not); false for look-alikes: Object.create(TensorHandle.prototype), Proxies. */
  isTensorHandle(value: unknown): value is NativeTensorHandle;
  createArena(
    specs: ReadonlyArray<{ name: string; dtype: NativeDType; shape: readonly number[] }>,
    device: NativeDevice,
  ): NativeArena;
  /** New output handles; nothing when `outputs` are given (they are written in place). */
  runOp(name: string, inputs: readonly NativeTensorHandle[], attrs?: NativeAttrs): NativeTensorHandle[];
  runOp(name: string, inputs: readonly NativeTensorHandle[], attrs: NativeAttrs | undefined, outputs: readonly NativeTensorHandle[]): undefined;
  runOpAsync(name: string, inputs: readonly NativeTensorHandle[], attrs?: NativeAttrs): Promise<NativeTensorHandle[]>;
  runOpAsync(name: string, inputs: readonly NativeTensorHandle[], attrs: NativeAttrs | undefined, outputs: readonly NativeTensorHandle[]): Promise<undefined>;
  opNames(): string[];
  opInfo(name: string): NativeOpInfo;
  setCheckFinite(on: boolean): void;
  buildInfo(): NativeBuildInfo;
  liveBytes(device: NativeDevice): number;
  cachedBytes(): number;
  releaseCachedMemory(): number;
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  setSimdLevel(level: number): string;
  /** The CUDA self-test cases compiled in (native/cuda/selftest); none without CUDA. */
  cudaSelfTests(): { name: string; kind: 'primitive' | 'refusal' | 'misuse' }[];
  runCudaSelfTest(name: string): { ok: boolean; message: string };
}
