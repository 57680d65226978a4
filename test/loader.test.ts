import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

// A fresh process, because the loader caches the addon it found.
function loadWith(binary: string, env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const script = `
    import { loadAddon, DalleLoadError } from ${JSON.stringify(new URL('../lib/index.ts', import.meta.url).href)};
    try { loadAddon(); console.log('LOADED'); }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, isLoadError: e instanceof DalleLoadError, attempts: e.attempts, message: e.message })); }
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, DALLE_BINARY: binary, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('a missing binary gives one DalleLoadError that lists what was tried and how to fix it', (t) => {
  const { out } = loadWith('/nonexistent/dalle.node');
  const line = out.split('\n').find((l) => l.startsWith('{'));
  t.truthy(line, out);
  const err = JSON.parse(line!) as { code: string; isLoadError: boolean; attempts: { path: string; reason: string }[]; message: string };
  t.true(err.isLoadError);
  t.is(err.code, 'E_LOAD');
  t.deepEqual(err.attempts, [{ path: '/nonexistent/dalle.node', reason: 'no such file' }]);
  t.regex(err.message, /npm run build:native/);
  t.regex(err.message, /DALLE_BINARY/);
});

test('a relative DALLE_BINARY is read from the working directory', (t) => {
  const { out } = loadWith(join('no-such-build', 'dalle.node'));
  const err = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { attempts: { path: string; reason: string }[] };
  t.deepEqual(err.attempts, [{ path: join(process.cwd(), 'no-such-build', 'dalle.node'), reason: 'no such file' }]);
});

test('a file that is not a shared library is explained, not a crash', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-loader-'));
  const bogus = join(dir, 'dalle.node');
  writeFileSync(bogus, 'not an ELF file');
  const { status, out } = loadWith(bogus);
  t.is(status, 0, out);
  const err = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { attempts: { reason: string }[] };
  t.regex(err.attempts[0]!.reason, /not a valid native binary/);
});

test('DALLE_NUM_THREADS caps the thread pool; a value that is not a positive integer means every core', (t) => {
  const threadsWith = (value: string): number => {
    const script = `import { buildInfo } from ${JSON.stringify(new URL('../lib/index.ts', import.meta.url).href)}; console.log(buildInfo().threads);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, DALLE_NUM_THREADS: value },
      encoding: 'utf8',
    });
    return Number(r.stdout.trim());
  };
  t.is(threadsWith('1'), 1);
  const all = threadsWith('');
  t.true(all >= 1);
  for (const bad of ['0', '-2', 'two', '3x', '99999']) t.is(threadsWith(bad), all, bad);
});

test('DALLE_BACKEND=cuda accepts only a binary that sees a GPU and says why each other one was passed over', (t) => {
  const { out } = loadWith('', { DALLE_BACKEND: 'cuda' });
  if (out.includes('LOADED')) return t.pass('a GPU is present: the CUDA build loaded');
  const err = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { code: string; attempts: { path: string; reason: string }[] };
  t.is(err.code, 'E_LOAD');
  const reason = (end: string) => err.attempts.find((a) => a.path.endsWith(end))?.reason ?? '';
  t.regex(reason('prebuilds/linux-x64/dalle.node'), /DALLE_BACKEND=cuda \(this binary has no CUDA backend\)/);
  t.regex(reason('-cuda/dalle.node'), /no NVIDIA driver|not installed/);
  t.regex(reason('build/Release/dalle.node'), /no usable GPU|built without CUDA|no such file/);
});

test('a DALLE_BACKEND that is not cpu or cuda is refused by name', (t) => {
  const { out } = loadWith('', { DALLE_BACKEND: 'tpu' });
  t.regex(out, /DALLE_BACKEND must be 'cpu' or 'cuda', got \\?"tpu\\?"/);
});
