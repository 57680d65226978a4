import test from 'ava';

import { DalleError } from '../lib/errors.js';
import { decoderPlan, encoderPlan, type DvaeConfig } from '../lib/models/dvae/config.js';
import { Dvae, dvaeParamSpecs } from '../lib/models/dvae/model.js';
import { blockForward } from '../lib/models/dvae/network.js';
import { decoderOutputToPixels, mapPixels } from '../lib/models/dvae/pixels.js';
import { syncRunner } from '../lib/nn/runner.js';
import { Tensor } from '../lib/tensor.js';
import { assertClose, randomArray, rng } from './helpers/gradcheck.js';
import * as ref from './helpers/dvae-ref.js';

/** Two groups of one block, 8² images → 4×4 codes from 16: every kind of layer, small enough for direct loops. */
const TINY: DvaeConfig = { imageSize: 8, nHid: 8, groupCount: 2, blocksPerGroup: 1, vocabSize: 16, nInit: 12 };

const lookup = (model: Dvae) => (name: string): Float32Array => model.params.get(name).toFloat32Array();

test('the openai preset has the released layout: names, shapes and 53.8M + 43.8M parameters', (t) => {
  const specs = dvaeParamSpecs({ imageSize: 256, nHid: 256, groupCount: 4, blocksPerGroup: 2, vocabSize: 8192, nInit: 128 });
  const size = (prefix: string): number =>
    specs.filter((s) => s.name.startsWith(prefix)).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  t.is(Math.round(size('encoder.') / 1e5) / 10, 53.8);
  t.is(Math.round(size('decoder.') / 1e5) / 10, 43.8);
  const shape = new Map(specs.map((s) => [s.name, s.shape]));
  t.deepEqual(shape.get('encoder.blocks.input.w'), [7, 7, 3, 256]);
  t.deepEqual(shape.get('encoder.blocks.group_1.block_1.res_path.conv_1.w'), [3, 3, 256, 64]);
  t.deepEqual(shape.get('encoder.blocks.group_1.block_1.res_path.conv_4.w'), [1, 1, 64, 256]);
  t.false(shape.has('encoder.blocks.group_1.block_1.id_path.w'));
  t.deepEqual(shape.get('encoder.blocks.group_2.block_1.id_path.w'), [1, 1, 256, 512]);
  t.deepEqual(shape.get('encoder.blocks.output.conv.w'), [1, 1, 2048, 8192]);
  t.deepEqual(shape.get('decoder.blocks.input.w'), [1, 1, 8192, 128]);
  t.deepEqual(shape.get('decoder.blocks.group_1.block_1.id_path.w'), [1, 1, 128, 2048]);
  t.deepEqual(shape.get('decoder.blocks.group_1.block_1.res_path.conv_1.w'), [1, 1, 128, 512]);
  t.deepEqual(shape.get('decoder.blocks.group_4.block_2.res_path.conv_4.w'), [3, 3, 64, 256]);
  t.deepEqual(shape.get('decoder.blocks.output.conv.w'), [1, 1, 256, 6]);
  t.is(encoderPlan({ imageSize: 256, nHid: 256, groupCount: 4, blocksPerGroup: 2, vocabSize: 8192, nInit: 128 }).postGain, 1 / 64);
});

test('initialisation: weights ~ N(0, 1/(cin·k²)), zero biases, the same for the same seed', (t) => {
  using a = Dvae.create({ ...TINY, nHid: 32, nInit: 64 }, { seed: 3 });
  using b = Dvae.create({ ...TINY, nHid: 32, nInit: 64 }, { seed: 3 });
  using c = Dvae.create({ ...TINY, nHid: 32, nInit: 64 }, { seed: 4 });
  const w = a.params.get('encoder.blocks.group_2.block_1.res_path.conv_2.w').toFloat32Array(); // 3×3×16×16
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  t.true(Math.abs(std * Math.sqrt(16 * 9) - 1) < 0.1, `std·sqrt(cin·k²) = ${std * 12}`);
  t.true(a.params.get('decoder.blocks.output.conv.b').toFloat32Array().every((v) => v === 0));
  t.deepEqual(a.params.flat.toFloat32Array(), b.params.flat.toFloat32Array());
  t.notDeepEqual(a.params.flat.toFloat32Array(), c.params.flat.toFloat32Array());
});

test('each encoder and decoder block matches a direct computation', async (t) => {
  using model = Dvae.create(TINY, { seed: 11 });
  const rand = rng(5);
  for (const plan of [model.encoderPlan, model.decoderPlan]) {
    for (const g of plan.groups) {
      for (const b of g.blocks) {
        const x = randomArray(rand, 2 * 4 * 4 * b.nIn);
        using xt = Tensor.from(x, [2, 4, 4, b.nIn]);
        const { y } = await blockForward(syncRunner, model.params, b, plan.postGain, xt, false);
        const want = ref.block(ref.img(2, 4, 4, b.nIn, x), lookup(model), b, plan.postGain);
        assertClose(t, y.toFloat32Array(), want.data, { what: b.resPath[0].name, atol: 1e-5, rtol: 1e-4 });
        y.dispose();
      }
    }
  }
});

test('the whole encoder and decoder match a direct computation', async (t) => {
  using model = Dvae.create(TINY, { seed: 12 });
  const rand = rng(6);
  const x = randomArray(rand, 2 * 8 * 8 * 3, 0.1, 0.9);
  using xt = Tensor.from(x, [2, 8, 8, 3]);
  using logits = await model.logits(xt);
  t.deepEqual(logits.shape, [2, 4, 4, 16]);
  assertClose(t, logits.toFloat32Array(), ref.net(ref.img(2, 8, 8, 3, x), lookup(model), model.encoderPlan).data, { what: 'encoder', atol: 1e-5, rtol: 1e-4 });

  const y = randomArray(rand, 2 * 4 * 4 * 16, 0, 1);
  using yt = Tensor.from(y, [2, 4, 4, 16]);
  using out = await model.decodeSoft(yt);
  t.deepEqual(out.shape, [2, 8, 8, 6]);
  assertClose(t, out.toFloat32Array(), ref.net(ref.img(2, 4, 4, 16, y), lookup(model), model.decoderPlan).data, { what: 'decoder', atol: 1e-5, rtol: 1e-4 });
});

test('encode gives argmax codes; decode and reconstruct give images; bad input is a clear error', async (t) => {
  using model = Dvae.create(TINY, { seed: 13 });
  const images = new Uint8Array(3 * 8 * 8 * 3).map((_, i) => (i * 37) & 255);
  const codes = await model.encode(images);
  t.is(codes.length, 3 * 16);
  using xt = model.pixelsTensor(images);
  using logits = await model.logits(xt);
  const l = logits.toFloat32Array();
  for (let r = 0; r < codes.length; r++) {
    const row = l.subarray(r * 16, r * 16 + 16);
    t.is(row[codes[r]!], Math.max(...row));
  }
  t.deepEqual(await model.encode(images), codes);
  const out = await model.decode(codes);
  t.is(out.length, images.length);
  // decode looks rows up instead of running the input conv over one-hot codes: both must give the same pixels.
  const onehot = new Float32Array(codes.length * 16);
  codes.forEach((c, i) => (onehot[i * 16 + c] = 1));
  using y = Tensor.from(onehot, [3, 4, 4, 16]);
  using soft = await model.decodeSoft(y);
  t.deepEqual(decoderOutputToPixels(soft.toFloat32Array()), out);
  t.deepEqual(await model.reconstruct(images), out);

  const err = (p: Promise<unknown>): Promise<DalleError> => t.throwsAsync(p, { instanceOf: DalleError }) as Promise<DalleError>;
  t.is((await err(model.encode(new Uint8Array(10)))).code, 'E_INVALID_ARGUMENT');
  t.is((await err(model.decode(new Int32Array(15)))).code, 'E_INVALID_ARGUMENT');
  t.regex((await err(model.decode(new Int32Array(16).fill(16)))).message, /code 0 is 16/);
  t.throws(() => Dvae.create({ ...TINY, imageSize: 9 }), { instanceOf: DalleError, message: /multiple of 2/ });
  t.throws(() => Dvae.create({ ...TINY, nHid: 6 }), { instanceOf: DalleError, message: /multiple of 4/ });
});

test('pixel mapping puts [0, 255] into [ε, 1 − ε]', (t) => {
  const m = mapPixels(Uint8Array.from([0, 255, 51]));
  assertClose(t, m, [0.1, 0.9, 0.1 + 0.8 * 0.2], { what: 'map', atol: 1e-7 });
});
