/**
 * The static resource table (native/cuda/RESOURCES.md: registers, spills, static shared memory of every CUDA kernel,
 * from ptxas for sm_90a) must match the sources, so a kernel's cost is visible in review. Needs nvcc (CI has it).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import test from 'ava';

const root = fileURLToPath(new URL('..', import.meta.url));
const hasNvcc = spawnSync('sh', ['-c', 'command -v nvcc']).status === 0;

(hasNvcc ? test : test.skip)('cuda resources: native/cuda/RESOURCES.md is up to date', (t) => {
  t.timeout(10 * 60_000);
  const r = spawnSync(process.execPath, ['scripts/cuda-resources.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  t.regex(r.stdout, /RESOURCES\.md is up to date \(\d+ kernels in \d+ files\)/);
  t.log(r.stdout.trim());
});
