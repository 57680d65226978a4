/**
 * A small CLIP for reranking DALL·E samples: a causal transformer over BPE text slots (the feature of the last slot,
 * which sees the whole caption and its pads, after a final LayerNorm) and an image encoder (a conv net or a ViT,
 * image-encoders.ts), each projected to a shared embedding; the contrastive loss of loss.ts. Parameters in one arena.
 */
import { Arena } from '../../engine.js';
import { checkBounds } from '../weights.js';
import { DalleError } from '../../errors.js';
import { asyncRunner, disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { randomNormal } from '../../ops/random.js';
import { Tensor } from '../../tensor.js';
import type { TensorTable } from '../dvae/network.js';
import { type BlockCache, blockBackward, blockForward, disposeTrainCaches, type LayerContext } from '../transformer/layers.js';
import type { SequenceLayout, TransformerConfig } from '../transformer/config.js';
import { blockSpecs, checkImageShape, type ClipParamSpec, featureWidth, imageForward, type ImageForward, imageParamSpecs, type ImageShape } from './image-encoders.js';
import { CLIP_INIT_LOG_SCALE, clipLoss, type ClipLossResult } from './loss.js';

export interface ClipConfig {
  /** Text slots T and the BPE vocabulary (pads PAD_j = textVocab + j fill empty slots). */
  textLen: number;
  textVocab: number;
  textLayers: number;
  textWidth: number;
  textHeads: number;
  imageSize: number;
  /** 'conv' (what a config without this field means) or 'vit'. */
  imageEncoder?: 'conv' | 'vit';
  /** conv: channels of the first group, doubling per group; vit: the transformer width, also the feature width. */
  imageWidth: number;
  /** conv only: resolution groups (the side halves between groups) and the output conv's channels (feature width). */
  imageGroups?: number;
  imageFeatures?: number;
  /** vit only: patch side, layers, heads. */
  imagePatch?: number;
  imageLayers?: number;
  imageHeads?: number;
  embedDim: number;
}

export const CLIP_PRESETS = {
  /** For the 32×32 shapes world: the conv encoder (0.23M parameters; image encoder 0.095M). */
  'shapes32-conv': { textLen: 16, textVocab: 512, textLayers: 2, textWidth: 64, textHeads: 1, imageSize: 32, imageEncoder: 'conv', imageWidth: 32, imageGroups: 3, imageFeatures: 128, embedDim: 64 },
  /** For the 32×32 shapes world: a ViT over 64 patches of 4×4 (0.25M parameters; image encoder 0.111M). */
  'shapes32-vit': { textLen: 16, textVocab: 512, textLayers: 2, textWidth: 64, textHeads: 1, imageSize: 32, imageEncoder: 'vit', imageWidth: 64, imagePatch: 4, imageLayers: 2, imageHeads: 2, embedDim: 64 },
} as const satisfies Record<string, ClipConfig>;

export type ClipPreset = keyof typeof CLIP_PRESETS | 'shapes32';

/** The configuration a preset name stands for. */
export function clipPreset(name: ClipPreset): ClipConfig {
  // 'shapes32' is the encoder that measured better there: the conv net (82/100 against 73/100 reranked, README).
  return CLIP_PRESETS[name === 'shapes32' ? 'shapes32-conv' : name];
}

const COMMON_FIELDS = ['textLen', 'textVocab', 'textLayers', 'textWidth', 'textHeads', 'imageSize', 'imageWidth', 'embedDim'] as const;
const ENCODER_FIELDS = { conv: ['imageGroups', 'imageFeatures'], vit: ['imagePatch', 'imageLayers', 'imageHeads'] } as const;

/**
 * Bounds on every field, far above any CLIP that fits in memory, so that a config read from a file is refused before
 * its parameter table is built: 65536 text layers once grew the loader past 3 GB.
 */
export const CLIP_LIMITS = {
  textLen: 16384,
  textVocab: 1 << 24,
  textLayers: 1024,
  textWidth: 65536,
  textHeads: 1024,
  imageSize: 32768,
  imageWidth: 65536,
  imageGroups: 12,
  imageFeatures: 65536,
  imagePatch: 32768,
  imageLayers: 1024,
  imageHeads: 1024,
  embedDim: 65536,
} as const satisfies Record<Exclude<keyof ClipConfig, 'imageEncoder'>, number>;

function positiveInteger(c: ClipConfig, key: keyof ClipConfig): void {
  if (!Number.isInteger(c[key]) || (c[key] as number) <= 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: ${key} must be a positive integer, got ${String(c[key])}`);
}

/** Checks a config and fills in `imageEncoder`; throws E_INVALID_ARGUMENT naming the first bad field. */
export function checkClipConfig(c: ClipConfig): ClipConfig {
  const kind = c.imageEncoder ?? 'conv';
  if (kind !== 'conv' && kind !== 'vit') throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: imageEncoder must be 'conv' or 'vit', got ${JSON.stringify(kind)}`);
  for (const key of [...COMMON_FIELDS, ...ENCODER_FIELDS[kind]]) positiveInteger(c, key);
  const other = ENCODER_FIELDS[kind === 'conv' ? 'vit' : 'conv'].find((key) => c[key] !== undefined);
  if (other) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: ${other} belongs to the ${kind === 'conv' ? 'vit' : 'conv'} image encoder, but imageEncoder is '${kind}'`);
  checkBounds('CLIP', c, CLIP_LIMITS);
  if (c.textWidth % c.textHeads !== 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: textWidth ${c.textWidth} is not a multiple of textHeads ${c.textHeads}`);
  const out = { ...c, imageEncoder: kind };
  checkImageShape(imageShape(out));
  return out;
}

/** The image encoder's shape from a checked config. */
export function imageShape(c: ClipConfig): ImageShape {
  if (c.imageEncoder === 'vit') return { kind: 'vit', imageSize: c.imageSize, width: c.imageWidth, patch: c.imagePatch!, layers: c.imageLayers!, heads: c.imageHeads! };
  return { kind: 'conv', imageSize: c.imageSize, width: c.imageWidth, groups: c.imageGroups!, features: c.imageFeatures! };
}

/** Prefixes every name: the text blocks reuse the transformer's layer code under `text.`, the encoder under `image.`. */
function prefixed(table: TensorTable, prefix: string): TensorTable {
  return { get: (name: string) => table.get(prefix + name) };
}

export function clipParamSpecs(c: ClipConfig): ClipParamSpec[] {
  const C = c.textWidth;
  const std = 0.02;
  const image = imageShape(c);
  const F = featureWidth(image);
  return [
    { name: 'text.embed.tokens', shape: [c.textVocab + c.textLen, C], std },
    { name: 'text.embed.pos', shape: [c.textLen, C], std },
    ...blockSpecs('text.', C, c.textLayers),
    { name: 'text.proj.w', shape: [C, c.embedDim], std: 1 / Math.sqrt(C) },
    ...imageParamSpecs(image).map((s) => ({ ...s, name: `image.${s.name}` })),
    { name: 'image.proj.w', shape: [F, c.embedDim], std: 1 / Math.sqrt(F) },
    { name: 'logit_scale', shape: [1], std: null, fill: CLIP_INIT_LOG_SCALE },
  ];
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
  readonly imageShape: ImageShape;

  private constructor(config: ClipConfig) {
    this.config = checkClipConfig(config);
    this.imageShape = imageShape(this.config);
    this.params = new Arena(clipParamSpecs(this.config));
  }

  /** A CLIP of a checked config with its parameters allocated but not initialised (a loader writes them). */
  static allocate(config: ClipConfig): Clip {
    return new Clip(config);
  }

  /**
   * A new CLIP with random weights: a preset, or a preset with fields overridden (without `preset`, the one of
   * `imageEncoder`, else 'shapes32').
   */
  static create(config: ClipPreset | (Partial<ClipConfig> & { preset?: ClipPreset }) = 'shapes32', options: { seed?: number } = {}): Clip {
    const name = typeof config === 'string' ? config : (config.preset ?? (config.imageEncoder ? (`shapes32-${config.imageEncoder}` as const) : 'shapes32'));
    const base = clipPreset(name) as ClipConfig | undefined;
    if (!base) throw new DalleError('E_INVALID_ARGUMENT', `unknown CLIP preset ${JSON.stringify(name)}`);
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
      disposeTrainCaches(caches);
      throw err;
    }
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
    const f = await imageForward(this.imageShape, run, prefixed(this.params, 'image.'), images, false);
    return this.project(run, 'image.proj.w', f.feature, featureWidth(this.imageShape));
  }

  /** The contrastive loss on B (text, image) pairs and its gradient, written into `grads`. */
  async lossAndGrad(text: Int32Array, images: Uint8Array, grads: TensorTable, run: OpRunner = asyncRunner): Promise<ClipLossResult> {
    const { textLen: T, textWidth: C, embedDim: E } = this.config;
    const F = featureWidth(this.imageShape);
    const tf = await this.textForward(text, run, true);
    let imf: ImageForward | undefined;
    const held: Array<Tensor | undefined> = [tf.x, tf.ln.y, tf.ln.mean, tf.ln.rstd, tf.ids, tf.posIds];
    try {
      imf = await imageForward(this.imageShape, run, prefixed(this.params, 'image.'), images, true);
      const B = tf.feature.length / C;
      if (imf.B !== B) throw new DalleError('E_INVALID_ARGUMENT', `CLIP: ${B} captions but ${imf.B} images`);
      const textEmb = await this.project(run, 'text.proj.w', tf.feature, C);
      const imageEmb = await this.project(run, 'image.proj.w', imf.feature, F);
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

      // Image: projection, then the encoder.
      const dFeature = await this.projectBackward(run, grads, 'image.proj.w', imf.feature, F, result.dImage, E);
      await imf.backward(prefixed(grads, 'image.'), dFeature);
      return result;
    } finally {
      disposeAll(...held);
      disposeTrainCaches(tf.caches);
      imf?.release();
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
