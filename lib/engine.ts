/** Engine-wide facts and switches: build info, memory accounting, finite checking, arenas. */
import { DalleError } from './errors.js';
import { loadAddon } from './native/loader.js';
import type { NativeBuildInfo } from './native/addon.js';
import { Tensor, type DeviceName, type DType } from './tensor.js';

export type BuildInfo = NativeBuildInfo;

/** What this binary was built with and what it found on this machine. */
export function buildInfo(): BuildInfo {
  return loadAddon().buildInfo();
}

/** Bytes of tensor memory currently allocated on `device` (all tensors, arenas included). */
export function liveBytes(device: DeviceName = 'cpu'): number {
  return loadAddon().liveBytes(device);
}

/**
 * Bytes of CPU memory kept for reuse after tensors were freed (blocks of 256 KiB and more, up to DALLE_CPU_CACHE_MB,
 * default 1024). Training allocates the same sizes every step; reusing them keeps memory and speed flat.
 */
export function cachedBytes(): number {
  return loadAddon().cachedBytes();
}

/** Returns the reuse cache to the system (live tensors are untouched); returns the bytes released. */
export function releaseCachedMemory(): number {
  return loadAddon().releaseCachedMemory();
}

/**
 * When on, every op scans its f32 inputs and throws E_NON_FINITE on NaN/Inf, naming the op,
 * the argument and the index. Off by default (NaN then propagates, as in IEEE arithmetic).
 */
export function setCheckFinite(on: boolean): void {
  loadAddon().setCheckFinite(on);
}

export type SimdLevel = 'scalar' | 'avx2-fma' | 'avx512';
const simdLevels: SimdLevel[] = ['scalar', 'avx2-fma', 'avx512'];

/** Caps the CPU instruction set kernels use (for testing each path); null restores the best. */
export function setSimdLevel(level: SimdLevel | null): SimdLevel {
  const n = level === null ? -1 : simdLevels.indexOf(level);
  if (level !== null && n < 0) throw new DalleError('E_INVALID_ARGUMENT', `unknown SIMD level '${level}'`);
  return loadAddon().setSimdLevel(n) as SimdLevel;
}

export interface ArenaSpec {
  name: string;
  shape: readonly number[];
  dtype?: DType;
}

/**
 * One allocation sliced into named tensors (parameters, gradients, moments...). `flat` views
 * all of it as f32, padding included, for whole-arena ops such as clipping and AdamW.
 */
export class Arena implements Disposable {
  readonly flat: Tensor;
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly byteLength: number;

  constructor(specs: readonly ArenaSpec[], device: DeviceName = 'cpu') {
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new DalleError('E_INVALID_ARGUMENT', `arena: duplicate name '${s.name}'`);
      names.add(s.name);
    }
    const native = loadAddon().createArena(
      specs.map((s) => ({ name: s.name, dtype: s.dtype ?? 'f32', shape: s.shape })),
      device,
    );
    this.flat = new Tensor(native.flat);
    this.tensors = new Map(specs.map((s, i) => [s.name, new Tensor(native.tensors[i]!)]));
    this.byteLength = native.byteLength;
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new DalleError('E_NOT_FOUND', `arena has no tensor named '${name}'`);
    return t;
  }

  dispose(): void {
    this.flat.dispose();
    for (const t of this.tensors.values()) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
