/**
 * The DALL·E transformer (stage two): parameters in one arena, the training loss 1/8·CE_text + 7/8·CE_image with its
 * gradient, and a full forward pass. Sampling (with the KV cache) is in sampler.ts; training in train.ts.
 *
 * A model can be created lazily: its config, parameter count and memory needs are known at once, and the arena is
 * allocated (and initialised from the seed) on first use, so the 12B paper preset can be described on any machine.
 */
import { Arena } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { dalleLossWeights } from '../../ops/loss.js';
import { randomNormal } from '../../ops/random.js';
import { Tensor } from '../../tensor.js';
import {
  layerMask,
  parameterCount,
  resolveTransformerConfig,
  sequenceLayout,
  type SequenceLayout,
  type TransformerConfig,
  type TransformerConfigInput,
  type TransformerMemory,
  transformerMemory,
  transformerParamSpecs,
} from './config.js';
import { type BlockCache, blockBackward, blockForward, disposeTrainCaches, embed, embedBackward, type HeadCache, headBackward, headForward, type LayerContext } from './layers.js';
import type { TensorTable } from '../dvae/network.js';

/** Token sequences of a batch, in the model's id space (see {@link SequenceLayout}). */
export interface TokenBatch {
  /** i32 [B, S]: BOS, the text slots, the image codes but the last. */
  inputs: Int32Array;
  /** i32 [B, S]: the text slots, then every image code offset by textSide. */
  targets: Int32Array;
  batch: number;
}

export interface TransformerLoss {
  /** 1/8·CE_text + 7/8·CE_image: what the gradient is of. */
  loss: number;
  /** Mean cross-entropy (nats) over the text slots (pads included) and over the image tokens. */
  textLoss: number;
  imageLoss: number;
}

export interface CreateOptions {
  /** Philox key of the initial weights: the same seed gives the same model on every machine. Default 0. */
  seed?: number;
  /** Allocate and initialise the parameters on first use instead of now. */
  lazy?: boolean;
}

export class DalleTransformer implements Disposable {
  readonly config: TransformerConfig;
  readonly seq: SequenceLayout;
  #params: Arena | null = null;
  #seed: number | null;
  #lossTables = new Map<number, { weights: Tensor; ranges: Tensor }>();
  #disposed = false;

  private constructor(config: TransformerConfig, seed: number | null) {
    this.config = config;
    this.seq = sequenceLayout(config);
    this.#seed = seed;
  }

  /** A new model: N(0, 0.02²) weights (residual outputs scaled by 1/√(2L)), unit gains, zero biases. */
  static create(config: TransformerConfigInput = 'tiny', options: CreateOptions = {}): DalleTransformer {
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new DalleError('E_INVALID_ARGUMENT', `seed must be an integer, got ${String(seed)}`);
    const model = new DalleTransformer(resolveTransformerConfig(config), seed);
    if (!options.lazy) void model.params;
    return model;
  }

  /** A zero-filled model of this config, for loaders that fill the arena themselves. */
  static allocate(config: TransformerConfigInput): DalleTransformer {
    const model = new DalleTransformer(resolveTransformerConfig(config), null);
    void model.params;
    return model;
  }

  /** The parameter arena; allocated (and initialised) by the first access of a lazy model. */
  get params(): Arena {
    if (this.#disposed) throw new DalleError('E_DISPOSED', 'transformer was disposed');
    if (this.#params === null) {
      const specs = transformerParamSpecs(this.config);
      const arena = new Arena(specs);
      try {
        if (this.#seed !== null) initialise(arena, specs, this.#seed);
      } catch (err) {
        arena.dispose();
        throw err;
      }
      this.#params = arena;
    }
    return this.#params;
  }

  /** Whether the parameters have been allocated. */
  get allocated(): boolean {
    return this.#params !== null;
  }

  get parameterCount(): number {
    return parameterCount(this.config);
  }

  /** Bytes the parameters, training state, activations and KV cache need (nothing is allocated to answer). */
  get memory(): TransformerMemory {
    return transformerMemory(this.config);
  }

  /** The attention mask of each layer (0-based), per the paper's schedule. */
  get masks(): ReturnType<typeof layerMask>[] {
    return Array.from({ length: this.config.layers }, (_, l) => layerMask(l, this.config.layers));
  }

  /** For layers and the sampler. */
  context(run: OpRunner): LayerContext {
    return { run, params: this.params, config: this.config, seq: this.seq };
  }

  /**
   * The batch's sequences from text slots and codes. `text` holds B·T ids: BPE ids in [0, textVocab), or −1 for an
   * empty slot (which becomes that slot's pad PAD_j); `codes` holds B·W² dVAE codes, each in [0, imageVocab).
   */
  tokenBatch(text: Int32Array, codes: Int32Array): TokenBatch {
    const { textLen: T, imageLen: N, seqLen: S, textSide, bos } = this.seq;
    const { textVocab, imageVocab } = this.config;
    if (text.length === 0 || text.length % T !== 0) throw new DalleError('E_INVALID_ARGUMENT', `text must hold B·${T} slots, got ${text.length}`);
    const B = text.length / T;
    if (codes.length !== B * N) throw new DalleError('E_INVALID_ARGUMENT', `codes must hold ${B}·${N} = ${B * N} ids for ${B} captions, got ${codes.length}`);
    const inputs = new Int32Array(B * S);
    const targets = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      const row = b * S;
      inputs[row] = bos;
      for (let j = 0; j < T; j++) {
        const id = text[b * T + j]!;
        if (!(Number.isInteger(id) && id >= -1 && id < textVocab)) throw new DalleError('E_INVALID_ARGUMENT', `text[${b}][${j}] = ${id}: outside [0, ${textVocab}) and not −1 (pad)`);
        const slot = id === -1 ? textVocab + j : id;
        targets[row + j] = slot;
        inputs[row + 1 + j] = slot;
      }
      for (let i = 0; i < N; i++) {
        const c = codes[b * N + i]!;
        if (!(Number.isInteger(c) && c >= 0 && c < imageVocab)) throw new DalleError('E_INVALID_ARGUMENT', `codes[${b}][${i}] = ${c}: outside [0, ${imageVocab})`);
        targets[row + T + i] = textSide + c;
        if (i < N - 1) inputs[row + T + 1 + i] = textSide + c;
      }
    }
    return { inputs, targets, batch: B };
  }

  /** Logits [B·S, headSize] of a full forward pass over inputs i32 [B, S] (no gradient kept). */
  async logits(inputs: Int32Array, run: OpRunner = asyncRunner): Promise<Tensor> {
    const B = this.batchOf(inputs);
    using ids = Tensor.from(inputs, [B, this.seq.seqLen], { dtype: 'i32' });
    const ctx = this.context(run);
    let x = await embed(ctx, ids);
    try {
      for (let l = 0; l < this.config.layers; l++) {
        const { y } = await blockForward(ctx, l, layerMask(l, this.config.layers), x, false);
        x.dispose();
        x = y;
      }
      using x2 = x.reshape([B * this.seq.seqLen, this.config.width]);
      return (await headForward(ctx, x2, false)).logits;
    } finally {
      x.dispose();
    }
  }

  /** The loss on a batch without gradients (held-out evaluation). */
  async loss(batch: TokenBatch, run: OpRunner = asyncRunner): Promise<TransformerLoss> {
    const B = this.batchOf(batch.inputs);
    if (batch.targets.length !== batch.inputs.length) throw new DalleError('E_INVALID_ARGUMENT', 'targets and inputs differ in length');
    const { weights, ranges } = this.lossTable(B);
    using logits = await this.logits(batch.inputs, run);
    using targets = Tensor.from(batch.targets, [B * this.seq.seqLen], { dtype: 'i32' });
    const [lossT, perPos] = await run('cross_entropy_forward', [logits, targets, weights, ranges]);
    try {
      return this.summarise(lossT!, perPos!, B);
    } finally {
      disposeAll(lossT, perPos);
    }
  }

  private summarise(lossT: Tensor, perPos: Tensor, B: number): TransformerLoss {
    const { seqLen: S, textLen: T } = this.seq;
    const per = perPos.toFloat32Array();
    let text = 0;
    let image = 0;
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < S; p++) (p < T ? (text += per[b * S + p]!) : (image += per[b * S + p]!));
    }
    return { loss: lossT.toFloat32Array()[0]!, textLoss: text / (B * T), imageLoss: image / (B * (S - T)) };
  }

  /** The training loss on a batch and its gradient, written into `grads` (a table with the parameter names). */
  async lossAndGrad(batch: TokenBatch, grads: TensorTable, run: OpRunner = asyncRunner): Promise<TransformerLoss> {
    const B = this.batchOf(batch.inputs);
    if (batch.targets.length !== batch.inputs.length) throw new DalleError('E_INVALID_ARGUMENT', 'targets and inputs differ in length');
    const S = this.seq.seqLen;
    const C = this.config.width;
    const ctx = this.context(run);
    const { weights, ranges } = this.lossTable(B);
    using ids = Tensor.from(batch.inputs, [B, S], { dtype: 'i32' });
    using targets = Tensor.from(batch.targets, [B * S], { dtype: 'i32' });
    const caches: Array<BlockCache | undefined> = [];
    let head: HeadCache | undefined;
    const held: Array<Tensor | undefined> = [];
    try {
      let x = await embed(ctx, ids);
      for (let l = 0; l < this.config.layers; l++) {
        const { y, cache } = await blockForward(ctx, l, layerMask(l, this.config.layers), x, true);
        caches.push(cache);
        x = y;
      }
      const x2 = x.reshape([B * S, C]);
      x.dispose();
      const h = await headForward(ctx, x2, true);
      head = h.cache;
      held.push(h.logits);
      const [lossT, perPos] = await run('cross_entropy_forward', [h.logits, targets, weights, ranges]);
      held.push(lossT, perPos);
      const result = this.summarise(lossT!, perPos!, B);
      const dloss = Tensor.from(new Float32Array([1]), [1]);
      held.push(dloss);
      const dLogits = await run1(run, 'cross_entropy_backward', [h.logits, targets, weights, ranges, dloss]);
      held.push(dLogits);
      const hc = head!;
      head = undefined;
      let d = await headBackward(ctx, grads, hc, dLogits);
      try {
        let d3 = d.reshape([B, S, C]);
        d.dispose();
        d = d3;
        for (let l = this.config.layers - 1; l >= 0; l--) {
          const cache = caches[l]!;
          caches[l] = undefined;
          d3 = await blockBackward(ctx, grads, l, layerMask(l, this.config.layers), cache, d);
          d.dispose();
          d = d3;
        }
        await embedBackward(ctx, grads, ids, d);
      } finally {
        d.dispose();
      }
      return result;
    } finally {
      disposeAll(...held);
      disposeTrainCaches(caches, head);
    }
  }

  private batchOf(inputs: Int32Array): number {
    const S = this.seq.seqLen;
    if (!(inputs instanceof Int32Array) || inputs.length === 0 || inputs.length % S !== 0) {
      throw new DalleError('E_INVALID_ARGUMENT', `inputs must be an Int32Array of B·${S} ids`);
    }
    return inputs.length / S;
  }

  /** The CE weights and logit ranges for a batch size, made once. */
  private lossTable(batch: number): { weights: Tensor; ranges: Tensor } {
    let t = this.#lossTables.get(batch);
    if (!t) {
      const { textLen, imageLen, textSide } = this.seq;
      t = dalleLossWeights({ textLen, imageLen, batch, textVocab: textSide, imageVocab: this.config.imageVocab });
      this.#lossTables.set(batch, t);
    }
    return t;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#params?.dispose();
    this.#params = null;
    for (const t of this.#lossTables.values()) disposeAll(t.weights, t.ranges);
    this.#lossTables.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Fills the arena per its specs from one Philox stream (each tensor its own offset). */
function initialise(arena: Arena, specs: ReturnType<typeof transformerParamSpecs>, seed: number): void {
  let offset = 0;
  for (const s of specs) {
    const t = arena.get(s.name);
    if (s.init.std !== undefined) {
      using draw = randomNormal(t.shape, { seed, offset });
      offset += 2 * draw.size;
      const values = draw.toFloat32Array();
      for (let i = 0; i < values.length; i++) values[i]! *= s.init.std;
      t.write(values);
    } else if (s.init.fill) {
      t.write(new Float32Array(t.size).fill(s.init.fill));
    }
  }
}
