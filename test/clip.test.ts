import test from 'ava';

import { Tensor } from '../lib/index.js';
import { Clip, clipParamSpecs } from '../lib/models/clip/model.js';
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

test('CLIP model gradients match finite differences of its loss', async (t) => {
  using clip = Clip.create({ textLen: 4, textVocab: 9, textLayers: 2, textWidth: 16, textHeads: 2, imageSize: 8, imageWidth: 8, imageGroups: 2, imageFeatures: 12, embedDim: 6 }, { seed: 2 });
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
