import test from 'ava';

import { DalleError, liveBytes, Tensor, transformer } from '../lib/index.js';
import { syncRunner } from '../lib/nn/runner.js';
import { blockForward } from '../lib/models/transformer/layers.js';
import type { TensorTable } from '../lib/models/dvae/network.js';
import type { AttentionMaskKind } from '../lib/ops/attention.js';
import { specAllowed } from './helpers/masks.js';
import { maxAbsDiff, randomArray, rng } from './helpers/gradcheck.js';

const { DalleTransformer, layerMask, transformerParamSpecs, IncrementalDecoder, sampleIndex, generateCodes } = transformer;

/** Four layers: row, column, row, conv. S = 3 + 16 = 19. */
const MICRO = { layers: 4, width: 16, heads: 2, textLen: 3, textVocab: 7, imageVocab: 5, grid: 4 };

function randomBatch(seed: number, B: number, cfg = MICRO): { text: Int32Array; codes: Int32Array } {
  const rand = rng(seed);
  const text = new Int32Array(B * cfg.textLen);
  for (let i = 0; i < text.length; i++) text[i] = rand() < 0.3 ? -1 : Math.floor(rand() * cfg.textVocab);
  const codes = new Int32Array(B * cfg.grid * cfg.grid);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(rand() * cfg.imageVocab);
  return { text, codes };
}

/** A gradient table shaped like the model's parameters. */
function gradTable(model: transformer.DalleTransformer): TensorTable & { dispose(): void; all: Map<string, Tensor> } {
  const all = new Map([...model.params.tensors].map(([n, t]) => [n, Tensor.zeros(t.shape)]));
  return { all, get: (n: string) => all.get(n)!, dispose: () => all.forEach((t) => t.dispose()) };
}

test('the layer schedule is the paper’s: 47 row, 16 column (ℓ = 2, 6, …, 62), conv last', (t) => {
  const masks = Array.from({ length: 64 }, (_, l) => layerMask(l, 64));
  t.is(masks.filter((m) => m === 'row').length, 47);
  t.deepEqual(
    masks.flatMap((m, l) => (m === 'column' ? [l + 1] : [])),
    Array.from({ length: 16 }, (_, i) => 2 + 4 * i),
  );
  t.is(masks[63], 'conv');
  t.deepEqual(Array.from({ length: 4 }, (_, l) => layerMask(l, 4)), ['row', 'column', 'row', 'conv']);
});

test.serial('the paper preset is described (12B parameters) without allocating it', (t) => {
  const before = liveBytes();
  using model = DalleTransformer.create('paper', { lazy: true });
  t.is(liveBytes(), before, 'nothing allocated');
  t.false(model.allocated);
  const n = model.parameterCount;
  // 64·12·3968² ≈ 12.09B in the blocks, plus ≈ 0.2B of embeddings and head (DALLE-SPEC.md §3).
  t.true(n > 12.0e9 && n < 12.5e9, `parameter count ${n}`);
  t.is(model.memory.parameterBytes, 4 * n);
  t.is(model.memory.trainingStateBytes, 16 * n);
  t.is(model.seq.seqLen, 256 + 1024);
  t.is(model.seq.headSize, 16384 + 256 + 8192);
  t.true(model.memory.kvCacheBytesPerSample > 0 && model.memory.activationBytesPerSample > 0);
  t.is(liveBytes(), before, 'still nothing allocated');
});

test('presets and bad configs', (t) => {
  using tiny = DalleTransformer.create('tiny', { lazy: true });
  t.deepEqual(tiny.config, { layers: 4, width: 128, heads: 2, textLen: 16, textVocab: 512, imageVocab: 512, grid: 16 });
  using custom = DalleTransformer.create({ preset: 'tiny', layers: 2 }, { lazy: true });
  t.is(custom.config.layers, 2);
  for (const bad of [{ width: 10, heads: 3 }, { layers: 0 }, { grid: 1 }, { textLen: 2.5 }]) {
    const err = t.throws(() => DalleTransformer.create({ ...MICRO, ...bad }, { lazy: true }));
    t.true(err instanceof DalleError && err.code === 'E_INVALID_ARGUMENT', JSON.stringify(bad));
  }
  t.throws(() => DalleTransformer.create('huge' as 'tiny'), { message: /unknown transformer preset/ });
});

test('the sequence layout: BOS, text slots with per-position pads, codes offset by the text side', (t) => {
  using model = DalleTransformer.create(MICRO);
  const { inputs, targets, batch } = model.tokenBatch(Int32Array.from([4, -1, 6]), Int32Array.from({ length: 16 }, (_, i) => i % 5));
  t.is(batch, 1);
  const textSide = 7 + 3;
  t.deepEqual([...inputs.slice(0, 4)], [textSide + 5, 4, 7 + 1, 6], 'BOS, id 4, PAD_1 = textVocab + 1, id 6');
  t.deepEqual([...targets.slice(0, 3)], [4, 8, 6]);
  t.deepEqual([...inputs.slice(4)], Array.from({ length: 15 }, (_, i) => textSide + (i % 5)), 'z_0..z_14 as inputs');
  t.deepEqual([...targets.slice(3)], Array.from({ length: 16 }, (_, i) => textSide + (i % 5)), 'z_0..z_15 as targets');
  t.throws(() => model.tokenBatch(Int32Array.from([7, 0, 0]), new Int32Array(16)), { message: /text\[0\]\[0\] = 7/ });
  t.throws(() => model.tokenBatch(Int32Array.from([0, 0, 0]), new Int32Array(16).fill(5)), { message: /codes\[0\]\[0\] = 5/ });
  t.throws(() => model.tokenBatch(Int32Array.from([0, 0]), new Int32Array(16)), { message: /B·3 slots/ });
});

test('every parameter gradient matches finite differences of the loss', async (t) => {
  using model = DalleTransformer.create(MICRO, { seed: 3 });
  // Larger weights than the init so every path carries a gradient well above f32 noise.
  const flat = model.params.flat.toFloat32Array();
  const r0 = rng(11);
  for (let i = 0; i < flat.length; i++) flat[i] = flat[i]! * 5 + (flat[i] === 1 ? 0 : 0.02 * (r0() - 0.5));
  model.params.flat.write(flat);
  const batch = model.tokenBatch(...Object.values(randomBatch(5, 2)) as [Int32Array, Int32Array]);
  const grads = gradTable(model);
  try {
    await model.lossAndGrad(batch, grads, syncRunner);
    const rand = rng(17);
    // Small enough that curvature does not matter at these weights, large enough for f32 loss differences.
    const eps = 1e-3;
    let checked = 0;
    for (const spec of transformerParamSpecs(model.config)) {
      const p = model.params.get(spec.name);
      const g = grads.get(spec.name).toFloat32Array();
      const base = p.toFloat32Array();
      for (let s = 0; s < 2; s++) {
        const k = Math.floor(rand() * base.length);
        const at = async (delta: number): Promise<number> => {
          const d = Float32Array.from(base);
          d[k]! += delta;
          p.write(d);
          return (await model.loss(batch, syncRunner)).loss;
        };
        const numeric = ((await at(eps)) - (await at(-eps))) / (2 * eps);
        p.write(base);
        const diff = Math.abs(numeric - g[k]!);
        t.true(diff <= 2e-3 + 0.02 * Math.abs(numeric), `${spec.name}[${k}]: analytic ${g[k]}, numeric ${numeric}`);
        checked++;
      }
    }
    t.true(checked >= 2 * (4 + 4 * 12 + 4));
  } finally {
    grads.dispose();
  }
});


test('a layer’s output at a query ignores every position its mask hides, and depends on the others', async (t) => {
  using model = DalleTransformer.create({ ...MICRO, layers: 4, grid: 5 }, { seed: 8 });
  const ctx = model.context(syncRunner);
  const { seqLen: S, prefixLen } = model.seq;
  const C = model.config.width;
  const rand = rng(21);
  const x0 = randomArray(rand, 2 * S * C);
  const forward = async (layer: number, data: Float32Array): Promise<Float32Array> => {
    using x = Tensor.from(data, [2, S, C]);
    using y = (await blockForward(ctx, layer, layerMask(layer, 4), x, false)).y;
    return y.toFloat32Array();
  };
  for (let layer = 0; layer < 4; layer++) {
    const kind = layerMask(layer, 4);
    const base = await forward(layer, x0);
    // Queries: a text slot, the first image cell, an interior cell, the last cell.
    for (const q of [2, prefixLen, prefixLen + 12, S - 1]) {
      let hidden = 0;
      let seen = 0;
      for (let k = 0; k < S; k++) {
        const changed = Float32Array.from(x0);
        // Not a constant shift: LayerNorm would remove it.
        for (let c = 0; c < C; c++) changed[(S + k) * C + c]! += c % 2 ? 1.5 : -0.5; // sample 1, position k
        const y = await forward(layer, changed);
        const row = (s: Float32Array) => s.subarray((S + q) * C, (S + q + 1) * C);
        const same = maxAbsDiff(row(y), row(base)) === 0;
        if (k === q) continue;
        if (specAllowed(kind, prefixLen, 5, q, k, 'raster')) {
          seen++;
          t.false(same, `${kind} layer: query ${q} should see key ${k}`);
        } else {
          hidden++;
          t.true(same, `${kind} layer: query ${q} must not see key ${k}`);
        }
        t.deepEqual(y.subarray(0, S * C), base.subarray(0, S * C), 'the other sample is untouched');
      }
      t.true(seen > 0 && (q === S - 1 ? hidden > 0 : true), `${kind}: query ${q} saw ${seen}, hid ${hidden}`);
    }
  }
});

test('feeding tokens one by one through the KV cache gives the logits of a full forward pass', async (t) => {
  using model = DalleTransformer.create({ ...MICRO, grid: 5 }, { seed: 4 });
  const B = 2;
  const batch = model.tokenBatch(...Object.values(randomBatch(9, B, { ...MICRO, grid: 5 })) as [Int32Array, Int32Array]);
  const { seqLen: S, headSize } = model.seq;
  using full = await model.logits(batch.inputs, syncRunner);
  const expected = full.toFloat32Array();
  for (const chunks of [[S], Array(S).fill(1), [4, 1, 7, 2, 1, S - 15]]) {
    using decoder = new IncrementalDecoder(model, B, syncRunner);
    const got = new Float32Array(B * S * headSize);
    let pos = 0;
    for (const n of chunks as number[]) {
      const ids = new Int32Array(B * n);
      for (let b = 0; b < B; b++) ids.set(batch.inputs.subarray(b * S + pos, b * S + pos + n), b * n);
      using logits = await decoder.feed(ids);
      const v = logits.toFloat32Array();
      for (let b = 0; b < B; b++) got.set(v.subarray(b * n * headSize, (b + 1) * n * headSize), (b * S + pos) * headSize);
      pos += n;
    }
    const diff = maxAbsDiff(got, expected);
    t.true(diff < 2e-5, `chunks ${JSON.stringify(chunks.length > 6 ? `${chunks.length}×1` : chunks)}: max |Δlogit| ${diff}`);
    t.log(`chunks ${chunks.length > 6 ? `${chunks.length}×1` : JSON.stringify(chunks)}: max |Δlogit| = ${diff.toExponential(2)}`);
    await t.throwsAsync(() => decoder.feed(new Int32Array(B)), { message: /passes the sequence length/ });
  }
});

test('the model memorises a fixed batch (loss → near zero)', async (t) => {
  const cfg = { ...MICRO, layers: 2, width: 32, grid: 4 };
  using model = DalleTransformer.create(cfg, { seed: 1 });
  const { text, codes } = randomBatch(2, 2, cfg);
  const result = await transformer.trainTransformer(model, {
    steps: 300,
    data: async function* () {
      yield { text, codes };
    },
    lr: { from: 1e-2, to: 1e-3, steps: 300 },
    lrWarmupSteps: 20,
    adam: { weightDecay: 0 },
    run: syncRunner,
  });
  t.true(result.metrics!.loss < 0.05, `final loss ${result.metrics!.loss}`);
  t.true(result.metrics!.imageLoss! < 0.05);
});

test.serial('resuming from a checkpoint reproduces the same losses bit for bit; held-out loss is reported', async (t) => {
  const cfg = { ...MICRO, layers: 2 };
  const batches = [randomBatch(31, 2, cfg), randomBatch(32, 2, cfg), randomBatch(33, 2, cfg)];
  // Each epoch visits the three batches in an order of its own, so the resume must also restore where the data was.
  const data = async function* (epoch: number) {
    for (let i = 0; i < 3; i++) yield batches[(i + epoch) % 3]!;
  };
  const heldOut = randomBatch(34, 3, cfg);
  const run = async (steps: number, extra: Partial<Parameters<typeof transformer.trainTransformer>[1]>) => {
    using model = DalleTransformer.create(cfg, { seed: 1 });
    const losses: number[] = [];
    const evals: number[] = [];
    const result = await transformer.trainTransformer(model, {
      steps,
      data,
      lr: { from: 3e-3, to: 1e-4, steps: 7 },
      lrWarmupSteps: 2,
      emaDecay: 0.9,
      eval: { every: 3, data: async function* () { yield heldOut; } },
      progressEvery: 1,
      onProgress: (p) => {
        losses.push(p.metrics.loss);
        if (p.step % 3 === 0 || p.step === steps) evals.push(p.evalMetrics!.loss);
      },
      run: syncRunner,
      ...extra,
    });
    model.params.flat.write(result.ema!); // with an EMA, held-out figures are the EMA weights'
    const finalHeldOut = (await model.loss(model.tokenBatch(heldOut.text, heldOut.codes), syncRunner)).loss;
    return { losses, evals, result, finalHeldOut };
  };
  const path = `${process.env.TMPDIR ?? '/tmp'}/transformer-resume-${process.pid}.safetensors`;
  const straight = await run(7, {});
  const first = await run(4, { checkpoint: { path } });
  const resumed = await run(7, { resumeFrom: path });
  t.deepEqual([...first.losses, ...resumed.losses], straight.losses);
  t.deepEqual(resumed.result.ema, straight.result.ema);
  t.is(straight.result.evalMetrics!.loss, straight.finalHeldOut, 'the last evaluation is the final model’s held-out loss');
  t.is(straight.evals.length, 3);
  t.true(straight.result.evalMetrics!.imageLoss! > 0 && straight.result.evalMetrics!.textLoss! > 0);
});

test('text-code batches: the same per (seed, epoch), reshuffled and re-dropped per epoch', async (t) => {
  const { trainBpe } = await import('../lib/tokenizer/train.js');
  const captions = Array.from({ length: 40 }, (_, i) => `a ${['red', 'blue', 'green'][i % 3]} ${['circle', 'square'][i % 2]} number ${i}`);
  const tok = trainBpe(captions, { vocabSize: 300 });
  const data = { captions, codes: Int32Array.from({ length: 40 * 4 }, (_, i) => Math.floor(i / 4)), imageLen: 4 };
  const epoch = async (e: number, o: Partial<transformer.BatchOptions> = {}) => {
    const out: transformer.TextCodeBatch[] = [];
    for await (const b of transformer.textCodeBatches(data, tok, e, { batchSize: 8, textLen: 6, seed: 5, ...o })) out.push(b);
    return out;
  };
  const e0 = await epoch(0);
  t.is(e0.length, 5);
  t.deepEqual(await epoch(0), e0);
  t.notDeepEqual((await epoch(1))[0]!.codes, e0[0]!.codes);
  const plain = await epoch(0, { shuffle: false, dropout: 0 });
  t.deepEqual([...plain[0]!.codes.subarray(0, 8)], [0, 0, 0, 0, 1, 1, 1, 1], 'codes follow their caption');
  t.deepEqual(plain[0]!.text.subarray(0, 6), transformer.textSlots(tok, captions[0]!, 6));
  t.true(plain[0]!.text.subarray(0, 6).includes(-1) || tok.encode(captions[0]!).length >= 6);
  t.is((await epoch(0, { dropLast: false, batchSize: 16 })).length, 3);
});

test('sampling: reproducible per seed, greedy at temperature 0, completion keeps the prompt rows, abortable', async (t) => {
  using model = DalleTransformer.create({ ...MICRO, grid: 5 }, { seed: 6 });
  const text = Int32Array.from([1, 2, -1, 3, -1, -1]);
  const a = await generateCodes(model, text, { seed: 1, run: syncRunner });
  const b = await generateCodes(model, text, { seed: 1, run: syncRunner });
  const c = await generateCodes(model, text, { seed: 2, run: syncRunner });
  t.is(a.length, 2 * 25);
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  t.true(a.every((v) => v >= 0 && v < 5));
  const greedy = await generateCodes(model, text, { temperature: 0, run: syncRunner });
  // Greedy decoding equals the argmax of a full forward pass fed its own output.
  const batch = model.tokenBatch(text, greedy);
  using logits = await model.logits(batch.inputs, syncRunner);
  const v = logits.toFloat32Array();
  const { textLen: T, headSize, textSide, seqLen: S } = model.seq;
  for (let s = 0; s < 2; s++) {
    for (let i = 0; i < 25; i++) {
      const row = (s * S + T + i) * headSize + textSide;
      let best = 0;
      for (let k = 1; k < 5; k++) if (v[row + k]! > v[row + best]!) best = k;
      t.is(greedy[s * 25 + i], best, `sample ${s} token ${i}`);
    }
  }
  const prompt = Int32Array.from({ length: 25 }, (_, i) => (i * 3) % 5);
  const completed = await generateCodes(model, text, { seed: 3, prompt: { codes: prompt, rows: 2 }, run: syncRunner });
  for (let s = 0; s < 2; s++) t.deepEqual([...completed.subarray(s * 25, s * 25 + 10)], [...prompt.subarray(0, 10)]);
  const progress: number[] = [];
  await generateCodes(model, text, { prompt: { codes: prompt, rows: 2 }, onProgress: (p) => progress.push(p.tokens), run: syncRunner });
  t.deepEqual(progress, Array.from({ length: 15 }, (_, i) => 11 + i));
  const controller = new AbortController();
  const pending = generateCodes(model, text, { onProgress: (p) => p.tokens === 3 && controller.abort(), signal: controller.signal });
  const aborted = await t.throwsAsync(pending, { name: 'AbortError' });
  t.is((aborted as DalleError).code, 'E_ABORTED');
  await t.throwsAsync(() => generateCodes(model, text, { topP: 0 }), { message: /topP/ });
  await t.throwsAsync(() => generateCodes(model, text, { prompt: { codes: prompt, rows: 5 } }), { message: /prompt.rows/ });
  await t.throwsAsync(() => generateCodes(model, new Int32Array(4)), { message: /B·3 slots/ });
});

test('sampleIndex: temperature, top-k and top-p keep the right codes', (t) => {
  const logits = Float32Array.from([0, Math.log(4), Math.log(2), Math.log(1), -Infinity, 0].map((x, i) => (i === 0 ? 99 : x)));
  // Codes 1..4 of the row: probabilities 4/7, 2/7, 1/7, 0.
  const o = { temperature: 1, topK: 0, topP: 1 };
  const draws = (opts: typeof o) => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) counts[sampleIndex(logits, 1, 5, opts, (i + 0.5) / 1000)]!++;
    return counts;
  };
  t.deepEqual(draws(o), [571, 286, 143, 0]);
  t.deepEqual(draws({ ...o, topK: 2 }), [667, 333, 0, 0]);
  t.deepEqual(draws({ ...o, topP: 0.5 }), [1000, 0, 0, 0]);
  t.deepEqual(draws({ ...o, topP: 0.8 }), [667, 333, 0, 0]);
  t.deepEqual(draws({ ...o, temperature: 0 }), [1000, 0, 0, 0]);
  t.deepEqual(draws({ ...o, temperature: 1e6 }).slice(0, 3).map((c) => Math.round(c / 10)), [33, 33, 33]);
});

test('weights round-trip through safetensors with their tokenizer; generateImages decodes samples with the dVAE', async (t) => {
  const { trainBpe } = await import('../lib/tokenizer/train.js');
  const { Dvae } = await import('../lib/models/dvae/model.js');
  const tok = trainBpe(['a red circle', 'a blue square', 'a red square', 'a blue circle'], { vocabSize: 300 });
  const cfg = { layers: 2, width: 16, heads: 2, textLen: 4, textVocab: 300, imageVocab: 512, grid: 16 };
  using model = DalleTransformer.create(cfg, { seed: 12 });
  using dvae = Dvae.create('small32', { seed: 1 });
  const path = `${process.env.TMPDIR ?? '/tmp'}/transformer-io-${process.pid}.safetensors`;
  await transformer.saveTransformer(model, path, { tokenizer: tok });
  const loaded = transformer.loadTransformer(path);
  using copy = loaded.model;
  t.deepEqual(copy.config, model.config);
  t.deepEqual(copy.params.flat.toFloat32Array(), model.params.flat.toFloat32Array());
  t.deepEqual(loaded.tokenizer!.encode('a red circle'), tok.encode('a red circle'));

  const captions = ['a red circle', 'a blue square, a very long caption that does not fit'];
  const a = await transformer.generateImages(model, dvae, tok, captions, { seed: 4, run: syncRunner });
  const b = await transformer.generateImages(copy, dvae, loaded.tokenizer!, captions, { seed: 4, run: syncRunner });
  t.is(a.images.length, 2 * 32 * 32 * 3);
  t.deepEqual(a.codes, b.codes, 'the loaded model samples the same codes');
  t.deepEqual(a.images, await dvae.decode(a.codes, syncRunner));
  t.deepEqual(a.truncated, [1]);
  // Completion from pixels: the kept rows are the dVAE's codes of the prompt image.
  const image = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256);
  const completed = await transformer.generateImages(model, dvae, tok, captions, { prompt: { image, rows: 3 }, run: syncRunner });
  const codes = await dvae.encode(image, syncRunner);
  t.deepEqual([...completed.codes.subarray(256, 256 + 48)], [...codes.subarray(0, 48)]);
  t.is(transformer.defaultPromptRows(32), 15);
  t.is(transformer.defaultPromptRows(16), 8);
  using other = Dvae.create('small64');
  await t.throwsAsync(() => transformer.generateImages(model, other, tok, captions), { message: /does not match/ });
  await t.throwsAsync(() => transformer.generateImages(model, dvae, tok, captions, { prompt: { image: new Uint8Array(5) } }), { message: /prompt.image/ });
});
