import { rmSync } from 'node:fs';

import test from 'ava';

import { Tensor } from '../lib/index.js';
import { checkClipConfig, Clip, CLIP_PRESETS, clipParamSpecs } from '../lib/models/clip/model.js';
import { CLIP_INIT_LOG_SCALE, CLIP_MAX_LOGIT_SCALE, clipLoss } from '../lib/models/clip/loss.js';
import { syncRunner } from '../lib/nn/runner.js';
import { randomArray, rng } from './helpers/gradcheck.js';

test('the contrastive loss equals a hand computation', (t) => {
  // Unit vectors: image 0 = text 0 = (1, 0); image 1 = (0, 1), text 1 = (0.6, 0.8). Norms do not matter: scaled by 3 and 2.
  const text = Float32Array.from([3, 0, 1.2, 1.6]);
  const image = Float32Array.from([2, 0, 0, 5]);
  const s = 10;
  const r = clipLoss(text, image, 2, Math.log(s));
  // cos = [[1, 0.6], [0, 0.8]] (rows images, columns texts).
  const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));
  const rows = lse(s * 1, s * 0.6) - s * 1 + (lse(s * 0, s * 0.8) - s * 0.8);
  const cols = lse(s * 1, s * 0) - s * 1 + (lse(s * 0.6, s * 0.8) - s * 0.8);
  // 1.2 and 1.6 are f32 inputs, not exact: agreement to f32 rounding.
  t.true(Math.abs(r.loss - (rows + cols) / 4) < 1e-7, `${r.loss} vs ${(rows + cols) / 4}`);
  t.true(Math.abs(r.scale - 10) < 1e-12);
  t.is(r.imageToTextAccuracy, 1);
  t.is(r.textToImageAccuracy, 1);
});

test('the contrastive loss gradients match finite differences; the scale is capped at 100', (t) => {
  const rand = rng(3);
  const E = 5;
  const B = 4;
  const text = randomArray(rand, B * E);
  const image = randomArray(rand, B * E);
  const theta = 1.3;
  const r = clipLoss(text, image, E, theta);
  const eps = 1e-3;
  for (const [name, x, g] of [['text', text, r.dText], ['image', image, r.dImage]] as const) {
    for (let k = 0; k < x.length; k += 3) {
      const at = (d: number) => {
        const y = Float32Array.from(x);
        y[k]! += d;
        return name === 'text' ? clipLoss(y, image, E, theta).loss : clipLoss(text, y, E, theta).loss;
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      t.true(Math.abs(numeric - g[k]!) < 1e-3 + 1e-2 * Math.abs(numeric), `${name}[${k}]: ${g[k]} vs ${numeric}`);
    }
  }
  const dTheta = (clipLoss(text, image, E, theta + eps).loss - clipLoss(text, image, E, theta - eps).loss) / (2 * eps);
  t.true(Math.abs(dTheta - r.dLogScale) < 1e-4, `${r.dLogScale} vs ${dTheta}`);
  const capped = clipLoss(text, image, E, Math.log(500));
  t.is(capped.scale, CLIP_MAX_LOGIT_SCALE);
  t.is(capped.dLogScale, 0);
  t.is(clipLoss(text, image, E, Math.log(500)).loss, clipLoss(text, image, E, Math.log(100) + 1e-9).loss);
  t.throws(() => clipLoss(text, image.subarray(0, 5), E, 0), { message: /both be/ });
});

const GRADCHECK_CONFIGS = {
  conv: { textLen: 4, textVocab: 9, textLayers: 2, textWidth: 16, textHeads: 2, imageSize: 8, imageWidth: 8, imageGroups: 2, imageFeatures: 12, embedDim: 6 },
  // 4 patches of 4×4, two heads of 4.
  vit: { preset: 'shapes32-vit', textLen: 4, textVocab: 9, textLayers: 2, textWidth: 16, textHeads: 2, imageSize: 8, imageWidth: 8, imagePatch: 4, imageLayers: 2, imageHeads: 2, embedDim: 6 },
} as const;

for (const [encoder, config] of Object.entries(GRADCHECK_CONFIGS)) test(`CLIP model gradients match finite differences of its loss (${encoder} image encoder)`, async (t) => {
  using clip = Clip.create(config, { seed: 2 });
  t.is(clip.config.imageEncoder, encoder as 'conv' | 'vit');
  t.is(clip.params.get('logit_scale').toFloat32Array()[0], Math.fround(CLIP_INIT_LOG_SCALE));
  const B = 3;
  const rand = rng(7);
  const text = Int32Array.from({ length: B * 4 }, (_, i) => (i % 4 === 3 ? -1 : Math.floor(rand() * 9)));
  const images = Uint8Array.from({ length: B * 8 * 8 * 3 }, () => Math.floor(rand() * 256));
  const grads = new Map([...clip.params.tensors].map(([n, tt]) => [n, Tensor.zeros(tt.shape)]));
  const table = { get: (n: string) => grads.get(n)! };
  try {
    await clip.lossAndGrad(text, images, table, syncRunner);
    const eps = 1e-3;
    for (const spec of clipParamSpecs(clip.config)) {
      const p = clip.params.get(spec.name);
      const base = p.toFloat32Array();
      const g = grads.get(spec.name)!.toFloat32Array();
      const k = Math.floor(rand() * base.length);
      const at = async (d: number) => {
        const y = Float32Array.from(base);
        y[k]! += d;
        p.write(y);
        return (await clip.lossAndGrad(text, images, { get: (n: string) => Tensor.zeros(clip.params.get(n).shape) }, syncRunner)).loss;
      };
      const numeric = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      p.write(base);
      t.true(Math.abs(numeric - g[k]!) <= 3e-3 + 0.03 * Math.abs(numeric), `${spec.name}[${k}]: analytic ${g[k]}, numeric ${numeric}`);
    }
  } finally {
    grads.forEach((g) => g.dispose());
  }
});

test('the ViT sees patches: moving whole patches moves nothing once positions are equal; moving pixels within one does', async (t) => {
  using clip = Clip.create({ preset: 'shapes32-vit', textLen: 4, textVocab: 9, imageSize: 8, imageWidth: 8, imagePatch: 4, imageLayers: 2, imageHeads: 2, embedDim: 6 }, { seed: 4 });
  // Equal position embeddings make the encoder a function of the set of patches: attention is bidirectional, the pool a mean.
  clip.params.get('image.pos').write(new Float32Array(4 * 8).fill(0.3));
  const rand = rng(11);
  const image = Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rand() * 256));
  const at = (img: Uint8Array, y: number, x: number) => img.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
  // Swap the top-left and bottom-right 4×4 patches.
  const swapped = Uint8Array.from(image);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
    at(swapped, y, x).set(at(image, y + 4, x + 4));
    at(swapped, y + 4, x + 4).set(at(image, y, x));
  }
  // Swap two pixels that straddle a patch border (columns 3 and 4).
  const straddled = Uint8Array.from(image);
  at(straddled, 0, 3).set(at(image, 0, 4));
  at(straddled, 0, 4).set(at(image, 0, 3));
  const emb = await clip.encodeImages(Uint8Array.from([...image, ...swapped, ...straddled]), syncRunner);
  const diff = (a: number, b: number) => Math.max(...Array.from({ length: 6 }, (_, i) => Math.abs(emb[a * 6 + i]! - emb[b * 6 + i]!)));
  t.true(diff(0, 1) < 1e-5, `patch swap changed the embedding by ${diff(0, 1)}`);
  t.true(diff(0, 2) > 1e-3, `a pixel swap across patches changed it by only ${diff(0, 2)}`);
});

test('CLIP configs: the encoder kind decides which fields are needed; mixing them is an error; a ViT round-trips', async (t) => {
  using byDefault = Clip.create('shapes32');
  t.deepEqual(byDefault.config, { ...CLIP_PRESETS[`shapes32-${byDefault.config.imageEncoder!}`] });
  using vit = Clip.create('shapes32-vit');
  t.is(vit.config.imageEncoder, 'vit');
  t.throws(() => Clip.create({ preset: 'shapes32-vit', imagePatch: 5 }), { code: 'E_INVALID_ARGUMENT', message: /imageSize 32 is not a multiple of imagePatch 5/ });
  t.throws(() => Clip.create({ preset: 'shapes32-vit', imageHeads: 3 }), { code: 'E_INVALID_ARGUMENT', message: /imageWidth 64 is not a multiple of imageHeads 3/ });
  t.throws(() => Clip.create({ preset: 'shapes32-vit', imageGroups: 3 }), { code: 'E_INVALID_ARGUMENT', message: /imageGroups belongs to the conv/ });
  t.throws(() => Clip.create({ preset: 'shapes32-conv', imageLayers: 0 }), { code: 'E_INVALID_ARGUMENT', message: /imageLayers belongs to the vit/ });
  t.throws(() => Clip.create({ preset: 'shapes32-conv', imageEncoder: 'mlp' as 'vit' }), { code: 'E_INVALID_ARGUMENT', message: /'conv' or 'vit'/ });
  t.throws(() => Clip.create('nope' as 'shapes32'), { code: 'E_INVALID_ARGUMENT', message: /unknown CLIP preset/ });
  // Files written before the ViT existed have no imageEncoder: they are conv nets.
  const { imageEncoder: _kind, ...legacy } = CLIP_PRESETS['shapes32-conv'];
  t.is(checkClipConfig(legacy).imageEncoder, 'conv');
  const { saveClip, loadClip } = await import('../lib/models/clip/io.js');
  const path = `${process.env.TMPDIR ?? '/tmp'}/clip-vit-${process.pid}.safetensors`;
  await saveClip(vit, path);
  using copy = loadClip(path).model;
  t.deepEqual(copy.config, vit.config);
  t.deepEqual(copy.params.flat.toFloat32Array(), vit.params.flat.toFloat32Array());
  rmSync(path, { force: true });
});

test('rerank orders images by CLIP similarity, independent of the scoring batch; weights round-trip', async (t) => {
  const { rerank, cosineMatrix, saveClip, loadClip } = await import('../lib/models/clip/index.js');
  using clip = Clip.create({ textLen: 4, textVocab: 300, textLayers: 1, textWidth: 16, textHeads: 1, imageSize: 8, imageWidth: 8, imageGroups: 2, imageFeatures: 12, embedDim: 6 }, { seed: 5 });
  const rand = rng(9);
  const n = 7;
  const images = Uint8Array.from({ length: n * 8 * 8 * 3 }, () => Math.floor(rand() * 256));
  const text = Int32Array.from([3, 1, -1, -1]);
  const cos = cosineMatrix(await clip.encodeText(text, syncRunner), await clip.encodeImages(images, syncRunner), 6);
  const expected = Array.from({ length: n }, (_, i) => i).sort((a, b) => cos[b]! - cos[a]!);
  const all = await rerank(clip, text, images, n, { batch: 3, run: syncRunner });
  t.deepEqual(all.order, expected);
  for (let r = 1; r < n; r++) t.true(all.scores[r - 1]! >= all.scores[r]!);
  const top2 = await rerank(clip, text, images, 2, { batch: 64, run: syncRunner });
  t.deepEqual(top2.order, expected.slice(0, 2));
  t.true(Math.abs(top2.scores[0]! - cos[expected[0]!]!) < 1e-6);
  const { trainBpe } = await import('../lib/tokenizer/train.js');
  const tok = trainBpe(['a b c', 'a b'], { vocabSize: 300, minFrequency: 1 });
  const { textSlots } = await import('../lib/models/transformer/train.js');
  t.deepEqual(await rerank(clip, 'a b', images, 3, { tokenizer: tok, run: syncRunner }), await rerank(clip, textSlots(tok, 'a b', 4), images, 3, { run: syncRunner }));
  await t.throwsAsync(() => rerank(clip, 'a b', images, 1), { message: /tokenizer/ });
  await t.throwsAsync(() => rerank(clip, text, images, 0), { message: /keep/ });
  await t.throwsAsync(() => rerank(clip, Int32Array.from([1, 2]), images, 1), { message: /4 slots/ });

  const path = `${process.env.TMPDIR ?? '/tmp'}/clip-io-${process.pid}.safetensors`;
  await saveClip(clip, path);
  const { model } = loadClip(path);
  using copy = model;
  t.deepEqual(copy.params.flat.toFloat32Array(), clip.params.flat.toFloat32Array());
  rmSync(path, { force: true });
});

test('the reranking pipeline keeps the best of n by CLIP score, the same for any batch size', async (t) => {
  const { generateReranked, cosineMatrix } = await import('../lib/models/clip/index.js');
  const { DalleTransformer } = await import('../lib/models/transformer/model.js');
  const { Dvae } = await import('../lib/models/dvae/model.js');
  const { trainBpe } = await import('../lib/tokenizer/train.js');
  const tokenizer = trainBpe(['a red circle', 'a blue square', 'a red square'], { vocabSize: 270 });
  using transformer = DalleTransformer.create({ layers: 1, width: 16, heads: 1, textLen: 4, textVocab: 270, imageVocab: 512, grid: 16 }, { seed: 3 });
  using dvae = Dvae.create('small32', { seed: 1 });
  using clip = Clip.create({ textLen: 4, textVocab: 270, textLayers: 1, textWidth: 16, textHeads: 1, imageSize: 32, imageWidth: 8, imageGroups: 2, imageFeatures: 12, embedDim: 6 }, { seed: 5 });
  const p = { transformer, tokenizer, dvae, clip };
  const a = await generateReranked(p, 'a red circle', { n: 5, keep: 2, batch: 2, seed: 4, run: syncRunner });
  const b = await generateReranked(p, 'a red circle', { n: 5, keep: 2, batch: 5, seed: 4, run: syncRunner });
  t.deepEqual(a.indices, b.indices);
  t.deepEqual(a.scores, b.scores);
  t.deepEqual(a.images, b.images);
  t.is(a.images.length, 2 * 32 * 32 * 3);
  // The kept ones are the top two of all five samples by CLIP score.
  const { generateImages } = await import('../lib/models/transformer/generate.js');
  const all = await generateImages(transformer, dvae, tokenizer, Array<string>(5).fill('a red circle'), { seed: 4, run: syncRunner });
  const { textSlots } = await import('../lib/models/transformer/train.js');
  const cos = cosineMatrix(await clip.encodeText(textSlots(tokenizer, 'a red circle', 4), syncRunner), await clip.encodeImages(all.images, syncRunner), 6);
  const order = [0, 1, 2, 3, 4].sort((x, y) => cos[y]! - cos[x]!);
  t.deepEqual(a.indices, order.slice(0, 2));
  t.deepEqual(a.images.subarray(0, 32 * 32 * 3), all.images.subarray(order[0]! * 3072, (order[0]! + 1) * 3072));
  await t.throwsAsync(() => generateReranked(p, 'x', { n: 2, keep: 3 }), { message: /keep/ });
});
