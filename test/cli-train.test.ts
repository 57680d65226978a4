import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Dalle } from '../lib/api/dalle.js';
import { loadClip } from '../lib/models/clip/io.js';
import { loadDvae, saveDvae } from '../lib/models/dvae/io.js';
import { Dvae } from '../lib/models/dvae/model.js';
import { loadTransformer } from '../lib/models/transformer/io.js';
import { loadHfJson } from '../lib/tokenizer/formats.js';
import { chromiumPath, renderedCheck } from './helpers/chromium.js';

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url));
const DVAE = fileURLToPath(new URL('../weights/shapes32-dvae.safetensors', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (one native thread: two test files share the 2 cores); `interruptAfter` sends SIGINT once stderr matches it. */
function dalle(args: string[], interruptAfter?: { ms: number }): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, DALLE_NUM_THREADS: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (interruptAfter) setTimeout(() => child.kill('SIGINT'), interruptAfter.ms);
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

async function expectRendered(t: { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp) => void; log: (...s: string[]) => void }, report: string, images: number): Promise<void> {
  if (chromiumPath() === null) {
    if (process.env.DALLE_REQUIRE_CHROMIUM === '1') t.is('no chromium', 'chromium', 'DALLE_REQUIRE_CHROMIUM=1 but no chromium is installed');
    else t.log('not rendered: no chromium');
    return;
  }
  t.regex(await renderedCheck(report), new RegExp(`^ok: \\d+ curves, ${images} images$`));
}

test('train-vae: Ctrl-C leaves a checkpoint, --resume finishes the run; weights and report come out', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-train-'));
  const out = join(dir, 'vae.safetensors');
  const common = ['train-vae', '--data', 'shapes', '--scenes', '64', '--batch', '8', '-o', out];
  const stopped = await dalle([...common, '--steps', '100000', '--sample-every', '1000'], { ms: 9000 });
  t.is(stopped.code, 130, stopped.stderr);
  const at = Number(/stopped at update (\d+) of 100000/.exec(stopped.stderr)?.[1]);
  t.true(at >= 1, stopped.stderr);
  t.true(existsSync(join(dir, 'vae.checkpoint.safetensors')));
  t.false(existsSync(out));
  t.regex(readFileSync(join(dir, 'vae.report.html'), 'utf8'), /stopped at update \d+ of 100000/);

  const resumed = await dalle([...common, '--steps', String(at + 6), '--sample-every', '3', '--resume']);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, new RegExp(`trained ${at + 6} updates: loss [\\d.]+, held-out loss [\\d.]+, [\\d.]+ dB`));
  using vae = loadDvae(out);
  t.is(vae.config.imageSize, 32);
  const html = readFileSync(join(dir, 'vae.report.html'), 'utf8');
  t.regex(html, /<td>status<\/td><td>done<\/td>/);
  const grids = html.match(/<img /g)?.length ?? 0;
  t.true(grids >= 4, `${grids} sample grids`); // the interrupted run's first, then at every 3rd update and at the end
  t.regex(html, /update 0: held-out images/, 'the resumed run keeps the report of the interrupted one');
  t.regex(html, /aria-label="psnr"/, 'a held-out PSNR curve');
  await expectRendered(t, join(dir, 'vae.report.html'), grids);
});

test('tokenizer train, train and train-clip make a model that dalle generate loads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-train-'));
  const tok = await dalle(['tokenizer', 'train', '--data', 'shapes', '--scenes', '300', '--vocab', '300', '-o', join(dir, 'tok.json')]);
  t.is(tok.code, 0, tok.stderr);
  t.regex(tok.stdout, /trained on 300 captions: 300 ids/);
  t.is(loadHfJson(join(dir, 'tok.json')).vocabSize, 300);

  const small = ['--data', 'shapes', '--capabilities', 'single', '--scenes', '64', '--tokenizer', join(dir, 'tok.json'), '--sample-every', '4'];
  const tr = await dalle(['train', ...small, '--dvae', DVAE, '--steps', '6', '--batch', '8', '--layers', '1', '--width', '64', '-o', join(dir, 'transformer.safetensors')]);
  t.is(tr.code, 0, tr.stderr);
  t.regex(tr.stdout, /trained 6 updates: loss [\d.]+, held-out loss [\d.]+/);
  const { model, tokenizer } = loadTransformer(join(dir, 'transformer.safetensors'));
  t.is(model.config.layers, 1);
  t.is(tokenizer?.vocabSize, 300);
  model.dispose();
  // The checkpoint carries the tokenizer too, so a stopped run's checkpoint can stand in for the weights.
  const fromCheckpoint = loadTransformer(join(dir, 'transformer.checkpoint.safetensors'));
  t.is(fromCheckpoint.tokenizer?.vocabSize, 300);
  fromCheckpoint.model.dispose();

  const cl = await dalle(['train-clip', ...small, '--steps', '6', '--batch', '16', '--text-length', '20', '-o', join(dir, 'clip.safetensors')]);
  t.is(cl.code, 0, cl.stderr);
  const clip = loadClip(join(dir, 'clip.safetensors'));
  t.is(clip.tokenizer?.vocabSize, 300);
  t.is(clip.model.config.textLen, 20);
  t.is(clip.model.config.textVocab, 512, 'a smaller tokenizer keeps the preset’s text embedding');
  const clipCheckpoint = loadClip(join(dir, 'clip.checkpoint.safetensors'));
  t.is(clipCheckpoint.tokenizer?.vocabSize, 300);
  clipCheckpoint.model.dispose();
  clip.model.dispose();
  await expectRendered(t, join(dir, 'clip.report.html'), 3);

  const manifest = join(dir, 'mine.model.json');
  writeFileSync(manifest, JSON.stringify({ format: 'dalle-engine/model@1', name: 'mine', dvae: DVAE, transformer: 'transformer.safetensors', clip: 'clip.safetensors' }));
  await using mine = await Dalle.load(manifest);
  const result = await mine.generate('a red circle', { n: 3, keep: 2 });
  t.is(result.images.length, 2);
  t.is(typeof result.images[0]!.score, 'number');
});

test('--init fine-tunes shipped weights: architecture and tokenizer come from the file, conflicting flags are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dalle-init-'));
  const transformerFile = fileURLToPath(new URL('../weights/shapes32-tiny-transformer.safetensors', import.meta.url));
  const clipFile = fileURLToPath(new URL('../weights/shapes32-clip.safetensors', import.meta.url));
  const small = ['--data', 'shapes', '--capabilities', 'single', '--scenes', '64', '--sample-every', '100', '--warmup', '0'];

  const tr = await dalle(['train', ...small, '--init', transformerFile, '--dvae', DVAE, '--steps', '3', '--batch', '8', '--lr', '1e-4', '-o', join(dir, 't.safetensors')]);
  t.is(tr.code, 0, tr.stderr);
  const loss = Number(/trained 3 updates: loss ([\d.]+)/.exec(tr.stdout)?.[1]);
  t.true(loss < 2.5, `fine-tuned loss ${loss} (a random model starts near ln 1024 ≈ 6.9)`);
  const before = loadTransformer(transformerFile);
  const after = loadTransformer(join(dir, 't.safetensors'));
  t.deepEqual(after.model.config, before.model.config);
  t.is(after.tokenizer?.vocabSize, before.tokenizer?.vocabSize);
  const [a, b] = [after.model.params.flat.toFloat32Array(), before.model.params.flat.toFloat32Array()];
  let moved = 0;
  for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(a[i]! - b[i]!));
  t.true(moved > 0 && moved < 1e-3, `3 updates at lr 1e-4 move each weight by ${moved}: they started from the file's`);
  after.model.dispose();
  before.model.dispose();

  const vae = await dalle(['train-vae', ...small, '--init', DVAE, '--steps', '2', '--batch', '8', '-o', join(dir, 'v.safetensors')]);
  t.is(vae.code, 0, vae.stderr);
  const db = Number(/held-out loss [\d.]+, ([\d.]+) dB/.exec(vae.stdout)?.[1]);
  t.true(db > 30, `held-out PSNR ${db} dB after 2 updates: the trained dVAE's, not a random one's`);

  const cl = await dalle(['train-clip', ...small, '--init', clipFile, '--steps', '2', '--batch', '16', '-o', join(dir, 'c.safetensors')]);
  t.is(cl.code, 0, cl.stderr);
  const clip = loadClip(join(dir, 'c.safetensors'));
  const shipped = loadClip(clipFile);
  t.deepEqual(clip.model.config, shipped.model.config);
  t.is(clip.tokenizer?.vocabSize, shipped.tokenizer?.vocabSize);
  clip.model.dispose();
  shipped.model.dispose();

  // Refused before any data is read: flags that would set the architecture, a second tokenizer, a dVAE of other codes.
  const out = ['-o', join(dir, 'never.safetensors')];
  const layers = await dalle(['train', ...small, '--init', transformerFile, '--dvae', DVAE, '--layers', '2', '--text-length', '8', ...out]);
  t.is(layers.code, 1);
  t.regex(layers.stderr, /--init takes the architecture from .*: drop --layers, --text-length \[E_INVALID_ARGUMENT\]/);
  const tok = await dalle(['train-clip', ...small, '--init', clipFile, '--tokenizer', join(dir, 'any.json'), ...out]);
  t.regex(tok.stderr, /carries its tokenizer: drop --tokenizer/);
  using other = Dvae.create({ preset: 'small32', vocabSize: 64 });
  await saveDvae(other, join(dir, 'other-dvae.safetensors'));
  const codes = await dalle(['train', ...small, '--init', transformerFile, '--dvae', join(dir, 'other-dvae.safetensors'), ...out]);
  t.regex(codes.stderr, /predicts 16² codes from 512, but --dvae makes 16² from 64/);
  t.false(existsSync(join(dir, 'never.safetensors')));
});
