import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Dalle } from '../lib/api/dalle.js';
import { openSource as openFolder } from '../lib/data/folder/index.js';
import { decodeImage } from '../lib/data/image.js';
import { shapesExamples } from '../lib/data/shapes/index.js';
import type { Example } from '../lib/data/types.js';
import { bf16ToF32, f32ToBf16 } from '../lib/formats/half.js';
import { writeSafetensors } from '../lib/formats/safetensors.js';
import { loadDvae } from '../lib/models/dvae/io.js';
import { loadTransformer } from '../lib/models/transformer/io.js';
import { CHECKPOINT_FORMAT } from '../lib/train/checkpoint.js';

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url));
const EMOJI_FIXTURE = fileURLToPath(new URL('./fixtures/emoji/', import.meta.url));
const WEIGHTS = fileURLToPath(new URL('../weights/', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function dalle(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('dalle data shapes writes a folder dataset that reads back as the same scenes and captions', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'dalle-cli-')), 'scenes');
  const run = await dalle(['data', 'shapes', '--out', out, '--count', '12', '--size', '32', '--seed', '5', '--split', 'test']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /wrote 12 32x32 test scenes/);
  t.is(readdirSync(out).length, 24);

  const expected = [...shapesExamples({ kind: 'shapes', size: 32, count: 12, seed: 5, split: 'test' })];
  const got: Example[] = [];
  const source = openFolder({ kind: 'folder', path: out });
  for await (const ex of source) got.push(ex);
  t.is(source.skipped.skipped, 0);
  t.deepEqual(got.map((e) => e.caption), expected.map((e) => e.caption));
  for (let i = 0; i < got.length; i++) t.deepEqual(got[i]!.image, expected[i]!.image, `scene ${i}`);
});

test('dalle reports bad arguments with a message and a failing status, creating nothing', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'dalle-cli-')), 'scenes');
  const badSize = await dalle(['data', 'shapes', '--out', out, '--size', '33']);
  t.is(badSize.code, 1);
  t.regex(badSize.stderr, /canvas side must be one of 32, 64, 128.*\[E_INVALID_ARGUMENT\]/);
  t.false(existsSync(out));

  const badCount = await dalle(['data', 'shapes', '--out', out, '--count', 'many']);
  t.not(badCount.code, 0);
  t.regex(badCount.stderr, /--count.*invalid/);

  const badCapability = await dalle(['data', 'shapes', '--out', out, '--capabilities', 'counting,juggling']);
  t.not(badCapability.code, 0);
  t.regex(badCapability.stderr, /unknown juggling/);

  const unknown = await dalle(['paint']);
  t.not(unknown.code, 0);
  t.regex(unknown.stderr, /unknown command/);
});

test('dalle data emoji installs with npm and reports the dataset it got', async (t) => {
  if (process.platform === 'win32') return t.pass('the fake npm is a shell script');
  const bin = mkdtempSync(join(tmpdir(), 'dalle-npm-'));
  const data = mkdtempSync(join(tmpdir(), 'dalle-data-'));
  // Stands in for npm: lays the fixture packages out where `npm install --prefix` would.
  const npm = join(bin, 'npm');
  writeFileSync(npm, `#!/bin/sh\necho "$@" > "${bin}/args"\nmkdir -p "${data}/emoji/node_modules"\ncp -r "${EMOJI_FIXTURE}"emoji-datasource-* "${data}/emoji/node_modules/"\n`);
  chmodSync(npm, 0o755);

  const run = await dalle(['data', 'emoji', '--npm', npm, '--quiet'], { DALLE_DATA_DIR: data });
  t.is(run.code, 0, run.stderr);
  t.regex(readFileSync(join(bin, 'args'), 'utf8'), new RegExp(`--prefix ${join(data, 'emoji')} `));
  // The fixture: 15 twitter images, 14 google (its rocket PNG is missing).
  t.regex(run.stdout, /twitter: 15 images \(\d+ train, \d+ test\)/);
  t.regex(run.stdout, /google: 14 images \(\d+ train, \d+ test; 1 listed without an image, skipped\)/);
  t.regex(run.stdout, /ready: \{ kind: 'emoji' \}/);

  const failing = join(bin, 'npm-fails');
  writeFileSync(failing, '#!/bin/sh\necho "npm ERR! code ENOTFOUND registry.npmjs.org" >&2\nexit 1\n');
  chmodSync(failing, 0o755);
  const failed = await dalle(['data', 'emoji', '--npm', failing, '--dir', join(data, 'other'), '--quiet']);
  t.is(failed.code, 1);
  t.regex(failed.stderr, /ENOTFOUND registry\.npmjs\.org[\s\S]*\[E_INTERNAL\]/);
});

test('dalle generate writes the API’s best samples as a grid and as files, and reports them as JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-gen-'));
  const grid = join(dir, 'grid.png');
  const files = join(dir, 'each');
  const run = await dalle(['generate', 'a blue square', '-n', '5', '--keep', '2', '--seed', '3', '--batch', '2', '-o', grid, '--out-dir', files, '--scale', '2', '--json']);
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { backend: string; size: number; images: Array<{ sample: number; score: number }>; written: Array<{ file: string }> };
  t.is(report.backend, 'cpu');
  t.is(report.images.length, 2);
  t.true(report.images[0]!.score >= report.images[1]!.score);

  await using model = await Dalle.load();
  const api = await model.generate('a blue square', { n: 5, keep: 2, seed: 3 });
  t.deepEqual(report.images.map((im) => im.sample), api.images.map((im) => im.index));
  const names = api.images.map((im, rank) => `${rank + 1}-${im.index}.png`);
  t.deepEqual(readdirSync(files).sort(), [...names].sort());
  names.forEach((name, rank) => t.deepEqual(decodeImage(readFileSync(join(files, name)), name).data, api.images[rank]!.pixels));
  // Two 32-px images scaled ×2 side by side with 2-px gaps: 2·64 + 3·2 by 64 + 2·2.
  t.like(decodeImage(readFileSync(grid), 'grid'), { width: 134, height: 68 });
});

test('dalle convert halves a model’s weights to bf16; the converted model loads and generates; checkpoints are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-convert-'));
  const files = { dvae: 'shapes32-dvae.safetensors', transformer: 'shapes32-tiny-transformer.safetensors', clip: 'shapes32-clip.safetensors' };
  for (const file of Object.values(files)) {
    const run = await dalle(['convert', join(WEIGHTS, file), '-o', join(dir, file)]);
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /^(\d+) of \1 tensors in bf16: [\d.]+ MB → [\d.]+ MB; wrote /);
    const ratio = statSync(join(dir, file)).size / statSync(join(WEIGHTS, file)).size;
    t.true(ratio > 0.49 && ratio < 0.52, `${file}: ${ratio}`);
  }
  // Each weight is the original rounded to bf16: the loaders widen it back exactly.
  using original = loadDvae(join(WEIGHTS, files.dvae));
  using converted = loadDvae(join(dir, files.dvae));
  t.deepEqual(converted.params.flat.toFloat32Array(), bf16ToF32(f32ToBf16(original.params.flat.toFloat32Array())));
  const { model: transformer } = loadTransformer(join(dir, files.transformer));
  const { model: originalTransformer } = loadTransformer(join(WEIGHTS, files.transformer));
  t.deepEqual(transformer.params.flat.toFloat32Array(), bf16ToF32(f32ToBf16(originalTransformer.params.flat.toFloat32Array())));
  transformer.dispose();
  originalTransformer.dispose();

  writeFileSync(join(dir, 'half.model.json'), JSON.stringify({ format: 'dalle-engine/model@1', name: 'half', ...files }));
  await using half = await Dalle.load(join(dir, 'half.model.json'));
  const result = await half.generate('a red circle', { n: 4, keep: 2, seed: 1 });
  t.is(result.images.length, 2);
  t.true(Number.isFinite(result.images[0]!.score));

  // Back to f32: the same (rounded) values at full size.
  const wide = await dalle(['convert', join(dir, files.dvae), '-o', join(dir, 'wide.safetensors'), '--dtype', 'f32']);
  t.is(wide.code, 0, wide.stderr);
  using widened = loadDvae(join(dir, 'wide.safetensors'));
  t.deepEqual(widened.params.flat.toFloat32Array(), converted.params.flat.toFloat32Array());
  t.is(statSync(join(dir, 'wide.safetensors')).size, statSync(join(WEIGHTS, files.dvae)).size);

  await writeSafetensors(join(dir, 'run.checkpoint.safetensors'), { 'param.w': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } }, { format: CHECKPOINT_FORMAT, task: 'dvae' });
  const refused = await dalle(['convert', join(dir, 'run.checkpoint.safetensors'), '-o', join(dir, 'x.safetensors')]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /training checkpoint.*\[E_INVALID_ARGUMENT\]/);
  t.false(existsSync(join(dir, 'x.safetensors')));
  const missing = await dalle(['convert', join(dir, 'nope.safetensors'), '-o', join(dir, 'z.safetensors')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope\.safetensors.*\[E_NOT_FOUND\]/);
  const badType = await dalle(['convert', join(WEIGHTS, files.dvae), '-o', join(dir, 'y.safetensors'), '--dtype', 'f8']);
  t.not(badType.code, 0);
  t.regex(badType.stderr, /--dtype.*f8.*bf16, f32/s);
});

test('a reader that closes the pipe early stops dalle quietly (no EPIPE stack trace)', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'inspect'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // closed before the command starts writing: its first write gets EPIPE
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((done) => child.on('exit', done));
  t.is(code, 0, stderr);
  t.notRegex(stderr, /EPIPE|Unhandled/);
});

test('dalle generate rejects inconsistent options and stops on Ctrl-C without writing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-gen-'));
  const tooMany = await dalle(['generate', 'a circle', '-n', '2', '--keep', '3', '-o', join(dir, 'a.png')]);
  t.is(tooMany.code, 1);
  t.regex(tooMany.stderr, /--keep 3 is more than the 2 samples drawn.*\[E_INVALID_ARGUMENT\]/);
  const badTopP = await dalle(['generate', 'a circle', '--top-p', '0']);
  t.not(badTopP.code, 0);
  t.regex(badTopP.stderr, /--top-p.*expected a number in \(0, 1\]/);
  const missing = await dalle(['generate', 'a circle', '--complete', join(dir, 'nope.png')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope\.png: no such file \[E_NOT_FOUND\]/);
  t.deepEqual(readdirSync(dir), []);

  if (process.platform === 'win32') return;
  const out = join(dir, 'never.png');
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'generate', 'a circle', '-n', '4096', '-o', out]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise((r) => setTimeout(r, 4000)); // past start-up and model loading, well inside 4096 samples
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.is(code, 130, stderr);
  t.regex(stderr, /stopped; nothing was written/);
  t.false(existsSync(out));
});
