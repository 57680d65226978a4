/**
 * CLIP on the 32×32 shapes world, then reranking the transformer's samples with it.
 *
 *   node --import tsx benchmarks/clip/shapes.ts --transformer model.safetensors [--steps 1500] [--batch 32] [--lr 1e-3]
 *        [--scenes 20000] [--n 32] [--seeds 2] [--capabilities single] [--tag name] [--out clip.safetensors]
 *        [--preset shapes32 | shapes32-conv | shapes32-vit] [--image-width W] [--image-layers L] [--image-patch P]
 *
 * Prints (and writes benchmarks/results/clip-shapes<tag>.json): text→image and image→text top-1 retrieval among 64
 * held-out pairs (of the trained scene kinds), then for each fixed single-object prompt and seed the detector's verdict on
 * the first of n samples (no reranking) and on CLIP's best of the same n. The transformer comes from
 * `npm run bench:transformer -- --out model.safetensors` (single objects, the default).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { evaluationPrompts, shapesExamples } from '../../lib/data/shapes/index.js';
import type { Example } from '../../lib/data/types.js';
import { saveClip } from '../../lib/models/clip/io.js';
import { Clip, type ClipPreset } from '../../lib/models/clip/model.js';
import { retrievalTop1, trainClip, type ClipBatch } from '../../lib/models/clip/train.js';
import { loadDvae } from '../../lib/models/dvae/io.js';
import { generateImages } from '../../lib/models/transformer/generate.js';
import { loadTransformer } from '../../lib/models/transformer/io.js';
import { textSlots } from '../../lib/models/transformer/train.js';
import { syncRunner } from '../../lib/nn/runner.js';
import { trainBpe } from '../../lib/tokenizer/train.js';
import { arg, argStr } from '../args.js';
import { judgeSamples } from '../model/judge.js';

const STEPS = arg('--steps', 1500);
const BATCH = arg('--batch', 32);
const N = arg('--n', 32);
const SEEDS = arg('--seeds', 2);
const run = syncRunner;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ALL = ['single', 'counting', 'relations', 'text'] as const;
// Default: the transformer's training data (single objects), so CLIP learns the distinctions its samples miss.
const CAPS = (argStr('--capabilities') ?? 'single').split(',') as Array<(typeof ALL)[number]>;

const corpus = [...shapesExamples({ kind: 'shapes', size: 32, count: 4000, split: 'train', seed: 500, capabilities: [...ALL] })].map((e) => e.caption);
const tok = trainBpe(corpus, { vocabSize: 512 });
const imageOverrides = Object.fromEntries(
  (
    [
      ['imageWidth', '--image-width'],
      ['imageLayers', '--image-layers'],
      ['imagePatch', '--image-patch'],
    ] as const
  )
    .filter(([, flag]) => argStr(flag) !== undefined)
    .map(([key, flag]) => [key, arg(flag, 0)]),
);
using clip = Clip.create({ preset: (argStr('--preset') ?? 'shapes32') as ClipPreset, ...imageOverrides }, { seed: 1 });
const T = clip.config.textLen;
const imageParameters = [...clip.params.tensors].filter(([name]) => name.startsWith('image.')).reduce((n, [, t]) => n + t.size, 0);
const train: Example[] = [...shapesExamples({ kind: 'shapes', size: 32, count: arg('--scenes', 20000), split: 'train', seed: 1, capabilities: [...CAPS] })];
const pack = (examples: Example[], seed: number): ClipBatch => {
  const text = new Int32Array(examples.length * T);
  const images = new Uint8Array(examples.length * 32 * 32 * 3);
  examples.forEach((e, i) => {
    text.set(textSlots(tok, e.caption, T, { dropout: seed < 0 ? 0 : 0.1, seed: seed + i }), i * T);
    images.set(e.image.data, i * 32 * 32 * 3);
  });
  return { text, images };
};
async function* batches(epoch: number): AsyncGenerator<ClipBatch> {
  for (let start = 0; start + BATCH <= train.length; start += BATCH) yield pack(train.slice(start, start + BATCH), epoch * 1_000_003 + start);
}
const heldOut = pack([...shapesExamples({ kind: 'shapes', size: 32, count: 64, split: 'test', seed: 77, capabilities: [...CAPS] })], -1);
console.log(`CLIP ${JSON.stringify(clip.config)}: ${(clip.parameterCount / 1e6).toFixed(2)}M parameters (image encoder ${(imageParameters / 1e6).toFixed(3)}M); ${train.length} pairs; ${cpus().length} cores; ${STEPS} updates of ${BATCH}`);
let t0 = performance.now();
const result = await trainClip(clip, {
  steps: STEPS,
  data: batches,
  lr: { from: arg('--lr', 1e-3), to: arg('--lr', 1e-3) / 100, steps: STEPS },
  eval: { every: Math.max(1, Math.round(STEPS / 5)), data: async function* () { yield heldOut; } },
  run,
  progressEvery: 50,
  onProgress: (p) =>
    console.log(
      `step ${p.step}/${p.steps}  loss ${p.metrics.loss.toFixed(3)}  scale ${p.metrics.scale!.toFixed(1)}  batch t→i ${(100 * p.metrics.textToImage!).toFixed(0)}%  ` +
        `${p.evalMetrics ? `held-out t→i ${(100 * p.evalMetrics.textToImage!).toFixed(1)}%  ` : ''}${p.stepsPerSecond.toFixed(2)} steps/s`,
    ),
});
const clipSeconds = (performance.now() - t0) / 1000;
const retrieval = retrievalTop1(await clip.encodeText(heldOut.text, run), await clip.encodeImages(heldOut.images, run), clip.config.embedDim);
console.log(`trained ${result.steps} updates in ${clipSeconds.toFixed(0)} s; 64 held-out pairs: text→image top-1 ${(100 * retrieval.textToImage).toFixed(1)}%, image→text ${(100 * retrieval.imageToText).toFixed(1)}% (chance 1.6%)`);

const transformerPath = argStr('--transformer');
let rerankReport: object | null = null;
if (transformerPath) {
  const { model, tokenizer } = loadTransformer(transformerPath);
  using vae = loadDvae(join(root, 'weights', 'shapes32-dvae.safetensors'));
  const prompts = evaluationPrompts(25, 0).filter((p) => p.query.capability === 'single');
  let plain = 0;
  let reranked = 0;
  let oracle = 0;
  let cases = 0;
  t0 = performance.now();
  for (const p of prompts) {
    for (let s = 0; s < SEEDS; s++) {
      const out = await generateImages(model, vae, tokenizer!, Array<string>(N).fill(p.caption), { seed: 1000 * s + 7, run });
      const v = await judgeSamples(clip, textSlots(tok, p.caption, T), p.caption, out.images, 32, run);
      plain += v.first ? 1 : 0;
      reranked += v.best ? 1 : 0;
      oracle += v.any ? 1 : 0;
      cases++;
    }
  }
  model.dispose();
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${cases} prompt×seed cases, n = ${N}: detector on the first sample ${plain}/${cases}, on CLIP's best of ${N} ${reranked}/${cases} (any of the ${N}: ${oracle}/${cases}); ${seconds.toFixed(0)} s`);
  rerankReport = { cases, n: N, firstSample: plain, clipBest: reranked, anyOfN: oracle, seconds };
}
const dir = join(root, 'benchmarks', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `clip-shapes${argStr('--tag') ?? ''}.json`), JSON.stringify({ argv: process.argv.slice(2), config: clip.config, parameters: clip.parameterCount, imageParameters, steps: result.steps, clipSeconds, retrieval, evalMetrics: result.evalMetrics, rerank: rerankReport }, null, 2));
const out = argStr('--out');
if (out) await saveClip(clip, out, { tokenizer: tok });
