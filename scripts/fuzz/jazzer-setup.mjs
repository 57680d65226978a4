/**
 * Makes Jazzer.js runnable here. Its prebuilt fuzzer addon (libFuzzer inside) is linked against glibc 2.38 and the
 * libstdc++ of GCC 13; Debian 12 has glibc 2.36 and GCC 12, so `require('@jazzer.js/fuzzer')` fails with "version
 * `GLIBC_2.38' not found". The addon uses only three symbols of those versions (C23 strtol/strtoul and a libstdc++
 * marker function), so instead of rebuilding libFuzzer we mark the two versions weak in a copy of the addon and
 * preload a tiny library defining the three symbols (jazzer-compat.cpp). Where the stock addon loads, nothing is done.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { weakenVersionRequirements } from './elf-weak-versions.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MISSING_VERSIONS = ['GLIBC_2.38', 'GLIBCXX_3.4.32'];

function stockAddonPath() {
  const require = createRequire(import.meta.url);
  const fuzzerPackage = dirname(require.resolve('@jazzer.js/fuzzer/package.json'));
  return join(fuzzerPackage, 'prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);
}

/** Why `require('@jazzer.js/fuzzer')` fails in a fresh process with `env`, or null when it loads. */
function loadFailure(env) {
  const probe = spawnSync(process.execPath, ['-e', "require('@jazzer.js/fuzzer')"], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return probe.status === 0 ? null : (probe.stderr.split('\n').find((line) => /Error/.test(line)) ?? `exit ${probe.status}`);
}

function newerThan(output, input) {
  return existsSync(output) && statSync(output).mtimeMs >= statSync(input).mtimeMs;
}

/** Returns the environment a fuzzing process needs (empty where Jazzer.js loads as installed). */
export function prepareJazzer(workDir) {
  const stock = stockAddonPath();
  if (!existsSync(stock)) throw new Error(`no Jazzer.js fuzzer addon at ${stock}: run npm install (devDependencies)`);
  const stockFailure = loadFailure({});
  if (stockFailure === null) return {};

  const dir = resolve(workDir, 'jazzer');
  mkdirSync(dir, { recursive: true });
  const compatSource = join(here, 'jazzer-compat.cpp');
  const compatLibrary = join(dir, 'libjazzer-compat.so');
  if (!newerThan(compatLibrary, compatSource)) {
    const cxx = process.env.CXX ?? 'g++';
    const built = spawnSync(cxx, ['-shared', '-fPIC', '-O2', '-o', compatLibrary, compatSource], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`building ${compatLibrary} with ${cxx} failed:\n${built.stderr ?? built.error}`);
  }
  const loadable = join(dir, 'fuzzer.node');
  if (!newerThan(loadable, stock)) {
    const { elf, weakened } = weakenVersionRequirements(readFileSync(stock), MISSING_VERSIONS);
    if (weakened.length === 0) throw new Error(`${stock} does not load (${stockFailure}) and needs none of ${MISSING_VERSIONS.join(', ')}`);
    writeFileSync(loadable, elf);
  }
  const env = {
    LD_PRELOAD: [compatLibrary, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    NODE_OPTIONS: [`--require=${join(here, 'jazzer-preload.cjs')}`, process.env.NODE_OPTIONS].filter(Boolean).join(' '),
    DALLE_FUZZ_STOCK_ADDON: stock,
    DALLE_FUZZ_LOADABLE_ADDON: loadable,
  };
  const failure = loadFailure(env);
  if (failure !== null) throw new Error(`Jazzer.js does not load here: as installed, ${stockFailure}; with the compatibility shim, ${failure}`);
  return env;
}
