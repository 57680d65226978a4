import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Dalle } from '../lib/api/dalle.js';
import { loadModelFiles } from '../lib/api/model-files.js';
import { decodeImage, encodePng } from '../lib/data/image.js';
import { centerSquare } from '../lib/data/preprocess.js';
import { checkCaption, shapesExamples } from '../lib/data/shapes/index.js';
import { DalleError } from '../lib/errors.js';
import { rerank } from '../lib/models/clip/train.js';
import { generateImages } from '../lib/models/transformer/generate.js';
import { syncRunner } from '../lib/nn/runner.js';

const PROMPT = 'a red circle';

function expectCode(t: { true: (v: boolean, m?: string) => void }, err: unknown, code: string, what = ''): void {
  t.true(err instanceof DalleError && err.code === code, `${what}: expected ${code}, got ${String(err)}`);
}

test('the shipped model draws what the README shows: the detector accepts CLIP’s picks for shapes prompts', async (t) => {
  await using dalle = await Dalle.load();
  // The README's command: 16 samples, the best 4 kept, the default seed. Measured: 4 of 4 for each prompt.
  for (const prompt of ['two green triangles', 'a large blue triangle']) {
    const { images, size } = await dalle.generate(prompt, { n: 16, keep: 4 });
    const passed = images.filter((im) => checkCaption({ width: size, height: size, data: im.pixels }, prompt)).length;
    t.true(passed >= 3, `"${prompt}": the detector accepts ${passed} of CLIP's best 4`);
  }
});

test('generate returns the in-process pipeline’s samples, reranked by CLIP, as PNG files; the batch size does not matter', async (t) => {
  await using dalle = await Dalle.load();
  t.is(dalle.backend, 'cpu');
  t.like(dalle.info, { name: 'shapes-emoji32', imageSize: 32, grid: 16, reranks: true, backend: 'cpu' });
  const scene = [...shapesExamples({ kind: 'shapes', size: 64, count: 1, split: 'test', seed: 3 })][0]!;
  const cases = [
    { options: { n: 6, keep: 3, batch: 4, seed: 5 } },
    { options: { n: 3, keep: 2, batch: 2, seed: 9, temperature: 0.8, topK: 64, image: encodePng(scene.image), rows: 6 } },
  ];
  using files = loadModelFiles();
  for (const { options } of cases) {
    const got = await dalle.generate(PROMPT, options);
    // Reference: one batch of all n, straight through the model code.
    const completion = options.image ? { image: centerSquare(decodeImage(options.image, 'x'), 32).data, rows: options.rows } : undefined;
    const ref = await generateImages(files.transformer, files.dvae, files.tokenizer, Array<string>(options.n).fill(PROMPT), { ...options, prompt: completion, run: syncRunner });
    const ranked = await rerank(files.clip!.model, PROMPT, ref.images, options.keep, { tokenizer: files.clip!.tokenizer, run: syncRunner });
    t.deepEqual(got.images.map((im) => im.index), ranked.order);
    t.deepEqual(got.images.map((im) => im.score), ranked.scores);
    for (const im of got.images) {
      t.deepEqual(im.pixels, ref.images.slice(im.index * 3072, (im.index + 1) * 3072));
      t.deepEqual(decodeImage(im.png, 'png').data, im.pixels);
    }
    t.is(got.size, 32);
    t.false(got.truncated);
    t.is(got.backend, 'cpu');
  }
});

// Serial: the other tests here run model code on this thread, which would stall the timer for reasons of their own.
test.serial('the event loop keeps running while a model generates', async (t) => {
  await using dalle = await Dalle.load();
  let ticks = 0;
  let last = performance.now();
  let worstGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const t0 = performance.now();
  let progressCalls = 0;
  await dalle.generate(PROMPT, { n: 24, onProgress: () => progressCalls++ });
  const ms = performance.now() - t0;
  clearInterval(timer);
  t.log(`${ticks} ticks of a 5 ms timer in ${ms.toFixed(0)} ms of generation; worst gap ${worstGap.toFixed(0)} ms; ${progressCalls} progress calls`);
  t.true(ms > 200, 'generation should take long enough to measure');
  t.true(ticks >= ms / 50, `only ${ticks} ticks in ${ms.toFixed(0)} ms`);
  t.true(worstGap < 500, `the timer waited ${worstGap.toFixed(0)} ms`);
  t.true(progressCalls > 0);
});

test('abort, a throwing progress callback and bad options fail only their own request', async (t) => {
  await using dalle = await Dalle.load();
  const controller = new AbortController();
  const aborted = dalle.generate(PROMPT, { n: 64, signal: controller.signal, onProgress: (p) => p.tokens > 100 && controller.abort() });
  const queued = dalle.generate(PROMPT, { n: 2, seed: 1 }); // waits behind the aborted one, then runs
  const err = await aborted.then(() => null, (e: unknown) => e);
  t.is((err as Error).name, 'AbortError');
  expectCode(t, err, 'E_ABORTED');
  t.is((await queued).images.length, 2);

  const before = new AbortController();
  before.abort();
  expectCode(t, await dalle.generate(PROMPT, { signal: before.signal }).catch((e: unknown) => e), 'E_ABORTED');

  const boom = new Error('callback failed');
  t.is(await dalle.generate(PROMPT, { n: 32, onProgress: () => { throw boom; } }).catch((e: unknown) => e), boom);

  const bad: Array<[string, object]> = [
    ['n', { n: 0 }], ['keep', { n: 2, keep: 3 }], ['seed', { seed: 1.5 }], ['temperature', { temperature: -1 }],
    ['topP', { topP: 0 }], ['rows', { rows: 3 }], ['image', { image: new Uint8Array([1, 2, 3]) }],
    ['an option that cannot cross threads', { extra: () => 1 }],
  ];
  for (const [what, options] of bad) expectCode(t, await dalle.generate(PROMPT, options).catch((e: unknown) => e), 'E_INVALID_ARGUMENT', what);
  expectCode(t, await dalle.generate(42 as unknown as string).catch((e: unknown) => e), 'E_INVALID_ARGUMENT');
  const fine = await dalle.generate(PROMPT, { n: 1 });
  t.is(fine.images.length, 1);
});

test('dispose rejects queued requests and later calls; loading reports missing files, bad manifests and backends', async (t) => {
  const dalle = await Dalle.load();
  const running = dalle.generate(PROMPT, { n: 64 });
  const queued = dalle.generate(PROMPT, { n: 2 });
  await dalle.dispose();
  for (const p of [running, queued, dalle.generate(PROMPT)]) expectCode(t, await p.catch((e: unknown) => e), 'E_DISPOSED');
  await dalle.dispose(); // twice is fine

  expectCode(t, await Dalle.load('/nonexistent/model.json').catch((e: unknown) => e), 'E_NOT_FOUND');
  const manifest = fileURLToPath(new URL('../package.json', import.meta.url));
  expectCode(t, await Dalle.load(manifest).catch((e: unknown) => e), 'E_INVALID_ARGUMENT');
  expectCode(t, await Dalle.load(undefined, { backend: 'tpu' as 'cpu' }).catch((e: unknown) => e), 'E_INVALID_ARGUMENT');
  const cuda = await Dalle.load(undefined, { backend: 'cuda' }).catch((e: unknown) => e);
  expectCode(t, cuda, 'E_UNSUPPORTED');
  t.regex((cuda as Error).message, /backend 'cuda' cannot run this model: /);
});

test('a script that never disposes its model still exits', async (t) => {
  const api = new URL('../lib/api/dalle.ts', import.meta.url).href;
  const script = `const { Dalle } = await import(${JSON.stringify(api)}); const d = await Dalle.load(); const r = await d.generate('a circle', { n: 2 }); console.log(r.images.length);`;
  const out = await new Promise<{ code: number | null; stdout: string }>((done) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout) => done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout }));
  });
  t.is(out.code, 0);
  t.is(out.stdout.trim(), '2');
});
