/**
 * End to end on the CPU: a small transformer trained on shapes-world scenes (single objects by default, 32×32) over
 * the codes of a trained small32 dVAE, then sampled for the fixed evaluation prompts and read back by the shapes
 * detector. Prints and writes benchmarks/results/transformer-shapes<tag>.json and a sheet of samples (PNG).
 *
 *   node --import tsx benchmarks/transformer/shapes.ts --dvae weights/shapes32-dvae.safetensors
 *        [--steps 3000] [--batch 16] [--lr 2e-3] [--warmup 100] [--scenes 16000] [--layers 4] [--width 128]
 *        [--capabilities single] [--samples 4] [--top-k 0] [--temperature 1] [--seed 1] [--async] [--tag name]
 *        [--out model.safetensors] [--load model.safetensors]
 *
 * --load skips training and samples a saved model (its tokenizer comes from the file).
 * Figures: training tokens/s (B·S per update), sampling tokens/s (image tokens of the whole batch), detector rate on
 * the samples, and the chance rate: the same prompts scored against real training scenes drawn at random (a model
 * that paints a plausible scene and ignores the text).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { encodePng } from '../../lib/data/image.js';
import { checkCaption, detect, evaluationPrompts, scoreSamples, shapesExamples } from '../../lib/data/shapes/index.js';
import type { Capability } from '../../lib/data/shapes/scene.js';
import { loadDvae } from '../../lib/models/dvae/io.js';
import { DalleTransformer } from '../../lib/models/transformer/model.js';
import { generateImages } from '../../lib/models/transformer/generate.js';
import { encodeDataset, textCodeBatches, trainTransformer } from '../../lib/models/transformer/train.js';
import { loadTransformer, saveTransformer } from '../../lib/models/transformer/io.js';
import { asyncRunner, syncRunner } from '../../lib/nn/runner.js';
import { trainBpe } from '../../lib/tokenizer/train.js';
import { arg, argStr } from '../args.js';

const STEPS = arg('--steps', 3000);
const BATCH = arg('--batch', 16);
const LR = arg('--lr', 2e-3);
const SCENES = arg('--scenes', 16000);
const SAMPLES = arg('--samples', 4);
const SEED = arg('--seed', 1);
const CAPS = (argStr('--capabilities') ?? 'single').split(',') as Capability[];
const run = process.argv.includes('--async') ? asyncRunner : syncRunner;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const dvae = await loadDvae(argStr('--dvae') ?? join(root, 'weights', 'shapes32-dvae.safetensors'));
const SIZE = dvae.config.imageSize;
const corpus = [...shapesExamples({ kind: 'shapes', size: SIZE, count: 4000, split: 'train', seed: 500, capabilities: ['single', 'counting', 'relations', 'text'] })].map((e) => e.caption);
const loaded = argStr('--load') ? loadTransformer(argStr('--load')!) : null;
const tokenizer = loaded?.tokenizer ?? trainBpe(corpus, { vocabSize: 512 });

let t0 = performance.now();
const train = await encodeDataset(dvae, shapesExamples({ kind: 'shapes', size: SIZE, count: SCENES, split: 'train', seed: SEED, capabilities: CAPS }), { run });
const heldOut = await encodeDataset(dvae, shapesExamples({ kind: 'shapes', size: SIZE, count: 64, split: 'test', seed: SEED + 100, capabilities: CAPS }), { run });
const encodeSeconds = (performance.now() - t0) / 1000;

using model = loaded?.model ?? DalleTransformer.create(
  { preset: 'tiny', layers: arg('--layers', 4), width: arg('--width', 128), heads: arg('--width', 128) / 64, textVocab: 512, grid: dvae.grid, imageVocab: dvae.config.vocabSize },
  { seed: SEED },
);
const tokensPerStep = BATCH * model.seq.seqLen;
console.log(
  `transformer ${JSON.stringify(model.config)}: ${(model.parameterCount / 1e6).toFixed(2)}M parameters; tokenizer ${tokenizer.vocabSize} ids; ` +
    `${train.captions.length} training scenes (${CAPS.join(', ')}) encoded in ${encodeSeconds.toFixed(1)} s; ${cpus().length} cores; ${STEPS} updates of ${BATCH}`,
);
t0 = performance.now();
const result = await trainTransformer(model, {
  steps: loaded ? 0 : STEPS,
  data: (epoch) => textCodeBatches(train, tokenizer, epoch, { batchSize: BATCH, textLen: model.config.textLen, seed: SEED }),
  lr: { from: LR, to: LR / 10, steps: STEPS },
  lrWarmupSteps: arg('--warmup', 100),
  eval: { every: Math.max(1, Math.round(STEPS / 5)), data: () => textCodeBatches(heldOut, tokenizer, 0, { batchSize: 32, textLen: model.config.textLen, shuffle: false, dropout: 0 }) },
  run,
  progressEvery: 50,
  onProgress: (p) =>
    console.log(
      `step ${p.step}/${p.steps}  loss ${p.metrics.loss.toFixed(4)}  text ${p.metrics.textLoss!.toFixed(3)}  image ${p.metrics.imageLoss!.toFixed(3)}  ` +
        `${p.evalMetrics ? `held-out image ${p.evalMetrics.imageLoss!.toFixed(3)}  ` : ''}lr ${p.lr.toExponential(2)}  |g| ${p.gradNorm.toFixed(2)}  ` +
        `${(p.stepsPerSecond * tokensPerStep).toFixed(0)} tokens/s  eta ${p.etaSeconds.toFixed(0)} s`,
    ),
});
const trainSeconds = (performance.now() - t0) / 1000;
const trainTokensPerSecond = loaded ? NaN : (result.steps * tokensPerStep) / trainSeconds;

// The fixed evaluation prompts of the trained capabilities (held-out colour–shape pairs excluded: not zero-shot here).
const prompts = evaluationPrompts(25, 0).filter((p) => CAPS.includes(p.query.capability));
const captions = prompts.flatMap((p) => Array<string>(SAMPLES).fill(p.caption));
const images: Uint8Array[] = [];
t0 = performance.now();
let sampledTokens = 0;
for (let start = 0; start < captions.length; start += 32) {
  const chunk = captions.slice(start, start + 32);
  const out = await generateImages(model, dvae, tokenizer, chunk, { seed: SEED + start, temperature: arg('--temperature', 1), topK: arg('--top-k', 0), run });
  sampledTokens += chunk.length * model.seq.imageLen;
  for (let i = 0; i < chunk.length; i++) images.push(out.images.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3));
}
const sampleSeconds = (performance.now() - t0) / 1000;
const score = scoreSamples(captions.map((caption, i) => ({ caption, image: { width: SIZE, height: SIZE, data: images[i]! } })));
// Chance: the same captions against random training scenes of the same kinds.
const random = [...shapesExamples({ kind: 'shapes', size: SIZE, count: captions.length, split: 'train', seed: 9999, capabilities: CAPS })];
const chance = scoreSamples(captions.map((caption, i) => ({ caption, image: random[i]!.image })));
const rate = (r: typeof score) => CAPS.map((c) => `${c} ${r[c].satisfied}/${r[c].samples} (${(100 * r[c].fraction).toFixed(1)}%)`).join(', ');
console.log(`trained ${result.steps} updates in ${trainSeconds.toFixed(0)} s (${trainTokensPerSecond.toFixed(0)} tokens/s); held-out loss ${JSON.stringify(result.evalMetrics)}`);
console.log(`sampled ${captions.length} images in ${sampleSeconds.toFixed(1)} s (${(sampledTokens / sampleSeconds).toFixed(0)} image tokens/s, batches of 32)`);
console.log(`detector: ${rate(score)}; chance (random training scenes): ${rate(chance)}`);

// What the detector saw in the first failures: the usual reasons are a wrong size class, a stray fragment, a shape
// whose fill ratio is off.
let shown = 0;
for (let i = 0; i < captions.length && shown < 8; i++) {
  const image = { width: SIZE, height: SIZE, data: images[i]! };
  if (checkCaption(image, captions[i]!)) continue;
  const det = detect(image);
  console.log(`  "${captions[i]}" → ${det.objects.map((o) => `${o.size} ${o.color} ${o.shape ?? '?'} (${o.pixels} px)`).join(', ') || 'nothing'}${det.noisePixels ? `, ${det.noisePixels} noise px` : ''}`);
  shown++;
}

const dir = join(root, 'benchmarks', 'results');
mkdirSync(dir, { recursive: true });
const tag = argStr('--tag') ?? '';
const cols = Math.min(16, prompts.length);
const rows = SAMPLES;
const sheet = new Uint8Array(cols * SIZE * rows * SIZE * 3).fill(255);
for (let c = 0; c < cols; c++) {
  for (let r = 0; r < rows; r++) {
    const img = images[c * SAMPLES + r]!;
    for (let y = 0; y < SIZE; y++) sheet.set(img.subarray(y * SIZE * 3, (y + 1) * SIZE * 3), ((r * SIZE + y) * cols * SIZE + c * SIZE) * 3);
  }
}
writeFileSync(join(dir, `transformer-shapes${tag}.png`), encodePng({ width: cols * SIZE, height: rows * SIZE, data: sheet }));
writeFileSync(
  join(dir, `transformer-shapes${tag}.json`),
  JSON.stringify(
    { argv: process.argv.slice(2), config: model.config, cores: cpus().length, steps: result.steps, batch: BATCH, trainSeconds, trainTokensPerSecond, sampleSeconds, sampleTokensPerSecond: sampledTokens / sampleSeconds, evalMetrics: result.evalMetrics, score, chance, columns: prompts.slice(0, cols).map((p) => p.caption) },
    null,
    2,
  ),
);
const out = argStr('--out');
if (out) await saveTransformer(model, out, { tokenizer });
