// npm install hook: build the native addon unless a usable binary is already there.
// A prebuilt binary (prebuilds/<platform>-<arch>/dalle.node) or DALLE_BINARY skips the build;
// DALLE_FORCE_BUILD=1 builds anyway. Build options pass through, e.g. DALLE_CUDA=OFF.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'dalle.node');
const force = process.env.DALLE_FORCE_BUILD === '1';

if (!force && process.env.DALLE_BINARY) {
  console.log(`dalle-engine: using DALLE_BINARY=${process.env.DALLE_BINARY}, not building`);
  process.exit(0);
}
if (!force && existsSync(prebuilt)) {
  console.log(`dalle-engine: using the prebuilt binary ${prebuilt}`);
  process.exit(0);
}

const args = ['compile', '--out', 'build'];
for (const name of ['DALLE_CUDA', 'DALLE_CUDA_ARCHS', 'DALLE_SANITIZE']) {
  if (process.env[name]) args.push(`--CD${name}=${process.env[name]}`);
}
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'dalle-engine: building the native addon failed. It needs cmake >= 3.18 and a C++17 compiler ' +
      '(nvcc adds the CUDA backend; DALLE_CUDA=OFF skips it). See the output above.',
  );
  process.exit(result.status ?? 1);
}
