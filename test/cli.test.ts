import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { openSource as openFolder } from '../lib/data/folder/index.js';
import { shapesExamples } from '../lib/data/shapes/index.js';
import type { Example } from '../lib/data/types.js';

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url));
const EMOJI_FIXTURE = fileURLToPath(new URL('./fixtures/emoji/', import.meta.url));

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
