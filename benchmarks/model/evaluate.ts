/**
 * A whole model (manifest: dVAE + transformer + CLIP) judged the way a user meets it: prompts in, images out.
 *
 *   node --import tsx benchmarks/model/evaluate.ts [--model weights/default.model.json] [--prompts 10] [--n 16]
 *        [--emoji 64] [--tag name]
 *
 * Shapes world: for `--prompts` fixed evaluation prompts of each scene kind (single objects, counting, relations; none
 * uses a held-out colour–shape pair), the detector's verdict on the first of n samples (the transformer alone), on
 * CLIP's best of the same n (the paper's pipeline) and on any of the n.
 * Emoji (when `dalle data emoji` has installed them): among `--emoji` held-out emoji captions, how often CLIP matches
 * each real image to its own caption (what CLIP can tell apart), and how often it matches the transformer's first
 * sample for a caption to that caption (whether the samples show what their caption says, as far as CLIP can tell).
 * Prints a table and writes benchmarks/results/model-<name><tag>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModelFiles } from '../../lib/api/model-files.js';
import { createLoader } from '../../lib/data/loader.js';
import { evaluationPrompts } from '../../lib/data/shapes/index.js';
import { retrievalTop1 } from '../../lib/models/clip/train.js';
import { generateImages } from '../../lib/models/transformer/generate.js';
import { textSlots } from '../../lib/models/transformer/train.js';
import { syncRunner } from '../../lib/nn/runner.js';
import { arg, argStr } from '../args.js';
import { judgeSamples } from './judge.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = syncRunner;
const N = arg('--n', 16);
const PER_KIND = arg('--prompts', 10);
const EMOJI = arg('--emoji', 64);
const SEED = 7;

using files = loadModelFiles(argStr('--model') ?? join(root, 'weights', 'default.model.json'));
const { transformer, tokenizer, dvae, clip } = files;
if (clip === null) throw new Error(`${files.path} names no CLIP: nothing to rerank with`);
const S = dvae.config.imageSize;
const per = S * S * 3;
const clipText = (caption: string): Int32Array => textSlots(clip.tokenizer, caption, clip.model.config.textLen);
const t0 = performance.now();

const kinds = ['single', 'counting', 'relations'] as const;
const shapes: Record<string, { prompts: number; firstSample: number; clipBest: number; anyOfN: number; examples: string[] }> = {};
for (const kind of kinds) {
  const prompts = evaluationPrompts(PER_KIND, 0).filter((p) => p.query.capability === kind);
  const score = { prompts: prompts.length, firstSample: 0, clipBest: 0, anyOfN: 0, examples: prompts.slice(0, 3).map((p) => p.caption) };
  for (const p of prompts) {
    const out = await generateImages(transformer, dvae, tokenizer, Array<string>(N).fill(p.caption), { seed: SEED, run });
    const v = await judgeSamples(clip.model, clipText(p.caption), p.caption, out.images, S, run);
    score.firstSample += v.first ? 1 : 0;
    score.clipBest += v.best ? 1 : 0;
    score.anyOfN += v.any ? 1 : 0;
  }
  shapes[kind] = score;
  console.log(`${kind.padEnd(10)} ${prompts.length} prompts, n = ${N}: detector passes the first sample ${score.firstSample}/${prompts.length}, CLIP's best ${score.clipBest}/${prompts.length}, any of the ${N} ${score.anyOfN}/${prompts.length}`);
}

let emoji: { pairs: number; realImages: { textToImage: number; imageToText: number }; firstSampleToCaption: number } | null = null;
const captions: string[] = [];
const images: Uint8Array[] = [];
try {
  for await (const b of createLoader({ kind: 'emoji', split: 'test', seed: 1 }, { batchSize: 32, size: S, preset: 'transformer', seed: 1, workers: 1 })) {
    b.captions.forEach((caption, i) => {
      // Emoji differing only in skin tone share a caption; a repeated caption would make retrieval ambiguous.
      if (captions.length < EMOJI && !captions.includes(caption)) {
        captions.push(caption);
        images.push(b.images.slice(i * per, (i + 1) * per));
      }
    });
    if (captions.length >= EMOJI) break;
  }
} catch (err) {
  console.log(`emoji: skipped (${(err as Error).message})`);
}
if (captions.length > 1) {
  const E = clip.model.config.embedDim;
  const text = new Int32Array(captions.length * clip.model.config.textLen);
  captions.forEach((c, i) => text.set(clipText(c), i * clip.model.config.textLen));
  const textEmb = await clip.model.encodeText(text, run);
  const real = new Uint8Array(captions.length * per);
  images.forEach((im, i) => real.set(im, i * per));
  const realImages = retrievalTop1(textEmb, await clip.model.encodeImages(real, run), E);
  const samples = await generateImages(transformer, dvae, tokenizer, captions, { seed: SEED, run });
  const sampled = retrievalTop1(textEmb, await clip.model.encodeImages(samples.images, run), E);
  emoji = { pairs: captions.length, realImages, firstSampleToCaption: sampled.imageToText };
  console.log(
    `emoji      ${captions.length} held-out captions: CLIP matches the real image to its caption ${(100 * realImages.imageToText).toFixed(1)}%, ` +
      `the transformer's first sample ${(100 * sampled.imageToText).toFixed(1)}% (chance ${(100 / captions.length).toFixed(1)}%)`,
  );
}

const seconds = (performance.now() - t0) / 1000;
console.log(`${files.manifest.name}: ${seconds.toFixed(0)} s`);
const dir = join(root, 'benchmarks', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `model-${files.manifest.name}${argStr('--tag') ?? ''}.json`), JSON.stringify({ model: files.manifest, n: N, seed: SEED, shapes, emoji, seconds }, null, 2));
