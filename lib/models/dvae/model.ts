/**
 * The discrete VAE (DALL·E stage one): parameters in one arena, encode (argmax codes, no noise), decode, reconstruct,
 * and the training objective with its gradient. The trainer owns gradients, optimizer state and schedules; this
 * file owns the model's arithmetic.
 */
import { Arena, type ArenaSpec } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { randomNormal } from '../../ops/random.js';
import { Tensor } from '../../tensor.js';
import { decoderPlan, type DvaeConfig, type DvaePreset, encoderPlan, gridSize, type NetPlan, planConvs, resolveConfig } from './config.js';
import { disposeNetCache, netBackward, netForward, netForwardAfterInput, type TensorTable } from './network.js';
import { decoderOutputToPixels, mapPixels } from './pixels.js';

export interface DvaeLossOptions {
  /** KL weight (the paper ramps it 0 → 6.6). */
  beta: number;
  /** Gumbel-softmax temperature (1 → 1/16). */
  tau: number;
  /** Philox key and first stream word of the Gumbel noise; a step uses batch·grid²·vocab words. */
  seed: number;
  offset: number;
  /**
   * When set, the reconstruction term is weight·Σ(σ(μ) − x)² over mapped pixels instead of the logit-Laplace NLL
   * (ln b gets no gradient). Not the paper's: see `squaredError` in DvaeTrainOptions for when it is needed.
   */
  squaredErrorWeight?: number;
}

/** Per-dimension values: each term is divided by B·H·W·3, as the paper's total is. */
export interface DvaeLoss {
  /** (nll + β·kl) / (B·H·W·3): what the gradient is of. */
  loss: number;
  /** −log p(x | y) under the logit-Laplace (or the weighted squared error, when asked), per dimension. */
  nll: number;
  /** KL(q(z|x) ‖ uniform), per dimension (before β). */
  kl: number;
}

/** The parameter table: every conv's HWIO weight and bias, encoder then decoder. */
export function dvaeParamSpecs(config: DvaeConfig): ArenaSpec[] {
  const specs: ArenaSpec[] = [];
  for (const c of [...planConvs(encoderPlan(config)), ...planConvs(decoderPlan(config))]) {
    specs.push({ name: `${c.name}.w`, shape: [c.k, c.k, c.cin, c.cout] }, { name: `${c.name}.b`, shape: [c.cout] });
  }
  return specs;
}

export class Dvae implements Disposable {
  readonly config: DvaeConfig;
  readonly params: Arena;
  readonly encoderPlan: NetPlan;
  readonly decoderPlan: NetPlan;

  private constructor(config: DvaeConfig) {
    this.config = config;
    this.encoderPlan = encoderPlan(config);
    this.decoderPlan = decoderPlan(config);
    this.params = new Arena(dvaeParamSpecs(config));
  }

  /**
   * A new model with the released initialisation: conv weights ~ N(0, 1/(cin·k²)), biases zero. The same seed gives
   * the same weights on every machine (Philox).
   */
  static create(config: DvaePreset | (Partial<DvaeConfig> & { preset?: DvaePreset }) = 'small32', options: { seed?: number } = {}): Dvae {
    const model = new Dvae(resolveConfig(config));
    const seed = options.seed ?? 0;
    let offset = 0;
    for (const c of [...planConvs(model.encoderPlan), ...planConvs(model.decoderPlan)]) {
      const w = model.params.get(`${c.name}.w`);
      using draw = randomNormal(w.shape, { seed, offset });
      offset += 2 * draw.size;
      const values = draw.toFloat32Array();
      const std = 1 / Math.sqrt(c.cin * c.k * c.k);
      for (let i = 0; i < values.length; i++) values[i]! *= std;
      w.write(values);
    }
    return model;
  }

  /** An empty model of this config, for loaders that fill the arena themselves. */
  static allocate(config: DvaeConfig): Dvae {
    return new Dvae(resolveConfig(config));
  }

  get grid(): number {
    return gridSize(this.config);
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.tensors.values()) n += t.size;
    return n;
  }

  /** Mapped f32 pixels [B, S, S, 3] from uint8 images [B, S, S, 3] (packed, as the data loader's batches are). */
  pixelsTensor(images: Uint8Array): Tensor {
    const s = this.config.imageSize;
    const per = s * s * 3;
    if (!(images instanceof Uint8Array) || images.length === 0 || images.length % per !== 0) {
      throw new DalleError('E_INVALID_ARGUMENT', `dVAE input must be uint8 [B, ${s}, ${s}, 3]: a non-empty multiple of ${per} bytes, got ${images?.length}`);
    }
    return Tensor.from(mapPixels(images), [images.length / per, s, s, 3]);
  }

  /** Encoder logits [B, g, g, K] for mapped pixels. */
  async logits(x: Tensor, run: OpRunner = asyncRunner): Promise<Tensor> {
    return (await netForward(run, this.params, this.encoderPlan, x, false)).y;
  }

  /** Codes i32 [B·g·g] (row-major per image): the argmax of the encoder's logits, no noise. */
  async encode(images: Uint8Array, run: OpRunner = asyncRunner): Promise<Int32Array> {
    using x = this.pixelsTensor(images);
    using logits = await this.logits(x, run);
    return argmaxRows(logits.toFloat32Array(), this.config.vocabSize);
  }

  /** Decoder output [B, S, S, 6] (μ, ln b) for a soft or one-hot code map y [B, g, g, K]. */
  async decodeSoft(y: Tensor, run: OpRunner = asyncRunner): Promise<Tensor> {
    return (await netForward(run, this.params, this.decoderPlan, y, false)).y;
  }

  /** uint8 images [B, S, S, 3] for codes [B·g·g], each in [0, K). */
  async decode(codes: Int32Array | readonly number[], run: OpRunner = asyncRunner): Promise<Uint8Array> {
    const { vocabSize: K } = this.config;
    const cells = this.grid * this.grid;
    if (codes.length === 0 || codes.length % cells !== 0) {
      throw new DalleError('E_INVALID_ARGUMENT', `codes must be [B, ${this.grid}, ${this.grid}]: a non-empty multiple of ${cells} ids, got ${codes.length}`);
    }
    const ids = new Int32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (!Number.isInteger(c) || c < 0 || c >= K) throw new DalleError('E_INVALID_ARGUMENT', `code ${i} is ${c}: outside [0, ${K})`);
      ids[i] = c;
    }
    // The input conv over one-hot codes is a lookup of rows of its [1, 1, K, nInit] weight, plus its bias.
    const { input } = this.decoderPlan;
    using table = this.params.get(`${input.name}.w`).reshape([K, input.cout]);
    using idsT = Tensor.from(ids, [codes.length / cells, this.grid * this.grid], { dtype: 'i32' });
    using rows = await run1(run, 'embedding_forward', [idsT, table]);
    using rowsImg = rows.reshape([codes.length / cells, this.grid, this.grid, input.cout]);
    const h = await run1(run, 'bias_add_forward', [rowsImg, this.params.get(`${input.name}.b`)]);
    using out = await netForwardAfterInput(run, this.params, this.decoderPlan, h);
    return decoderOutputToPixels(out.toFloat32Array());
  }

  /** decode(encode(images)). */
  async reconstruct(images: Uint8Array, run: OpRunner = asyncRunner): Promise<Uint8Array> {
    return this.decode(await this.encode(images, run), run);
  }

  /** The training objective on mapped pixels x [B, S, S, 3] without its gradient: held-out evaluation. */
  async loss(x: Tensor, o: DvaeLossOptions, run: OpRunner = asyncRunner): Promise<DvaeLoss> {
    return this.lossAndGrad(x, null, o, run);
  }

  /**
   * The training objective on mapped pixels x [B, S, S, 3] and its gradient, written into `grads` (a table with the
   * parameter names; null: the objective only). Soft Gumbel-softmax in both passes (no straight-through); KL from
   * the noise-free logits.
   */
  async lossAndGrad(x: Tensor, grads: TensorTable | null, o: DvaeLossOptions, run: OpRunner = asyncRunner): Promise<DvaeLoss> {
    const { vocabSize: K } = this.config;
    const [B, H, W] = x.shape as [number, number, number, number];
    const g = this.grid;
    const norm = B * H * W * 3;
    const mse = o.squaredErrorWeight;
    if (mse !== undefined && !(mse > 0 && Number.isFinite(mse))) {
      throw new DalleError('E_INVALID_ARGUMENT', `dVAE loss: squaredErrorWeight must be a positive number, got ${mse}`);
    }
    const recon = mse === undefined ? 'logit_laplace' : 'sigmoid_mse';
    const nllScale = mse ?? 1;
    const backward = grads !== null;
    const enc = await netForward(run, this.params, this.encoderPlan, x, backward);
    const held: Array<Tensor | undefined> = [enc.y];
    let dec: Awaited<ReturnType<typeof netForward>> | undefined;
    try {
      const flat = enc.y.reshape([B * g * g, K]);
      held.push(flat);
      const y = await run1(run, 'gumbel_softmax_forward', [flat], { tau: o.tau, seed: o.seed, offset: o.offset });
      const yImg = y.reshape([B, g, g, K]);
      held.push(y, yImg);
      dec = await netForward(run, this.params, this.decoderPlan, yImg, backward);
      held.push(dec.y);
      const nllT = await run1(run, `${recon}_forward`, [x, dec.y]);
      const klT = await run1(run, 'kl_uniform_forward', [flat]);
      const nll = nllScale * nllT.toFloat32Array()[0]!;
      const kl = klT.toFloat32Array()[0]!;
      disposeAll(nllT, klT);
      const loss = { loss: (nll + o.beta * kl) / norm, nll: nll / norm, kl: kl / norm };
      if (!backward) return loss;

      const dnll = Tensor.from(new Float32Array([nllScale / norm]), [1]);
      const dkl = Tensor.from(new Float32Array([o.beta / norm]), [1]);
      held.push(dnll, dkl);
      const dOut = await run1(run, `${recon}_backward`, [x, dec.y, dnll]);
      held.push(dOut);
      const dY = (await netBackward(run, this.params, grads, this.decoderPlan, dec.cache!, dOut, true))!;
      const dYFlat = dY.reshape([B * g * g, K]);
      held.push(dY, dYFlat);
      const dGumbel = await run1(run, 'gumbel_softmax_backward', [y, dYFlat], { tau: o.tau });
      held.push(dGumbel);
      const dKl = await run1(run, 'kl_uniform_backward', [flat, dkl]);
      held.push(dKl);
      const dLogits = await run1(run, 'residual_forward', [dGumbel, dKl], { scale: 1 });
      const dLogitsImg = dLogits.reshape([B, g, g, K]);
      held.push(dLogits, dLogitsImg);
      await netBackward(run, this.params, grads, this.encoderPlan, enc.cache!, dLogitsImg, false);
      return loss;
    } finally {
      disposeAll(...held);
      // Already consumed when the backward ran; freed here when something failed before it.
      disposeNetCache(enc.cache);
      disposeNetCache(dec?.cache);
    }
  }

  dispose(): void {
    this.params.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Index of the largest value in each row of K; the first on ties. */
export function argmaxRows(values: Float32Array, K: number): Int32Array {
  const out = new Int32Array(values.length / K);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    let bestValue = values[r * K]!;
    for (let k = 1; k < K; k++) {
      const v = values[r * K + k]!;
      if (v > bestValue) [best, bestValue] = [k, v];
    }
    out[r] = best;
  }
  return out;
}
