/**
 * Hostile paths and files given to the CLI and the readers (issue 24, defects 5–7): each used to print a stack trace,
 * run for minutes before failing, leave files behind, or give a misleading error.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { readManifest } from '../lib/api/model-files.js';
import { openSource as openFolder } from '../lib/data/folder/index.js';
import { DalleError } from '../lib/errors.js';
import { removeStaleTemporaries } from '../lib/formats/files.js';
import { readSafetensors, writeSafetensors } from '../lib/formats/safetensors.js';
import { readTorchFile } from '../lib/formats/torch.js';
import { loadHfJson } from '../lib/tokenizer/formats.js';
import { pattern, pngBytes, tempDir } from './helpers/data-fixtures.js';

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url));
const WEIGHTS = fileURLToPath(new URL('../weights/', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function dalle(args: string[], cwd?: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** A one-line `dalle: … [CODE]` message, exit status 1, no stack trace. */
function assertCleanFailure(t: import('ava').ExecutionContext, run: Run, code: string, message: RegExp): void {
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, new RegExp(`^dalle: .*\\[${code}\\]\\n$`), run.stderr);
  t.regex(run.stderr, message);
  t.notRegex(run.stderr, /\n\s+at /, 'no stack trace');
}

test('-o under a file, or on a folder, fails at once with a message (was: EEXIST stack trace, exit 2)', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  writeFileSync(join(dir, 'plain'), 'x');
  mkdirSync(join(dir, 'folder'));
  const [underFile, onFolder, deep] = await Promise.all([
    dalle(['train-vae', '--data', 'shapes', '--steps', '1', '-o', join(dir, 'plain', 'o.safetensors')]),
    dalle(['train-vae', '--data', 'shapes', '--steps', '1', '-o', join(dir, 'folder')]),
    dalle(['tokenizer', 'train', '--data', 'shapes', '-o', join(dir, 'plain', 'a', 'b', 'tok.json')]),
  ]);
  assertCleanFailure(t, underFile, 'E_INVALID_ARGUMENT', /plain is a file, not a folder/);
  assertCleanFailure(t, onFolder, 'E_INVALID_ARGUMENT', /folder is a folder; give a file name/);
  assertCleanFailure(t, deep, 'E_INVALID_ARGUMENT', /plain is a file, not a folder/);
  const generate = await dalle(['generate', 'a red circle', '--model', join(WEIGHTS, 'shapes32.model.json'), '-o', join(dir, 'plain', 'x.png')]);
  assertCleanFailure(t, generate, 'E_INVALID_ARGUMENT', /plain is a file, not a folder/);
});

test('a missing --data or --tokenizer is E_NOT_FOUND before any data is read (was: still running after 90 s)', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  const dvae = join(WEIGHTS, 'shapes32-dvae.safetensors');
  const runs = await Promise.all([
    dalle(['train-vae', '--data', join(dir, 'nonexistent'), '--steps', '1', '-o', join(dir, 'v.safetensors')]),
    dalle(['train-vae', '--data', join(dir, 'nonexistent.tar'), '--steps', '1', '-o', join(dir, 'v.safetensors')]),
    // 20000 scenes would be rendered and encoded before the tokenizer was read.
    dalle(['train', '--data', 'shapes', '--dvae', dvae, '--tokenizer', join(dir, 'nonexistent.json'), '--steps', '1', '-o', join(dir, 't.safetensors')]),
    dalle(['train-clip', '--data', 'shapes', '--tokenizer', join(dir, 'nonexistent.json'), '--steps', '1', '-o', join(dir, 'c.safetensors')]),
  ]);
  for (const run of runs) {
    assertCleanFailure(t, run, 'E_NOT_FOUND', /nonexistent/);
    t.true(run.ms < 20_000, `took ${run.ms.toFixed(0)} ms`);
  }
  const folderTok = await dalle(['train', '--data', 'shapes', '--dvae', dvae, '--tokenizer', dir, '--steps', '1', '-o', join(dir, 't.safetensors')]);
  assertCleanFailure(t, folderTok, 'E_INVALID_ARGUMENT', /is a folder, not a file/);
});

test('a folder given where a file is expected says so (was: E_NOT_FOUND or "not valid JSON")', (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  const cases: Array<[string, () => unknown]> = [
    ['readSafetensors', () => readSafetensors(dir)],
    ['readTorchFile', () => readTorchFile(dir)],
    ['loadHfJson', () => loadHfJson(dir)],
    ['readManifest', () => readManifest(dir)],
  ];
  for (const [name, f] of cases) {
    const err = t.throws(f, { instanceOf: DalleError }, name);
    t.is(err?.code, 'E_INVALID_ARGUMENT', name);
    t.regex(err?.message ?? '', /is a folder, not a file/, name);
  }
  writeFileSync(join(dir, 'latin1.json'), Buffer.from('{"format": "caf\xe9"}', 'latin1'));
  t.throws(() => readManifest(join(dir, 'latin1.json')), { instanceOf: DalleError, message: /is not UTF-8 text \(first invalid byte at offset 15\)/ });
});

test('a caption .txt that is not UTF-8 is counted as skipped, not read with U+FFFD in it', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  writeFileSync(join(dir, 'a.png'), pngBytes(8, 8, pattern(1)));
  writeFileSync(join(dir, 'a.txt'), 'a red circle');
  writeFileSync(join(dir, 'b.png'), pngBytes(8, 8, pattern(2)));
  writeFileSync(join(dir, 'b.txt'), Buffer.from('a blue caf\xe9', 'latin1'));
  const source = openFolder({ kind: 'folder', path: dir });
  const captions: string[] = [];
  for await (const e of source) captions.push(e.caption);
  t.deepEqual(captions, ['a red circle']);
  t.is(source.skipped.skipped, 1);
  t.deepEqual(source.skipped.reasons, { 'caption not UTF-8': 1 });
  t.deepEqual(source.skipped.samples, [{ key: 'b.png', reason: 'caption not UTF-8' }]);
});

/** The pid of a process that has exited (and been reaped), so no live process has it unless the pid was reused. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('temporaries of killed writers are removed by the next write; a live writer\'s are kept', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  const path = join(dir, 'model.checkpoint.safetensors');
  // A real SIGKILL in the middle of a write: the child writes 64 MB files in a loop until killed.
  const writer = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { writeSafetensors } from ${JSON.stringify(new URL('../lib/formats/safetensors.js', import.meta.url).href)};
    const data = new Float32Array(16 << 20);
    for (;;) await writeSafetensors(${JSON.stringify(path)}, { w: { dtype: 'F32', shape: [data.length], data } });
  `]);
  const tmp = `model.checkpoint.safetensors.tmp-${writer.pid}`;
  const deadline = Date.now() + 30_000;
  while (!readdirSync(dir).includes(tmp) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  writer.kill('SIGKILL');
  await new Promise((r) => writer.once('exit', r));
  t.true(readdirSync(dir).includes(tmp), 'the killed writer left its temporary');

  const live = spawn('sleep', ['30']);
  const liveTmp = `model.checkpoint.safetensors.tmp-${live.pid}`;
  const deadTmp = `model.checkpoint.safetensors.tmp-${deadPid()}`;
  const unrelated = 'other.safetensors.tmp-1';
  for (const name of [liveTmp, deadTmp, unrelated]) writeFileSync(join(dir, name), 'partial');
  try {
    await writeSafetensors(path, { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
    const left = readdirSync(dir).sort();
    t.deepEqual(left, ['model.checkpoint.safetensors', liveTmp, unrelated].sort());
    t.deepEqual([...readSafetensors(path).tensors.keys()], ['w']);
    t.deepEqual(removeStaleTemporaries(path), [], 'nothing more to remove while the live writer runs');
  } finally {
    live.kill();
  }
});
