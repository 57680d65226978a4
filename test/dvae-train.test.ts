import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { detect } from '../lib/data/shapes/detect.js';
import { shapesExamples } from '../lib/data/shapes/index.js';
import type { Batch } from '../lib/data/types.js';
import { Arena, liveBytes } from '../lib/engine.js';
import { DalleError } from '../lib/errors.js';
import { readSafetensors } from '../lib/formats/safetensors.js';
import type { DvaeConfig } from '../lib/models/dvae/config.js';
import { evaluateDvae } from '../lib/models/dvae/evaluate.js';
import { loadDvae, loadOpenAIDvae, transposeConvWeight } from '../lib/models/dvae/io.js';
import { Dvae, dvaeParamSpecs } from '../lib/models/dvae/model.js';
import { codeUsage, psnr } from '../lib/models/dvae/metrics.js';
import { DVAE_PAPER_SCHEDULES, trainDvae } from '../lib/models/dvae/train.js';
import { asyncRunner, syncRunner } from '../lib/nn/runner.js';
import { Tensor } from '../lib/tensor.js';
import { cosineAt } from '../lib/train/schedule.js';
import { learningRateAt, type TrainProgress } from '../lib/train/trainer.js';
import { randomArray, rng } from './helpers/gradcheck.js';
import { philoxWords, unitOpen } from './helpers/philox.js';
import { torchFixtureInput } from './helpers/dvae-ref.js';

const TINY: DvaeConfig = { imageSize: 8, nHid: 8, groupCount: 2, blocksPerGroup: 1, vocabSize: 16, nInit: 12 };
const tmp = (): string => mkdtempSync(join(tmpdir(), 'dalle-dvae-train-'));

test('cosine schedules follow the spec: β 0 → 6.6 over 5k, τ 1 → 1/16 over 150k, lr 1e-4 → 1.25e-6 over 1.2M', (t) => {
  const { beta, tau, lr } = DVAE_PAPER_SCHEDULES;
  t.is(cosineAt(beta, 0), 0);
  t.true(Math.abs(cosineAt(beta, 2500) - 3.3) < 1e-12);
  t.true(Math.abs(cosineAt(beta, 1250) - 3.3 * (1 - Math.SQRT1_2)) < 1e-12); // (1 + cos(π/4))/2 of the way from 6.6
  t.is(cosineAt(beta, 5000), 6.6);
  t.is(cosineAt(beta, 1e6), 6.6);
  t.is(cosineAt(tau, 0), 1);
  t.true(Math.abs(cosineAt(tau, 75_000) - (1 + 1 / 16) / 2) < 1e-12);
  t.is(cosineAt(tau, 150_000), 1 / 16);
  t.is(cosineAt(lr, 0), 1e-4);
  t.is(cosineAt(lr, 2_000_000), 1.25e-6);
  // Monotone between the ends.
  for (let s = 0; s < 5000; s += 250) t.true(cosineAt(beta, s + 250) > cosineAt(beta, s));
});

/** The objective computed by hand from the model's own encoder logits and decoder outputs (double precision). */
async function lossByHand(
  model: Dvae,
  x: Float32Array,
  B: number,
  beta: number,
  tau: number,
  seed: number,
  offset: number,
  squaredErrorWeight?: number,
): Promise<number> {
  const { vocabSize: K, imageSize: S } = model.config;
  const g = model.grid;
  using xt = Tensor.from(x, [B, S, S, 3]);
  using logitsT = await model.logits(xt, syncRunner);
  const logits = logitsT.toFloat32Array();
  const noise = philoxWords(seed, offset, logits.length);
  const y = new Float32Array(logits.length);
  let kl = 0;
  for (let n = 0; n < logits.length / K; n++) {
    const row = logits.subarray(n * K, (n + 1) * K);
    const z = Array.from(row, (l, k) => (l - Math.log(-Math.log(unitOpen(noise[n * K + k]!)))) / tau);
    const mz = Math.max(...z);
    const ez = z.map((v) => Math.exp(v - mz));
    const sz = ez.reduce((a, b) => a + b, 0);
    ez.forEach((v, k) => (y[n * K + k] = v / sz));
    const ml = Math.max(...row);
    const el = Array.from(row, (l) => Math.exp(l - ml));
    const sl = el.reduce((a, b) => a + b, 0);
    for (const e of el) kl += (e / sl) * Math.log((e / sl) * K);
  }
  using yt = Tensor.from(y, [B, g, g, K]);
  using outT = await model.decodeSoft(yt, syncRunner);
  const out = outT.toFloat32Array();
  let nll = 0;
  for (let p = 0; p < B * S * S; p++) {
    for (let c = 0; c < 3; c++) {
      const v = x[p * 3 + c]!;
      const mu = out[p * 6 + c]!;
      const lnb = out[p * 6 + 3 + c]!;
      if (squaredErrorWeight !== undefined) nll += squaredErrorWeight * (1 / (1 + Math.exp(-mu)) - v) ** 2;
      else nll += Math.abs(Math.log(v / (1 - v)) - mu) * Math.exp(-lnb) + lnb + Math.log(2) + Math.log(v * (1 - v));
    }
  }
  return (nll + beta * kl) / (B * S * S * 3);
}

test('the loss equals a hand computation: logit-Laplace NLL + β·KL(noise-free) over B·H·W·3, with soft Gumbel codes', async (t) => {
  using model = Dvae.create(TINY, { seed: 31 });
  const x = randomArray(rng(2), 2 * 8 * 8 * 3, 0.1, 0.9);
  using xt = Tensor.from(x, [2, 8, 8, 3]);
  using grads = new Arena(dvaeParamSpecs(TINY));
  const options = { beta: 2.5, tau: 0.7, seed: 9, offset: 1000 };
  const got = await model.lossAndGrad(xt, grads, options, syncRunner);
  const want = await lossByHand(model, x, 2, options.beta, options.tau, options.seed, options.offset);
  t.true(Math.abs(got.loss - want) < 1e-4 * Math.max(1, Math.abs(want)), `loss ${got.loss} vs by hand ${want}`);
  t.true(Math.abs(got.nll + options.beta * got.kl - got.loss) < 1e-6);
});

test('with squaredErrorWeight the reconstruction term is w·Σ(σ(μ) − x)² and the ln b outputs get no gradient', async (t) => {
  using model = Dvae.create(TINY, { seed: 33 });
  const x = randomArray(rng(4), 2 * 8 * 8 * 3, 0.1, 0.9);
  using xt = Tensor.from(x, [2, 8, 8, 3]);
  using grads = new Arena(dvaeParamSpecs(TINY));
  const options = { beta: 1.5, tau: 0.6, seed: 5, offset: 77, squaredErrorWeight: 40 };
  const got = await model.lossAndGrad(xt, grads, options, syncRunner);
  const want = await lossByHand(model, x, 2, options.beta, options.tau, options.seed, options.offset, options.squaredErrorWeight);
  t.true(Math.abs(got.loss - want) < 1e-5 * Math.max(1, Math.abs(want)), `loss ${got.loss} vs by hand ${want}`);
  // The decoder's output conv: HWIO [1, 1, cin, 6], channels 3..5 are ln b.
  const w = grads.get('decoder.blocks.output.conv.w').toFloat32Array();
  const b = grads.get('decoder.blocks.output.conv.b').toFloat32Array();
  t.deepEqual([...b.subarray(3)], [0, 0, 0]);
  t.true(w.every((v, i) => (i % 6 < 3 ? true : v === 0)));
  t.true(b.subarray(0, 3).some((v) => v !== 0), 'the μ half does get a gradient');
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await t.throwsAsync(model.lossAndGrad(xt, grads, { ...options, squaredErrorWeight: bad }, syncRunner), { instanceOf: DalleError }, String(bad));
  }
});

test.serial('a training step frees every tensor it made, without waiting for a garbage collection', async (t) => {
  using model = Dvae.create(TINY, { seed: 31 });
  using xt = Tensor.from(randomArray(rng(3), 2 * 8 * 8 * 3, 0.1, 0.9), [2, 8, 8, 3]);
  using grads = new Arena(dvaeParamSpecs(TINY));
  const options = { beta: 1, tau: 0.5, seed: 1, offset: 0 };
  for (const run of [syncRunner, asyncRunner]) {
    const trained = await model.lossAndGrad(xt, grads, options, run);
    const before = liveBytes();
    for (let i = 0; i < 3; i++) await model.lossAndGrad(xt, grads, options, run);
    t.is(liveBytes(), before, run === syncRunner ? 'sync' : 'async');
    // The objective alone (held-out evaluation) runs the same forward and frees it too.
    t.deepEqual(await model.loss(xt, options, run), trained);
    t.is(liveBytes(), before, run === syncRunner ? 'sync, loss only' : 'async, loss only');
  }
});

test('weight gradients match finite differences of the loss for every conv of both networks', async (t) => {
  using model = Dvae.create(TINY, { seed: 32 });
  const x = randomArray(rng(3), 1 * 8 * 8 * 3, 0.1, 0.9);
  using xt = Tensor.from(x, [1, 8, 8, 3]);
  using grads = new Arena(dvaeParamSpecs(TINY));
  const options = { beta: 1.5, tau: 0.8, seed: 4, offset: 0 };
  await model.lossAndGrad(xt, grads, options, syncRunner);
  // Run twice: the gradients are written, not accumulated.
  const first = grads.flat.toFloat32Array();
  await model.lossAndGrad(xt, grads, options, syncRunner);
  t.deepEqual(grads.flat.toFloat32Array(), first);

  using scratch = new Arena(dvaeParamSpecs(TINY));
  const rand = rng(77);
  const analytic: number[] = [];
  const numeric: number[] = [];
  const eps = 1e-3;
  // Weights only: a bias moves every position of its channel at once, so its finite difference straddles many ReLU
  // and |·| kinks in this tiny net; the bias gradients are checked against torch's autograd below instead.
  for (const spec of dvaeParamSpecs(TINY).filter((s) => s.name.endsWith('.w'))) {
    const p = model.params.get(spec.name);
    const base = p.toFloat32Array();
    const g = grads.get(spec.name).toFloat32Array();
    for (let s = 0; s < 3; s++) {
      const k = Math.floor(rand() * base.length);
      const at = async (delta: number): Promise<number> => {
        const v = Float32Array.from(base);
        v[k]! += delta;
        p.write(v);
        return (await model.lossAndGrad(xt, scratch, options, syncRunner)).loss;
      };
      numeric.push(((await at(eps)) - (await at(-eps))) / (2 * eps));
      analytic.push(g[k]!);
      p.write(base);
    }
  }
  // Over all sampled coordinates: ReLU and |·| kinks make single coordinates noisy, the whole vector must agree.
  const dot = analytic.reduce((s, a, i) => s + a * numeric[i]!, 0);
  const na = Math.hypot(...analytic);
  const nn = Math.hypot(...numeric);
  const err = Math.hypot(...analytic.map((a, i) => a - numeric[i]!)) / na;
  t.true(dot / (na * nn) > 0.999 && err < 0.03, `cosine ${dot / (na * nn)}, relative error ${err} over ${analytic.length} coordinates`);
});

test("the whole gradient matches torch autograd's on the pickled modules, with the same Gumbel noise", async (t) => {
  const dir = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
  const fixture = JSON.parse(readFileSync(join(dir, 'forward_tiny.json'), 'utf8')) as {
    gradient: { beta: number; tau: number; seed: number; offset: number; loss: number; nll: number; kl: number; grads: Array<{ name: string; sum: number; abs_sum: number; first: number[] }> };
  };
  const want = fixture.gradient;
  using model = loadOpenAIDvae(join(dir, 'encoder_tiny.pkl'), join(dir, 'decoder_tiny.pkl'), { imageSize: 16 });
  const x = torchFixtureInput();
  using xt = Tensor.from(x, [1, 16, 16, 3]);
  using grads = new Arena(dvaeParamSpecs(model.config));
  const got = await model.lossAndGrad(xt, grads, { beta: want.beta, tau: want.tau, seed: want.seed, offset: want.offset }, syncRunner);
  const near = (a: number, b: number, scale: number): boolean => Math.abs(a - b) <= 1e-5 * scale + 2e-3 * Math.abs(b);
  t.true(near(got.loss, want.loss, 1), `loss ${got.loss} vs torch ${want.loss}`);
  t.true(near(got.nll, want.nll, 1) && near(got.kl, want.kl, 1e-2), `nll ${got.nll}/${want.nll}, kl ${got.kl}/${want.kl}`);
  t.is(want.grads.length, dvaeParamSpecs(model.config).length);
  for (const g of want.grads) {
    const spec = dvaeParamSpecs(model.config).find((s) => s.name === g.name)!;
    let ours = grads.get(g.name).toFloat32Array();
    if (spec.shape.length === 4) ours = transposeConvWeight(ours, spec.shape[0]!, spec.shape[2]!, spec.shape[3]!);
    const sum = ours.reduce((a, b) => a + b, 0);
    const absSum = ours.reduce((a, b) => a + Math.abs(b), 0);
    const scale = g.abs_sum / ours.length;
    t.true(near(absSum, g.abs_sum, g.abs_sum) && near(sum, g.sum, g.abs_sum), `${g.name}: sum ${sum}/${g.sum}, |sum| ${absSum}/${g.abs_sum}`);
    g.first.forEach((v, i) => t.true(near(ours[i]!, v, scale), `${g.name}[${i}]: ${ours[i]} vs torch ${v}`));
  }
});

/** Seeded random 8² batches, the same for the same epoch. */
function tinyData(batches: number, B = 4) {
  return async function* (epoch: number): AsyncGenerator<Batch> {
    const rand = rng(100 + epoch);
    for (let b = 0; b < batches; b++) {
      const images = new Uint8Array(B * 8 * 8 * 3).map(() => Math.floor(rand() * 256));
      yield { size: 8, images, captions: Array(B).fill('noise'), keys: Array.from({ length: B }, (_, i) => `${epoch}/${b}/${i}`) };
    }
  };
}

test('training reduces the loss, reports progress, and an aborted run resumes to exactly the uninterrupted result', async (t) => {
  const dir = tmp();
  const common = { data: tinyData(3), batchSize: 4, steps: 8, lr: { from: 3e-3, to: 1e-4, steps: 8 }, beta: { from: 0, to: 1, steps: 4 }, tau: { from: 1, to: 0.5, steps: 8 }, seed: 5 };

  using straight = Dvae.create(TINY, { seed: 40 });
  const events: TrainProgress[] = [];
  const probe = async (): Promise<number> => {
    const first = (await tinyData(1)(0).next()).value as Batch;
    using x = straight.pixelsTensor(first.images);
    return (await straight.loss(x, { beta: 0, tau: 1, seed: 1, offset: 0 })).nll;
  };
  const before = await probe();
  const full = await trainDvae(straight, { ...common, progressEvery: 2, onProgress: (p) => events.push(p), checkpoint: { path: join(dir, 'full.safetensors') } });
  const after = await probe();
  t.is(full.stopped, 'done');
  t.is(full.steps, 8);
  t.deepEqual(events.map((e) => e.step), [2, 4, 6, 8]);
  t.true(events.every((e) => e.epoch >= 0 && e.stepsPerSecond > 0 && Number.isFinite(e.metrics.loss) && e.metrics.tau! <= 1));
  t.true(after < before, `held-fixed batch nll ${before} → ${after}`);

  using interrupted = Dvae.create(TINY, { seed: 40 });
  const controller = new AbortController();
  const part = await trainDvae(interrupted, {
    ...common,
    signal: controller.signal,
    onProgress: (p) => p.step === 5 && controller.abort(),
    progressEvery: 1,
    checkpoint: { path: join(dir, 'part.safetensors') },
  });
  t.is(part.stopped, 'aborted');
  t.is(part.steps, 5);
  const saved = readSafetensors(join(dir, 'part.safetensors'));
  t.deepEqual(JSON.parse(saved.metadata.state!), { step: 5, epoch: 1, batchInEpoch: 2, skippedSteps: 0 });

  using resumed = Dvae.create(TINY, { seed: 999 }); // different weights: all of them must come from the checkpoint
  const rest = await trainDvae(resumed, { ...common, resumeFrom: join(dir, 'part.safetensors') });
  t.is(rest.steps, 8);
  t.deepEqual(resumed.params.flat.toFloat32Array(), straight.params.flat.toFloat32Array());
  t.is(rest.metrics!.loss, full.metrics!.loss);

  // A checkpoint loads as a model: its EMA weights.
  using fromCheckpoint = loadDvae(join(dir, 'full.safetensors'));
  const ema = readSafetensors(join(dir, 'full.safetensors')).tensors.get('ema.decoder.blocks.output.conv.b')!.data as Float32Array;
  t.deepEqual(fromCheckpoint.params.get('decoder.blocks.output.conv.b').toFloat32Array(), ema);
  t.notDeepEqual(ema, straight.params.get('decoder.blocks.output.conv.b').toFloat32Array());
  // The result hands the EMA back too, in the parameter arena's layout.
  using emaModel = Dvae.create(TINY);
  emaModel.params.flat.write(full.ema!);
  t.deepEqual(emaModel.params.flat.toFloat32Array(), fromCheckpoint.params.flat.toFloat32Array());
});

test('held-out evaluation: the objective where the schedules are, under fixed noise, and the argmax codes’ PSNR and perplexity', async (t) => {
  const held = (await tinyData(1, 6)(7).next()).value as Batch; // larger than batchSize: evaluation takes any batch
  const beta = { from: 0, to: 1, steps: 4 };
  const tau = { from: 1, to: 0.5, steps: 8 };
  const options = { data: tinyData(2), batchSize: 4, steps: 8, lr: { from: 3e-3, to: 1e-4, steps: 8 }, beta, tau, squaredError: { steps: 4, weight: 30 }, seed: 5 };
  using model = Dvae.create(TINY, { seed: 42 });
  const events: TrainProgress[] = [];
  const result = await trainDvae(model, { ...options, eval: { every: 3, data: async function* () { yield held; } }, progressEvery: 1, onProgress: (p) => events.push(p) });
  t.deepEqual([...new Set(events.map((e) => e.evalStep).filter((s) => s !== undefined))], [3, 6, 8]);
  t.true(events.every((e) => e.evalMetrics === undefined || (e.evalMetrics.psnr! > 0 && e.evalMetrics.perplexity! >= 1)));
  // Evaluating swaps the EMA weights in and back out: training goes on exactly as without it.
  using plain = Dvae.create(TINY, { seed: 42 });
  await trainDvae(plain, options);
  t.deepEqual(model.params.flat.toFloat32Array(), plain.params.flat.toFloat32Array());

  // The figures are the EMA weights' (what a run saves). After update 8, past the squared-error updates: the
  // logit-Laplace objective at β(8), τ(8), noise words from 0.
  model.params.flat.write(result.ema!);
  using x = model.pixelsTensor(held.images);
  const direct = await model.loss(x, { beta: cosineAt(beta, 8), tau: cosineAt(tau, 8), seed: 5, offset: 0 });
  const m = result.evalMetrics!;
  const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
  t.true(close(m.loss, direct.loss) && close(m.nll!, direct.nll) && close(m.kl!, direct.kl), `${JSON.stringify(m)} vs ${JSON.stringify(direct)}`);
  const examples = held.captions.map((caption, i) => ({ key: held.keys[i]!, caption, image: { width: 8, height: 8, data: held.images.subarray(i * 192, (i + 1) * 192) } }));
  const evaluation = await evaluateDvae(model, examples);
  t.true(close(m.psnr!, evaluation.psnr), `psnr ${m.psnr} vs evaluateDvae ${evaluation.psnr}`);
  t.true(close(m.perplexity!, evaluation.usage.perplexity), `perplexity ${m.perplexity} vs ${evaluation.usage.perplexity}`);
  // Evaluated again, the same numbers: the noise is fixed.
  t.deepEqual(await model.loss(x, { beta: cosineAt(beta, 8), tau: cosineAt(tau, 8), seed: 5, offset: 0 }), direct);
});

test('a learning-rate warm-up scales the first updates by (i+1)/N, then follows the cosine schedule', async (t) => {
  using model = Dvae.create(TINY, { seed: 3 });
  const lr = { from: 2e-3, to: 1e-4, steps: 6 };
  const seen: number[] = [];
  await trainDvae(model, { data: tinyData(2), batchSize: 4, steps: 6, lr, lrWarmupSteps: 3, progressEvery: 1, onProgress: (p) => seen.push(p.lr) });
  const expected = [0, 1, 2, 3, 4, 5].map((i) => cosineAt(lr, i) * Math.min(1, (i + 1) / 3));
  t.deepEqual(seen, expected);
  t.is(seen[0], (2e-3 * 1) / 3);
  t.is(learningRateAt({ lr }, 4), cosineAt(lr, 4)); // no warm-up by default
});

test('a resume refuses a checkpoint of another config; bad options are E_INVALID_ARGUMENT', async (t) => {
  const dir = tmp();
  using a = Dvae.create(TINY, { seed: 1 });
  await trainDvae(a, { data: tinyData(1), batchSize: 4, steps: 1, checkpoint: { path: join(dir, 'a.safetensors') } });
  using b = Dvae.create({ ...TINY, vocabSize: 32 }, { seed: 1 });
  const err = await t.throwsAsync(trainDvae(b, { data: tinyData(1), batchSize: 4, steps: 2, resumeFrom: join(dir, 'a.safetensors') }), { instanceOf: DalleError });
  t.regex(err!.message, /model config .* differs/);
  const bad = [
    { steps: -1 },
    { batchSize: 0 },
    { emaDecay: 1 },
    { tau: { from: 1, to: 0, steps: 5 } },
    { lr: { from: 1, to: 0, steps: 1.5 } },
    { squaredError: { steps: -1 } },
    { squaredError: { steps: 5, weight: 0 } },
    { squaredError: { steps: Number.NaN } },
    { lrWarmupSteps: -1 },
    { lrWarmupSteps: 2.5 },
  ];
  for (const o of bad) {
    await t.throwsAsync(async () => trainDvae(a, { data: tinyData(1), batchSize: 4, steps: 1, ...o }), { instanceOf: DalleError }, JSON.stringify(o));
  }
  const big = await t.throwsAsync(trainDvae(a, { data: tinyData(1, 8), batchSize: 4, steps: 1 }), { instanceOf: DalleError });
  t.regex(big!.message, /batch of 8 exceeds batchSize 4/);
  const empty = await t.throwsAsync(trainDvae(a, { data: tinyData(0), batchSize: 4, steps: 1 }), { instanceOf: DalleError });
  t.regex(empty!.message, /yielded no batches/);
});

test('PSNR and code usage', (t) => {
  t.is(psnr(Uint8Array.from([1, 2, 3]), Uint8Array.from([1, 2, 3])), Infinity);
  t.true(Math.abs(psnr(Uint8Array.from([0, 0]), Uint8Array.from([255, 0])) - 10 * Math.log10(2)) < 1e-12);
  const u = codeUsage([0, 1, 2, 3, 0, 1, 2, 3], 16);
  t.true(Math.abs(u.perplexity - 4) < 1e-12);
  t.is(u.used, 4);
});

test('evaluateDvae: PSNR and code usage of argmax reconstructions, and the detector verdict per capability', async (t) => {
  using model = Dvae.create({ imageSize: 32, nHid: 8, groupCount: 2, blocksPerGroup: 1, vocabSize: 16, nInit: 8 }, { seed: 3 });
  const scenes = [...shapesExamples({ kind: 'shapes', size: 32, count: 5, split: 'test', seed: 2 })];
  const packed = new Uint8Array(5 * 32 * 32 * 3);
  scenes.forEach((e, i) => packed.set(e.image.data, i * 32 * 32 * 3));
  const seen: string[] = [];
  const result = await evaluateDvae(model, scenes, { batchSize: 2, shapes: true, onReconstruction: (e) => seen.push(e.key) });
  t.is(result.images, 5);
  t.deepEqual(seen, scenes.map((e) => e.key));
  t.is(result.psnr, psnr(packed, await model.reconstruct(packed)));
  t.deepEqual(result.usage, codeUsage(await model.encode(packed), 16));
  const det = Object.values(result.detector!);
  t.is(det.reduce((n, d) => n + d.total, 0), 5);
  t.is(result.detectorAgreement, det.reduce((n, d) => n + d.agree, 0) / 5);
  const recon = await model.reconstruct(packed);
  const colours = (data: Uint8Array) => detect({ width: 32, height: 32, data }).objects.map((o) => o.color).sort().join();
  const same = scenes.filter((e, i) => colours(e.image.data) === colours(recon.subarray(i * 3072, (i + 1) * 3072))).length;
  t.is(result.colorAgreement, same / 5);
  // An original against itself: every caption and every colour agrees.
  const identity = { config: { ...model.config, vocabSize: 256 }, encode: async (x: Uint8Array) => x, decode: async (x: Uint8Array) => x } as unknown as Dvae;
  const perfect = await evaluateDvae(identity, scenes, { shapes: true });
  t.is(perfect.detectorAgreement, 1);
  t.is(perfect.colorAgreement, 1);
  await t.throwsAsync(evaluateDvae(model, []), { instanceOf: DalleError, message: /no examples/ });
  await t.throwsAsync(evaluateDvae(model, [{ ...scenes[0]!, image: { width: 8, height: 8, data: new Uint8Array(192) } }]), { instanceOf: DalleError, message: /8x8/ });
});
