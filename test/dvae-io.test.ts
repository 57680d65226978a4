import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { DalleError } from '../lib/errors.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../lib/formats/safetensors.js';
import { decoderPlan, encoderPlan, type DvaeConfig } from '../lib/models/dvae/config.js';
import { inferConfig, loadDvae, loadOpenAIDvae, saveDvae, transposeConvWeight } from '../lib/models/dvae/io.js';
import { Dvae, dvaeParamSpecs } from '../lib/models/dvae/model.js';
import { netForward } from '../lib/models/dvae/network.js';
import { syncRunner } from '../lib/nn/runner.js';
import { Tensor } from '../lib/tensor.js';
import { assertClose } from './helpers/gradcheck.js';
import { torchFixtureInput } from './helpers/dvae-ref.js';

const TORCH = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const TINY: DvaeConfig = { imageSize: 8, nHid: 8, groupCount: 2, blocksPerGroup: 1, vocabSize: 16, nInit: 12 };
const tmp = (): string => mkdtempSync(join(tmpdir(), 'dalle-dvae-'));

test('save → load gives identical parameters and outputs; the file uses the released names and OIHW layout', async (t) => {
  using model = Dvae.create(TINY, { seed: 21 });
  const path = join(tmp(), 'model.safetensors');
  await saveDvae(model, path);
  using loaded = loadDvae(path);
  t.deepEqual(loaded.config, model.config);
  t.deepEqual(loaded.params.flat.toFloat32Array(), model.params.flat.toFloat32Array());
  const images = new Uint8Array(2 * 8 * 8 * 3).map((_, i) => (i * 53) & 255);
  t.deepEqual(await loaded.reconstruct(images), await model.reconstruct(images));

  const file = readSafetensors(path);
  t.is(file.metadata.format, 'dalle-engine/dvae@1');
  t.deepEqual(JSON.parse(file.metadata.config!), TINY);
  const w = file.tensors.get('encoder.blocks.group_2.block_1.res_path.conv_1.w')!;
  t.deepEqual(w.shape, [4, 8, 3, 3]); // [cout, cin, k, k]
  const hwio = model.params.get('encoder.blocks.group_2.block_1.res_path.conv_1.w').toFloat32Array();
  // OIHW element [o=3, c=5, i=2, j=1] is HWIO element [2, 1, 5, 3].
  t.is((w.data as Float32Array)[((3 * 8 + 5) * 3 + 2) * 3 + 1], hwio[((2 * 3 + 1) * 8 + 5) * 4 + 3]);
  t.is(file.tensors.size, dvaeParamSpecs(TINY).length);
});

test('a state dict without metadata loads with its config inferred from the shapes', async (t) => {
  using model = Dvae.create(TINY, { seed: 22 });
  const dir = tmp();
  await saveDvae(model, join(dir, 'a.safetensors'));
  const { tensors } = readSafetensors(join(dir, 'a.safetensors'));
  await writeSafetensors(join(dir, 'b.safetensors'), Object.fromEntries(tensors));
  using loaded = loadDvae(join(dir, 'b.safetensors'), { imageSize: 8 });
  t.deepEqual(loaded.config, TINY);
  t.deepEqual(loaded.params.flat.toFloat32Array(), model.params.flat.toFloat32Array());
  t.deepEqual(inferConfig(new Map([...tensors].map(([n, v]) => [n, v.shape]))).imageSize, 64); // 32×32 codes by default
});

test('files that do not match are refused with what is wrong', async (t) => {
  using model = Dvae.create(TINY, { seed: 23 });
  const dir = tmp();
  await saveDvae(model, join(dir, 'good.safetensors'));
  const { tensors, metadata } = readSafetensors(join(dir, 'good.safetensors'));
  const variant = async (name: string, change: (m: Map<string, SafeTensor>) => void): Promise<DalleError> => {
    const copy = new Map(tensors);
    change(copy);
    await writeSafetensors(join(dir, name), Object.fromEntries(copy), metadata);
    return t.throws(() => loadDvae(join(dir, name)), { instanceOf: DalleError }) as DalleError;
  };
  t.regex((await variant('missing.safetensors', (m) => m.delete('decoder.blocks.output.conv.b'))).message, /missing decoder\.blocks\.output\.conv\.b/);
  t.regex(
    (await variant('shape.safetensors', (m) => m.set('encoder.blocks.input.b', { dtype: 'F32', shape: [9], data: new Float32Array(9) }))).message,
    /encoder\.blocks\.input\.b is \[9\], expected \[8\]/,
  );
  t.regex((await variant('extra.safetensors', (m) => m.set('encoder.blocks.extra.w', { dtype: 'F32', shape: [1], data: new Float32Array(1) }))).message, /unexpected tensors encoder\.blocks\.extra\.w/);
  const missingFile = t.throws(() => loadDvae(join(dir, 'nope.safetensors')), { instanceOf: DalleError }) as DalleError;
  t.is(missingFile.code, 'E_NOT_FOUND');
});

test("OpenAI's pickled modules load without Python, and our forward reproduces torch's outputs", async (t) => {
  using model = loadOpenAIDvae(join(TORCH, 'encoder_tiny.pkl'), join(TORCH, 'decoder_tiny.pkl'), { imageSize: 16 });
  t.deepEqual(model.config, { imageSize: 16, nHid: 4, groupCount: 4, blocksPerGroup: 1, vocabSize: 16, nInit: 8 });
  const expected = JSON.parse(readFileSync(join(TORCH, 'forward_tiny.json'), 'utf8')) as {
    codes: number[];
    logits_nchw: number[];
    decoder_out_nchw: number[];
  };
  const x = torchFixtureInput();
  using xt = Tensor.from(x, [1, 16, 16, 3]);
  using logits = await model.logits(xt, syncRunner);
  assertClose(t, logits.toFloat32Array(), nchwToNhwc(expected.logits_nchw, 16, 2, 2), { what: 'encoder logits vs torch', atol: 1e-5, rtol: 1e-4 });

  const onehot = new Float32Array(4 * 16);
  expected.codes.forEach((c, i) => (onehot[i * 16 + c] = 1));
  using y = Tensor.from(onehot, [1, 2, 2, 16]);
  const { y: out } = await netForward(syncRunner, model.params, model.decoderPlan, y, false);
  assertClose(t, out.toFloat32Array(), nchwToNhwc(expected.decoder_out_nchw, 6, 16, 16), { what: 'decoder output vs torch', atol: 1e-5, rtol: 1e-4 });
  out.dispose();
  t.is(encoderPlan(model.config).postGain, 1 / 16);
  t.is(decoderPlan(model.config).groups.length, 4);
});

test('mismatched or non-dVAE pickles are refused clearly', (t) => {
  const notDvae = t.throws(() => loadOpenAIDvae(join(TORCH, 'protocol4.pkl'), join(TORCH, 'decoder_tiny.pkl')), { instanceOf: DalleError });
  t.regex(notDvae!.message, /not a dVAE state dict|unexpected tensors/);
  const swapped = t.throws(() => loadOpenAIDvae(join(TORCH, 'decoder_tiny.pkl'), join(TORCH, 'encoder_tiny.pkl')), { instanceOf: DalleError });
  t.regex(swapped!.message, /decoder_tiny\.pkl: expected a pickled dVAE Encoder \(dall_e\.encoder\.Encoder\), found dall_e\.decoder\.Decoder/);
  const partial = t.throws(() => loadOpenAIDvae(join(TORCH, 'encoder_state_dict.pkl'), join(TORCH, 'decoder_tiny.pkl'), { imageSize: 16 }), { instanceOf: DalleError });
  t.regex(partial!.message, /encoder\.blocks\.(output|group_\d)/);
});

test('the HWIO ↔ OIHW transpose round-trips', (t) => {
  const src = Float32Array.from({ length: 3 * 3 * 5 * 7 }, (_, i) => i);
  t.deepEqual(transposeConvWeight(transposeConvWeight(src, 3, 5, 7), 3, 5, 7, true), src);
});

function nchwToNhwc(values: number[], c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let k = 0; k < c; k++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[(i * w + j) * c + k] = values[(k * h + i) * w + j]!;
  return out;
}
