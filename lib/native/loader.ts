/**
 * Finds and loads the native binary. When nothing loads, throws one DalleLoadError that lists
 * every path tried, why each failed, and how to fix it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DalleError, DalleLoadError, type DalleErrorCode } from '../errors.js';
import type { NativeAddon } from './addon.js';

const require = createRequire(import.meta.url);

/** The package root: the nearest folder above this file whose package.json is ours. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'dalle-engine') return dir;
      } catch {
        // an unreadable package.json above us is not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new DalleLoadError('could not find the dalle-engine package root', []);
    dir = parent;
  }
}

/** The optional npm package that carries the CUDA binary for this platform (installed only where it fits). */
export function cudaPackageName(platform: string = process.platform, cpuArch: string = process.arch): string {
  return `dalle-engine-${platform}-${cpuArch}-cuda`;
}

/**
 * Whether an NVIDIA driver is present, without loading anything: a CUDA binary on a machine without one loads but
 * cannot use the GPU, so it is not worth its size. Returns the reason when there is none.
 */
export function probeNvidiaDriver(): { present: boolean; reason: string } {
  if (process.platform !== 'linux') return { present: false, reason: `CUDA binaries are built for Linux only (this is ${process.platform})` };
  if (existsSync('/proc/driver/nvidia/version')) return { present: true, reason: 'NVIDIA driver loaded (/proc/driver/nvidia/version)' };
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib/wsl/lib', '/usr/local/nvidia/lib64', '/usr/lib/aarch64-linux-gnu'];
  const lib = dirs.map((d) => join(d, 'libcuda.so.1')).find((p) => existsSync(p));
  if (lib) return { present: true, reason: `CUDA driver library found at ${lib}` };
  return { present: false, reason: 'no NVIDIA driver (no /proc/driver/nvidia/version, no libcuda.so.1)' };
}

export interface Candidate {
  path: string;
  kind: 'explicit' | 'local build' | 'cuda package' | 'cpu prebuild';
  /** Set when the candidate is not tried, and why. */
  skip?: string;
}

/**
 * Where a binary may be, in the order tried: DALLE_BINARY alone when set (relative to the working directory);
 * otherwise a local build (a developer's checkout), then the CUDA package when a driver is present, then the prebuilt
 * CPU binary. DALLE_BACKEND=cpu leaves the CUDA package out; DALLE_BACKEND=cuda keeps only CUDA-capable candidates.
 */
export function candidates(root = packageRoot()): Candidate[] {
  const fromEnv = process.env['DALLE_BINARY'];
  // resolve(): require() would read a bare relative path as a package name.
  if (fromEnv) return [{ path: resolve(fromEnv), kind: 'explicit' }];
  const backend = process.env['DALLE_BACKEND'];
  if (backend !== undefined && backend !== '' && backend !== 'cpu' && backend !== 'cuda') {
    throw new DalleLoadError(`DALLE_BACKEND must be 'cpu' or 'cuda', got ${JSON.stringify(backend)}`, []);
  }
  const list: Candidate[] = [
    { path: join(root, 'build', 'Release', 'dalle.node'), kind: 'local build' },
    { path: join(root, 'build', 'Debug', 'dalle.node'), kind: 'local build' },
  ];
  const cudaPkg = cudaPackageName();
  let cudaPath: string;
  try {
    cudaPath = dirname(require.resolve(`${cudaPkg}/package.json`, { paths: [root] }));
    cudaPath = join(cudaPath, 'dalle.node');
  } catch {
    cudaPath = join(root, 'node_modules', cudaPkg, 'dalle.node');
  }
  const driver = probeNvidiaDriver();
  const cuda: Candidate = { path: cudaPath, kind: 'cuda package' };
  if (backend === 'cpu') cuda.skip = 'DALLE_BACKEND=cpu';
  else if (!driver.present) cuda.skip = driver.reason;
  list.push(cuda);
  const cpu: Candidate = { path: join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'dalle.node'), kind: 'cpu prebuild' };
  if (backend === 'cuda') cpu.skip = 'DALLE_BACKEND=cuda (this binary has no CUDA backend)';
  list.push(cpu);
  return list;
}

/** The paths of {@link candidates}, in order. */
export function candidatePaths(root = packageRoot()): string[] {
  return candidates(root).map((c) => c.path);
}

function explain(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const msg = e?.message ?? String(err);
  if (/GLIBC|GLIBCXX/.test(msg)) return `${msg} (the C/C++ runtime here is older than the one it was built with)`;
  if (/undefined symbol: __asan|libasan/.test(msg))
    return `${msg} (a sanitizer build: run node with LD_PRELOAD=$(gcc -print-file-name=libasan.so))`;
  if (/wrong ELF class|invalid ELF header|file too short|not a mach-o/i.test(msg))
    return `${msg} (not a valid native binary here: truncated, or built for another platform or architecture)`;
  return msg;
}

let cached: NativeAddon | undefined;
let loadedFrom: Candidate | undefined;

/** Which binary loadAddon() loaded (undefined before it has). */
export function loadedBinary(): Candidate | undefined {
  return loadedFrom;
}

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const attempts: { path: string; reason: string }[] = [];
  for (const candidate of candidates()) {
    const { path } = candidate;
    if (candidate.skip) {
      attempts.push({ path, reason: `${existsSync(path) ? 'skipped' : 'not installed, and skipped anyway'}: ${candidate.skip}` });
      continue;
    }
    if (!existsSync(path)) {
      attempts.push({ path, reason: 'no such file' });
      continue;
    }
    try {
      const addon = require(path) as NativeAddon;
      addon.setErrorFactory((code, message) => new DalleError(code as DalleErrorCode, message));
      if (candidate.kind === 'cuda package' || process.env['DALLE_BACKEND'] === 'cuda') {
        const info = addon.buildInfo();
        if (!info.cudaCompiled || info.cudaDevices === 0) {
          attempts.push({ path, reason: `loaded, but no usable GPU: ${info.cudaCompiled ? info.cudaError || 'no CUDA device' : 'built without CUDA'}` });
          if (process.env['DALLE_BACKEND'] === 'cuda') continue;
        }
      }
      cached = addon;
      loadedFrom = candidate;
      return addon;
    } catch (err) {
      attempts.push({ path, reason: explain(err) });
    }
  }
  const lines = attempts.map((a) => `  - ${a.path}: ${a.reason}`).join('\n');
  throw new DalleLoadError(
    `dalle-engine: could not load the native binary for ${process.platform}-${process.arch} (Node ${process.version}).\n` +
      `Tried:\n${lines}\n` +
      'To fix: build it with `npm run build:native` (needs cmake and a C++17 compiler; nvcc adds the CUDA backend), ' +
      'or point DALLE_BINARY at a dalle.node you built. DALLE_BACKEND=cpu or cuda restricts the choice.',
    attempts,
  );
}
