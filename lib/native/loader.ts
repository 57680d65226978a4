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

/** Where a binary may be, in the order tried. DALLE_BINARY (relative to the working directory) overrides everything. */
export function candidatePaths(root = packageRoot()): string[] {
  const fromEnv = process.env['DALLE_BINARY'];
  // resolve(): require() would read a bare relative path as a package name.
  if (fromEnv) return [resolve(fromEnv)];
  return [
    join(root, 'build', 'Release', 'dalle.node'),
    join(root, 'build', 'Debug', 'dalle.node'),
    join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'dalle.node'),
  ];
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

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const attempts: { path: string; reason: string }[] = [];
  for (const path of candidatePaths()) {
    if (!existsSync(path)) {
      attempts.push({ path, reason: 'no such file' });
      continue;
    }
    try {
      const addon = require(path) as NativeAddon;
      addon.setErrorFactory((code, message) => new DalleError(code as DalleErrorCode, message));
      cached = addon;
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
      'or point DALLE_BINARY at a dalle.node you built.',
    attempts,
  );
}
