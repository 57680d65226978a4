/**
 * The end-to-end run, made small enough for the suite: a two-layer transformer learns single-object shapes scenes
 * (32×32) over the codes of the shipped small32 dVAE, then its samples for the fixed evaluation prompts are read back
 * by the shapes detector. The full recipe (the tiny preset, longer) is benchmarks/transformer/shapes.ts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { evaluationPrompts, scoreSamples, shapesExamples } from '../lib/data/shapes/index.js';
import { loadDvae } from '../lib/models/dvae/io.js';
import { generateImages } from '../lib/models/transformer/generate.js';
import { DalleTransformer } from '../lib/models/transformer/model.js';
import { encodeDataset, textCodeBatches, trainTransformer } from '../lib/models/transformer/train.js';
import { syncRunner } from '../lib/nn/runner.js';
import { trainBpe } from '../lib/tokenizer/train.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const STEPS = 1000;
const SAMPLES_PER_PROMPT = 4;

test('a small transformer trained for a few minutes draws single objects the detector reads as their captions', async (t) => {
  t.timeout(20 * 60_000);
  using vae = loadDvae(join(root, 'weights', 'shapes32-dvae.safetensors'));
  const captions = [...shapesExamples({ kind: 'shapes', size: 32, count: 2000, split: 'train', seed: 500, capabilities: ['single'] })].map((e) => e.caption);
  const tok = trainBpe(captions, { vocabSize: 320 });
  const train = await encodeDataset(vae, shapesExamples({ kind: 'shapes', size: 32, count: 4000, split: 'train', seed: 1, capabilities: ['single'] }), { run: syncRunner });
  using model = DalleTransformer.create({ layers: 2, width: 128, heads: 2, textLen: 8, textVocab: 320, imageVocab: vae.config.vocabSize, grid: vae.grid }, { seed: 1 });
  const t0 = performance.now();
  const result = await trainTransformer(model, {
    steps: STEPS,
    data: (epoch) => textCodeBatches(train, tok, epoch, { batchSize: 16, textLen: 8, seed: 1 }),
    lr: { from: 3e-3, to: 3e-4, steps: STEPS },
    lrWarmupSteps: 50,
    run: syncRunner,
  });
  const trainSeconds = (performance.now() - t0) / 1000;

  const prompts = evaluationPrompts(25, 0).filter((p) => p.query.capability === 'single');
  const asked = prompts.flatMap((p) => Array<string>(SAMPLES_PER_PROMPT).fill(p.caption));
  const t1 = performance.now();
  const { images } = await generateImages(model, vae, tok, asked, { seed: 3, run: syncRunner });
  const sampleSeconds = (performance.now() - t1) / 1000;
  const per = 32 * 32 * 3;
  const score = scoreSamples(asked.map((caption, i) => ({ caption, image: { width: 32, height: 32, data: images.subarray(i * per, (i + 1) * per) } })));
  // Chance: every prompt against 40 random training scenes (a model that draws a plausible object, ignoring the text).
  const random = [...shapesExamples({ kind: 'shapes', size: 32, count: 40, split: 'train', seed: 9999, capabilities: ['single'] })];
  const chance = scoreSamples(prompts.flatMap((p) => random.map((e) => ({ caption: p.caption, image: e.image }))));
  t.log(
    `${STEPS} updates of 16 in ${trainSeconds.toFixed(0)} s (image loss ${result.metrics!.imageLoss!.toFixed(3)}); ${asked.length} samples in ${sampleSeconds.toFixed(1)} s; ` +
      `detector ${score.single.satisfied}/${score.single.samples}, chance ${chance.single.satisfied}/${chance.single.samples}`,
  );
  // Measured on this machine: 11/100 against a chance of about 2%.
  t.true(score.single.fraction >= 0.06, `detector rate ${score.single.fraction}`);
  t.true(score.single.fraction >= 3 * chance.single.fraction, `detector ${score.single.fraction} vs chance ${chance.single.fraction}`);
});
