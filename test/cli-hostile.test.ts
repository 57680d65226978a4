/**
 * Hostile paths and files given to the CLI and the readers (issue 24, defects 5–7): each used to print a stack trace,
 * run for minutes before failing, leave files behind, or give a misleading error.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
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
import { jpegDeclaring, pattern, pngBytes, pngDeclaring, tarBytes, tempDir } from './helpers/data-fixtures.js';

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
      // A signal (SIGABRT from a native assertion, SIGKILL at the timeout) reads as the code a shell would give.
      const failure = err as { code?: number | string | null; signal?: NodeJS.Signals | null } | null;
      const code = failure === null ? 0 : failure.signal ? 128 + (osConstants.signals[failure.signal] ?? 0) : Number(failure.code ?? 1);
      done({ code, stdout, stderr, ms: performance.now() - t0 });
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

/**
 * The inputs that once took a whole process down (issue 24, defects 1 and 2), in every kind of training data the CLI
 * reads: a 2^31 × 2^31 PNG header (SIGABRT in zlib), a 9000² JPEG and a 12000² PNG header (seconds and gigabytes of
 * decoding), a truncated PNG and a caption that is not UTF-8. A run over them trains, and says what it skipped.
 */
function hostileData(dir: string): { folder: string; jsonl: string; tar: string } {
  const members: { name: string; data: string | Uint8Array }[] = [];
  for (let i = 0; i < 4; i++) members.push({ name: `good${i}.png`, data: pngBytes(32, 32, pattern(i)) }, { name: `good${i}.txt`, data: `a red square ${i}` });
  const truncated = pngBytes(32, 32, pattern(9));
  members.push(
    { name: 'abort.png', data: pngDeclaring(0x7fffffff, 0x7fffffff) }, { name: 'abort.txt', data: 'a blue circle' },
    { name: 'wide.jpg', data: jpegDeclaring(9000, 9000) }, { name: 'wide.txt', data: 'a green triangle' },
    { name: 'big.png', data: pngDeclaring(12000, 12000) }, { name: 'big.txt', data: 'a big square' },
    { name: 'cut.png', data: truncated.subarray(0, truncated.length - 40) }, { name: 'cut.txt', data: 'a cut square' },
    { name: 'latin1.png', data: pngBytes(32, 32, pattern(5)) }, { name: 'latin1.txt', data: Buffer.from([0x63, 0x61, 0x66, 0xe9]) },
  );
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  for (const m of members) writeFileSync(join(folder, m.name), m.data);
  const jsonl = join(dir, 'data.jsonl');
  const images = members.filter((m) => !m.name.endsWith('.txt') && m.name !== 'latin1.png');
  writeFileSync(jsonl, images.map((m) => JSON.stringify({ image: `folder/${m.name}`, caption: `caption of ${m.name}` })).join('\n'));
  const tar = join(dir, 'shard.tar');
  writeFileSync(tar, tarBytes(members));
  return { folder, jsonl, tar };
}

test('training on data holding once-fatal files: the run finishes, and each bad file is counted as skipped', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  const data = hostileData(dir);
  const train = (what: keyof typeof data) =>
    // 3 updates of 2: the first epoch (4 good images) is read to its end.
    dalle(['train-vae', '--data', data[what], '--steps', '3', '--batch', '2', '--sample-every', '100', '-o', join(dir, `${what}.safetensors`)]);
  const runs = { folder: await train('folder'), jsonl: await train('jsonl'), tar: await train('tar') };
  const skippedFiles = { folder: 5, jsonl: 4, tar: 5 };
  for (const [what, run] of Object.entries(runs) as [keyof typeof data, Run][]) {
    t.is(run.code, 0, `${what}: ${run.stderr}`);
    t.regex(run.stdout, /trained 3 updates/, what);
    t.regex(run.stderr, new RegExp(`dalle: skipped ${skippedFiles[what]} inputs of the data \\(.*corrupt image`), `${what}: ${run.stderr}`);
  }
  t.regex(runs.folder.stderr, /1 caption not UTF-8/);
  t.regex(runs.tar.stderr, /1 caption not UTF-8/);
});

test('generate --complete with a once-fatal image: a one-line error, no abort', async (t) => {
  const dir = tempDir('dalle-cli-hostile-');
  const model = join(WEIGHTS, 'shapes32.model.json');
  const cases: [string, Buffer, RegExp][] = [
    ['abort.png', pngDeclaring(0x7fffffff, 0x7fffffff), /declares 2147483647x2147483647/],
    ['wide.jpg', jpegDeclaring(9000, 9000), /declares 9000x9000/],
  ];
  for (const [name, bytes, message] of cases) {
    writeFileSync(join(dir, name), bytes);
    const run = await dalle(['generate', 'a red circle', '--model', model, '--complete', join(dir, name), '-o', join(dir, `${name}.out.png`)]);
    assertCleanFailure(t, run, 'E_INVALID_ARGUMENT', message);
    t.true(run.ms < 30_000, `${name}: took ${run.ms.toFixed(0)} ms`);
  }
});
