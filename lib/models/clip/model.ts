/**
 * A small CLIP for reranking DALL·E samples: a causal transformer over BPE text slots (the feature of the last slot,
 * which sees the whole caption and its pads, after a final LayerNorm) and a conv-net image encoder (the dVAE
 * encoder's architecture: bottleneck blocks and max-pools, its 1×1 output conv giving the feature width, mean-pooled
 * over the grid), each projected to a shared embedding; the contrastive loss of loss.ts. Parameters in one arena.
 */
import { Arena, type ArenaSpec } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { randomNormal } from '../../ops/random.js';
import { Tensor } from '../../tensor.js';
import { checkConfig as checkDvaeConfig, type DvaeConfig, encoderPlan, gridSize, type NetPlan, planConvs } from '../dvae/config.js';
import { mapPixels } from '../dvae/pixels.js';
import { disposeNetCache, netBackward, netForward, type TensorTable } from '../dvae/network.js';
import { type BlockCache, blockBackward, blockForward, type LayerContext } from '../transformer/layers.js';
import type { SequenceLayout, TransformerConfig } from '../transformer/config.js';
import { CLIP_INIT_LOG_SCALE, clipLoss, type ClipLossResult } from './loss.js';

export interface ClipConfig {
  /** Text slots T and the BPE vocabulary (pads PAD_j = textVocab + j fill empty slots). */
  textLen: number;
  textVocab: number;
  textLayers: number;
  textWidth: number;
  textHeads: number;
  /** Image side; the conv encoder halves it (groups − 1) times. */
  imageSize: number;
  imageWidth: number;
  imageGroups: number;
  /** Width of the image feature before the projection (the encoder's output channels). */
  imageFeatures: number;
  embedDim: number;
}

export const CLIP_PRESETS = {
  /** For the 32×32 shapes world. */
  shapes32: { textLen: 16, textVocab: 512, textLayers: 2, textWidth: 64, textHeads: 1, imageSize: 32, imageWidth: 32, imageGroups: 3, imageFeatures: 128, embedDim: 64 },
} as const satisfies Record<string, ClipConfig>;

function imageDvaeConfig(c: ClipConfig): DvaeConfig {
  return checkDvaeConfig({ imageSize: c.imageSize, nHid: c.imageWidth, groupCount: c.imageGroups, blocksPerGroup: 1, vocabSize: c.imageFeatures, nInit: 1 });
}

export function checkClipConfig(c: ClipConfig): ClipConfig {
  for (const key of Object.keys(CLIP_PRESETS.shapes32) as Array<keyof ClipConfig>) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: ${key} must be a positive integer, got ${String(c[key])}`);
  }
  if (c.textWidth % c.textHeads !== 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: textWidth ${c.textWidth} is not a multiple of textHeads ${c.textHeads}`);
  imageDvaeConfig(c);
  return { ...c };
}

/** Prefixes every name: the text blocks reuse the transformer's layer code under `text.`. */
function prefixed(table: TensorTable, prefix: string): TensorTable {
  return { get: (name: string) => table.get(prefix + name) };
}

export function clipParamSpecs(c: ClipConfig): Array<ArenaSpec & { std: number | null; fill?: number }> {
  const C = c.textWidth;
  const std = 0.02;
  const out = std / Math.sqrt(2 * c.textLayers);
  const specs: Array<ArenaSpec & { std: number | null; fill?: number }> = [
    { name: 'text.embed.tokens', shape: [c.textVocab + c.textLen, C], std },
    { name: 'text.embed.pos', shape: [c.textLen, C], std },
  ];
  for (let l = 0; l < c.textLayers; l++) {
    const p = `text.blocks.${l}`;
    specs.push(
      { name: `${p}.ln1.w`, shape: [C], std: null, fill: 1 },
      { name: `${p}.ln1.b`, shape: [C], std: null },
      { name: `${p}.attn.qkv.w`, shape: [C, 3 * C], std },
      { name: `${p}.attn.qkv.b`, shape: [3 * C], std: null },
      { name: `${p}.attn.proj.w`, shape: [C, C], std: out },
      { name: `${p}.attn.proj.b`, shape: [C], std: null },
      { name: `${p}.ln2.w`, shape: [C], std: null, fill: 1 },
      { name: `${p}.ln2.b`, shape: [C], std: null },
      { name: `${p}.mlp.fc.w`, shape: [C, 4 * C], std },
      { name: `${p}.mlp.fc.b`, shape: [4 * C], std: null },
      { name: `${p}.mlp.proj.w`, shape: [4 * C, C], std: out },
      { name: `${p}.mlp.proj.b`, shape: [C], std: null },
    );
  }
  specs.push({ name: 'text.ln_f.w', shape: [C], std: null, fill: 1 }, { name: 'text.ln_f.b', shape: [C], std: null });
  specs.push({ name: 'text.proj.w', shape: [C, c.embedDim], std: 1 / Math.sqrt(C) });
  for (const conv of planConvs(encoderPlan(imageDvaeConfig(c)))) {
    specs.push({ name: `image.${conv.name}.w`, shape: [conv.k, conv.k, conv.cin, conv.cout], std: 1 / Math.sqrt(conv.cin * conv.k * conv.k) }, { name: `image.${conv.name}.b`, shape: [conv.cout], std: null });
  }
  specs.push({ name: 'image.proj.w', shape: [c.imageFeatures, c.embedDim], std: 1 / Math.sqrt(c.imageFeatures) });
  specs.push({ name: 'logit_scale', shape: [1], std: null, fill: CLIP_INIT_LOG_SCALE });
  return specs;
}

interface TextForward {
  /** [B, C]: the last slot's LayerNormed state. */
  feature: Float32Array;
  caches: BlockCache[];
  x: Tensor;
  ln: { y: Tensor; mean: Tensor; rstd: Tensor };
  ids: Tensor;
  posIds: Tensor;
}

export class Clip implements Disposable {
  readonly config: ClipConfig;
  readonly params: Arena;
  readonly imagePlan: NetPlan;

  private constructor(config: ClipConfig) {
    this.config = checkClipConfig(config);
    this.imagePlan = encoderPlan(imageDvaeConfig(this.config));
    this.params = new Arena(clipParamSpecs(this.config));
  }

  static create(config: keyof typeof CLIP_PRESETS | (Partial<ClipConfig> & { preset?: keyof typeof CLIP_PRESETS }) = 'shapes32', options: { seed?: number } = {}): Clip {
    const base = CLIP_PRESETS[typeof config === 'string' ? config : (config.preset ?? 'shapes32')];
    if (!base) throw new DalleError('E_INVALID_ARGUMENT', `unknown CLIP preset ${JSON.stringify(config)}`);
    const { preset: _p, ...over } = typeof config === 'string' ? {} : config;
    const model = new Clip({ ...base, ...over });
    let offset = 0;
    for (const s of clipParamSpecs(model.config)) {
      const t = model.params.get(s.name);
      if (s.std !== null) {
        using draw = randomNormal(t.shape, { seed: options.seed ?? 0, offset });
        offset += 2 * draw.size;
        const v = draw.toFloat32Array();
        for (let i = 0; i < v.length; i++) v[i]! *= s.std;
        t.write(v);
      } else if (s.fill) t.write(new Float32Array(t.size).fill(s.fill));
    }
    return model;
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.tensors.values()) n += t.size;
    return n;
  }

  private textContext(run: OpRunner): LayerContext {
    const c = this.config;
    const config: TransformerConfig = { layers: c.textLayers, width: c.textWidth, heads: c.textHeads, textLen: c.textLen, textVocab: c.textVocab, imageVocab: 1, grid: 1 };
    // Every position is text: the attention ops' text part is the whole sequence, causal.
    const seq = { prefixLen: c.textLen, grid: 1 } as SequenceLayout;
    return { run, params: prefixed(this.params, 'text.'), config, seq };
  }

  /** Text slots i32 [B·T] (−1 = empty slot, becomes PAD_j) as embedding ids. */
  private slotIds(text: Int32Array): Int32Array {
    const { textLen: T, textVocab: V } = this.config;
    if (!(text instanceof Int32Array) || text.length === 0 || text.length % T !== 0) throw new DalleError('E_INVALID_ARGUMENT', `text must be an Int32Array of B·${T} slots`);
    return text.map((id, i) => {
      if (!(id >= -1 && id < V)) throw new DalleError('E_INVALID_ARGUMENT', `text slot ${i} = ${id}: outside [0, ${V}) and not −1`);
      return id === -1 ? V + (i % T) : id;
    });
  }

  private async textForward(text: Int32Array, run: OpRunner, train: boolean): Promise<TextForward> {
    const { textLen: T, textWidth: C } = this.config;
    const B = text.length / T;
    const ctx = this.textContext(run);
    const ids = Tensor.from(this.slotIds(text), [B, T], { dtype: 'i32' });
    const posIds = Tensor.from(Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T], { dtype: 'i32' });
    const caches: BlockCache[] = [];
    let x: Tensor | undefined;
    try {
      using tok = await run1(run, 'embedding_forward', [ids, this.params.get('text.embed.tokens')]);
      using pos = await run1(run, 'embedding_forward', [posIds, this.params.get('text.embed.pos')]);
      x = await run1(run, 'residual_forward', [tok, pos], { scale: 1 });
      for (let l = 0; l < this.config.textLayers; l++) {
        const { y, cache } = await blockForward(ctx, l, 'causal', x, train);
        if (cache) caches.push(cache);
        else x.dispose();
        x = y;
      }
      const x2 = x.reshape([B * T, C]);
      x.dispose();
      x = x2;
      const [y, mean, rstd] = await run('layernorm_forward', [x, this.params.get('text.ln_f.w'), this.params.get('text.ln_f.b')]);
      const all = y!.toFloat32Array();
      const feature = new Float32Array(B * C);
      for (let b = 0; b < B; b++) feature.set(all.subarray((b * T + T - 1) * C, (b * T + T) * C), b * C);
      return { feature, caches, x, ln: { y: y!, mean: mean!, rstd: rstd! }, ids, posIds };
    } catch (err) {
      disposeAll(ids, posIds, x);
      for (const c of caches) disposeAll(c.x);
      throw err;
    }
  }

  private async imageFeatures(images: Uint8Array, run: OpRunner, train: boolean) {
    const s = this.config.imageSize;
    const per = s * s * 3;
    if (!(images instanceof Uint8Array) || images.length === 0 || images.length % per !== 0) {
      throw new DalleError('E_INVALID_ARGUMENT', `CLIP images must be uint8 [B, ${s}, ${s}, 3]`);
    }
    const B = images.length / per;
    const x = Tensor.from(mapPixels(images), [B, s, s, 3]);
    const out = await netForward(run, prefixed(this.params, 'image.'), this.imagePlan, x, train);
    const g = gridSize(imageDvaeConfig(this.config));
    const F = this.config.imageFeatures;
    const all = out.y.toFloat32Array();
    const pooled = new Float32Array(B * F);
    for (let b = 0; b < B; b++) for (let c = 0; c < g * g; c++) for (let f = 0; f < F; f++) pooled[b * F + f]! += all[(b * g * g + c) * F + f]! / (g * g);
    return { x, out, pooled, B, g };
  }

  /** [B, E] = feature [B, in] · W (no bias). */
  private async project(run: OpRunner, name: string, feature: Float32Array, width: number): Promise<Float32Array> {
    using f = Tensor.from(feature, [feature.length / width, width]);
    using y = await run1(run, 'matmul_forward', [f, this.params.get(name)], { trans_a: 0, trans_b: 0 });
    return y.toFloat32Array();
  }

  /** Unnormalised text embeddings [B, E] for text slots [B·T]. */
  async encodeText(text: Int32Array, run: OpRunner = asyncRunner): Promise<Float32Array> {
    const f = await this.textForward(text, run, false);
    disposeAll(f.x, f.ln.y, f.ln.mean, f.ln.rstd, f.ids, f.posIds);
    return this.project(run, 'text.proj.w', f.feature, this.config.textWidth);
  }

  /** Unnormalised image embeddings [B, E] for uint8 images [B, S, S, 3]. */
  async encodeImages(images: Uint8Array, run: OpRunner = asyncRunner): Promise<Float32Array> {
    const f = await this.imageFeatures(images, run, false);
    disposeAll(f.x, f.out.y);
    return this.project(run, 'image.proj.w', f.pooled, this.config.imageFeatures);
  }

  /** The contrastive loss on B (text, image) pairs and its gradient, written into `grads`. */
  async lossAndGrad(text: Int32Array, images: Uint8Array, grads: TensorTable, run: OpRunner = asyncRunner): Promise<ClipLossResult> {
    const { textLen: T, textWidth: C, imageFeatures: F, embedDim: E } = this.config;
    const tf = await this.textForward(text, run, true);
    let imf: Awaited<ReturnType<Clip['imageFeatures']>> | undefined;
    const held: Array<Tensor | undefined> = [tf.x, tf.ln.y, tf.ln.mean, tf.ln.rstd, tf.ids, tf.posIds];
    try {
      imf = await this.imageFeatures(images, run, true);
      held.push(imf.x, imf.out.y);
      const B = tf.feature.length / C;
      if (imf.B !== B) throw new DalleError('E_INVALID_ARGUMENT', `CLIP: ${B} captions but ${imf.B} images`);
      const textEmb = await this.project(run, 'text.proj.w', tf.feature, C);
      const imageEmb = await this.project(run, 'image.proj.w', imf.pooled, F);
      const logScale = this.params.get('logit_scale').toFloat32Array()[0]!;
      const result = clipLoss(textEmb, imageEmb, E, logScale);
      grads.get('logit_scale').write(Float32Array.of(result.dLogScale));

      // Text: projection, then the last slot's row of ln_f, then the blocks and both embeddings.
      const dTextFeat = await this.projectBackward(run, grads, 'text.proj.w', tf.feature, C, result.dText, E);
      const dLn = new Float32Array(B * T * C);
      for (let b = 0; b < B; b++) dLn.set(dTextFeat.subarray(b * C, (b + 1) * C), (b * T + T - 1) * C);
      using dLnT = Tensor.from(dLn, [B * T, C]);
      let d = Tensor.zeros([B * T, C]);
      await run('layernorm_backward', [tf.x, this.params.get('text.ln_f.w'), tf.ln.mean, tf.ln.rstd, dLnT], undefined, [d, grads.get('text.ln_f.w'), grads.get('text.ln_f.b')]);
      const ctx = this.textContext(run);
      const tgrads = prefixed(grads, 'text.');
      try {
        let d3 = d.reshape([B, T, C]);
        d.dispose();
        d = d3;
        for (let l = this.config.textLayers - 1; l >= 0; l--) {
          const cache = tf.caches.pop()!;
          d3 = await blockBackward(ctx, tgrads, l, 'causal', cache, d);
          d.dispose();
          d = d3;
        }
        await run('embedding_backward', [tf.ids, d], { vocab: this.config.textVocab + T }, [grads.get('text.embed.tokens')]);
        await run('embedding_backward', [tf.posIds, d], { vocab: T }, [grads.get('text.embed.pos')]);
      } finally {
        d.dispose();
      }

      // Image: projection, the mean pool, the conv net.
      const dPooled = await this.projectBackward(run, grads, 'image.proj.w', imf.pooled, F, result.dImage, E);
      const cells = imf.g * imf.g;
      const dOut = new Float32Array(B * cells * F);
      for (let b = 0; b < B; b++) for (let c = 0; c < cells; c++) for (let f = 0; f < F; f++) dOut[(b * cells + c) * F + f] = dPooled[b * F + f]! / cells;
      using dOutT = Tensor.from(dOut, imf.out.y.shape);
      const cache = imf.out.cache!;
      imf.out.cache = undefined;
      await netBackward(run, prefixed(this.params, 'image.'), prefixed(grads, 'image.'), this.imagePlan, cache, dOutT, false);
      return result;
    } finally {
      disposeAll(...held);
      for (const c of tf.caches) disposeAll(c.x);
      disposeNetCache(imf?.out.cache);
    }
  }

  /** dfeature [B, in] of y = feature·W, with dW written into grads. */
  private async projectBackward(run: OpRunner, grads: TensorTable, name: string, feature: Float32Array, width: number, dy: Float32Array, E: number): Promise<Float32Array> {
    const B = feature.length / width;
    using f = Tensor.from(feature, [B, width]);
    using dyT = Tensor.from(dy, [B, E]);
    using df = Tensor.zeros([B, width]);
    await run('matmul_backward', [f, this.params.get(name), dyT], { trans_a: 0, trans_b: 0 }, [df, grads.get(name)]);
    return df.toFloat32Array();
  }

  dispose(): void {
    this.params.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
