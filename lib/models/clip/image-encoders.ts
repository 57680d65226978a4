/**
 * CLIP's two image encoders, behind one interface so the model and its training do not care which: pixels in, one
 * feature vector per image out, and a backward that writes parameter gradients. On the 32×32 shapes world the conv net
 * won at equal updates and at equal time, on retrieval and on reranking (README, "CLIP and reranking";
 * benchmarks/clip/shapes.ts `--preset`), so it is the `shapes32` preset.
 *
 * - conv: the dVAE encoder's architecture (bottleneck blocks, max-pools, a 1×1 output conv), mean-pooled over its grid.
 * - vit: a ViT — non-overlapping p×p patches, a linear patch embedding plus a learned position embedding, pre-LN
 *   transformer blocks with bidirectional attention (the DALL·E transformer's block code), a final LayerNorm, and the
 *   mean over patches (no class token, so no extra sequence slot; a class token was not tried).
 *
 * Parameter names are relative to the model's `image.` prefix.
 */
import type { ArenaSpec } from '../../engine.js';
import { DalleError } from '../../errors.js';
import { disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { Tensor } from '../../tensor.js';
import { checkConfig as checkDvaeConfig, type DvaeConfig, encoderPlan, gridSize, planConvs } from '../dvae/config.js';
import { disposeNetCache, type NetCache, netBackward, netForward, type TensorTable } from '../dvae/network.js';
import { mapPixels } from '../dvae/pixels.js';
import type { SequenceLayout, TransformerConfig } from '../transformer/config.js';
import { type BlockCache, blockBackward, blockForward, disposeTrainCaches, type LayerContext, linear, linearBackward } from '../transformer/layers.js';

export type ClipParamSpec = ArenaSpec & { std: number | null; fill?: number };

export interface ConvImageShape {
  kind: 'conv';
  imageSize: number;
  /** Channels of the first group (the dVAE's nHid); doubles per group. */
  width: number;
  groups: number;
  /** Output channels of the 1×1 conv: the feature width. */
  features: number;
}

export interface VitImageShape {
  kind: 'vit';
  imageSize: number;
  /** Transformer width, which is also the feature width. */
  width: number;
  patch: number;
  layers: number;
  heads: number;
}

export type ImageShape = ConvImageShape | VitImageShape;

/** One forward pass: the pooled features, and (when trained) the backward that consumes what the pass kept. */
export interface ImageForward {
  /** [B, featureWidth]. */
  feature: Float32Array;
  B: number;
  /** Writes every image parameter's gradient given dL/dfeature [B, featureWidth]; call once, or `release`. */
  backward(grads: TensorTable, dFeature: Float32Array): Promise<void>;
  release(): void;
}

export function featureWidth(s: ImageShape): number {
  return s.kind === 'conv' ? s.features : s.width;
}

function convDvaeConfig(s: ConvImageShape): DvaeConfig {
  return checkDvaeConfig({ imageSize: s.imageSize, nHid: s.width, groupCount: s.groups, blocksPerGroup: 1, vocabSize: s.features, nInit: 1 });
}

/** Throws E_INVALID_ARGUMENT when the shape cannot be built. */
export function checkImageShape(s: ImageShape): void {
  if (s.kind === 'conv') {
    convDvaeConfig(s);
    return;
  }
  if (s.imageSize % s.patch !== 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: imageSize ${s.imageSize} is not a multiple of imagePatch ${s.patch}`);
  if (s.width % s.heads !== 0) throw new DalleError('E_INVALID_ARGUMENT', `CLIP config: imageWidth ${s.width} is not a multiple of imageHeads ${s.heads}`);
}

/** The pre-LN transformer block's parameters, as the DALL·E transformer names them (`${prefix}blocks.l.*`). */
export function blockSpecs(prefix: string, width: number, layers: number): ClipParamSpec[] {
  const C = width;
  const std = 0.02;
  const out = std / Math.sqrt(2 * layers);
  const specs: ClipParamSpec[] = [];
  for (let l = 0; l < layers; l++) {
    const p = `${prefix}blocks.${l}`;
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
  specs.push({ name: `${prefix}ln_f.w`, shape: [C], std: null, fill: 1 }, { name: `${prefix}ln_f.b`, shape: [C], std: null });
  return specs;
}

/** The encoder's parameters (names without the `image.` prefix), in arena order. */
export function imageParamSpecs(s: ImageShape): ClipParamSpec[] {
  if (s.kind === 'conv') {
    return planConvs(encoderPlan(convDvaeConfig(s))).flatMap((c) => [
      { name: `${c.name}.w`, shape: [c.k, c.k, c.cin, c.cout], std: 1 / Math.sqrt(c.cin * c.k * c.k) },
      { name: `${c.name}.b`, shape: [c.cout], std: null },
    ]);
  }
  const patchValues = s.patch * s.patch * 3;
  const patches = (s.imageSize / s.patch) ** 2;
  return [
    { name: 'patch.w', shape: [patchValues, s.width], std: 1 / Math.sqrt(patchValues) },
    { name: 'patch.b', shape: [s.width], std: null },
    { name: 'pos', shape: [patches * s.width], std: 0.02 },
    ...blockSpecs('', s.width, s.layers),
  ];
}

function checkPixels(images: Uint8Array, size: number): number {
  const per = size * size * 3;
  if (!(images instanceof Uint8Array) || images.length === 0 || images.length % per !== 0) {
    throw new DalleError('E_INVALID_ARGUMENT', `CLIP images must be uint8 [B, ${size}, ${size}, 3]`);
  }
  return images.length / per;
}

/** Mean over `n` consecutive rows of width F: [B·n, F] → [B, F]. */
function meanRows(all: Float32Array, B: number, n: number, F: number): Float32Array {
  const pooled = new Float32Array(B * F);
  for (let b = 0; b < B; b++) for (let r = 0; r < n; r++) for (let f = 0; f < F; f++) pooled[b * F + f]! += all[(b * n + r) * F + f]! / n;
  return pooled;
}

/** Backward of {@link meanRows}. */
function spreadRows(d: Float32Array, B: number, n: number, F: number): Float32Array {
  const out = new Float32Array(B * n * F);
  for (let b = 0; b < B; b++) for (let r = 0; r < n; r++) for (let f = 0; f < F; f++) out[(b * n + r) * F + f] = d[b * F + f]! / n;
  return out;
}

async function convForward(s: ConvImageShape, run: OpRunner, params: TensorTable, images: Uint8Array, train: boolean): Promise<ImageForward> {
  const B = checkPixels(images, s.imageSize);
  const plan = encoderPlan(convDvaeConfig(s));
  const g = gridSize(convDvaeConfig(s));
  // The cache reads the input in the backward: x lives until then.
  const x = Tensor.from(mapPixels(images), [B, s.imageSize, s.imageSize, 3]);
  let cache: NetCache | undefined;
  const release = () => {
    disposeNetCache(cache);
    cache = undefined;
    x.dispose();
  };
  try {
    const out = await netForward(run, params, plan, x, train);
    cache = out.cache;
    const feature = meanRows(out.y.toFloat32Array(), B, g * g, s.features);
    const shape = out.y.shape;
    out.y.dispose();
    if (!train) release();
    return {
      feature,
      B,
      async backward(grads, dFeature) {
        if (!cache) throw new DalleError('E_DISPOSED', 'this image forward kept nothing for a backward (not trained, released, or already run)');
        const c = cache;
        cache = undefined;
        try {
          using dOut = Tensor.from(spreadRows(dFeature, B, g * g, s.features), shape);
          await netBackward(run, params, grads, plan, c, dOut, false);
        } finally {
          release();
        }
      },
      release,
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** Non-overlapping p×p patches of mapped pixels: [B·N, p·p·3], patches in raster order, each row-major (y, x, rgb). */
function patchify(pixels: Float32Array, B: number, size: number, p: number): Float32Array {
  const side = size / p;
  const out = new Float32Array(pixels.length);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        for (let y = 0; y < p; y++) {
          const start = ((b * size + py * p + y) * size + px * p) * 3;
          out.set(pixels.subarray(start, start + p * 3), o);
          o += p * 3;
        }
      }
    }
  }
  return out;
}

async function vitForward(s: VitImageShape, run: OpRunner, params: TensorTable, images: Uint8Array, train: boolean): Promise<ImageForward> {
  const B = checkPixels(images, s.imageSize);
  const N = (s.imageSize / s.patch) ** 2;
  const C = s.width;
  const config: TransformerConfig = { layers: s.layers, width: C, heads: s.heads, textLen: N, textVocab: 1, imageVocab: 1, grid: 1 };
  const ctx: LayerContext = { run, params, config, seq: { prefixLen: N, grid: 1 } as SequenceLayout };
  const patches = Tensor.from(patchify(mapPixels(images), B, s.imageSize, s.patch), [B * N, s.patch * s.patch * 3]);
  const caches: BlockCache[] = [];
  const held: Array<Tensor | undefined> = [patches];
  let x: Tensor | undefined;
  try {
    using emb = await linear(ctx, 'patch', patches);
    using embFlat = emb.reshape([B, N * C]);
    using withPos = await run1(run, 'bias_add_forward', [embFlat, params.get('pos')]);
    x = withPos.reshape([B, N, C]);
    for (let l = 0; l < s.layers; l++) {
      const { y, cache } = await blockForward(ctx, l, 'bidirectional', x, train);
      if (cache) caches.push(cache);
      else x.dispose();
      x = y;
    }
    const rows = x.reshape([B * N, C]);
    x.dispose();
    x = rows;
    held.push(x);
    const [lnY, mean, rstd] = await run('layernorm_forward', [x, params.get('ln_f.w'), params.get('ln_f.b')]);
    held.push(lnY, mean, rstd);
    const feature = meanRows(lnY!.toFloat32Array(), B, N, C);
    lnY!.dispose();
    const release = () => {
      disposeAll(...held);
      held.length = 0;
      disposeTrainCaches(caches.splice(0));
    };
    if (!train) release();
    return {
      feature,
      B,
      async backward(grads, dFeature) {
        if (caches.length !== s.layers) throw new DalleError('E_DISPOSED', 'this image forward kept nothing for a backward (not trained, released, or already run)');
        try {
          using dLn = Tensor.from(spreadRows(dFeature, B, N, C), [B * N, C]);
          let d = Tensor.zeros([B * N, C]);
          try {
            await run('layernorm_backward', [rows, params.get('ln_f.w'), mean!, rstd!, dLn], undefined, [d, grads.get('ln_f.w'), grads.get('ln_f.b')]);
            let d3 = d.reshape([B, N, C]);
            d.dispose();
            d = d3;
            for (let l = s.layers - 1; l >= 0; l--) {
              d3 = await blockBackward(ctx, grads, l, 'bidirectional', caches.pop()!, d);
              d.dispose();
              d = d3;
            }
            using dFlat = d.reshape([B, N * C]);
            await run('bias_add_backward', [dFlat], undefined, [grads.get('pos')]);
            using dEmb = d.reshape([B * N, C]);
            await linearBackward(ctx, grads, 'patch', patches, dEmb, false);
          } finally {
            d.dispose();
          }
        } finally {
          release();
        }
      },
      release,
    };
  } catch (err) {
    disposeAll(...held);
    if (x && !held.includes(x)) x.dispose();
    disposeTrainCaches(caches);
    throw err;
  }
}

/** Runs the encoder on uint8 images [B, S, S, 3]; with `train`, keeps what {@link ImageForward.backward} needs. */
export function imageForward(s: ImageShape, run: OpRunner, params: TensorTable, images: Uint8Array, train: boolean): Promise<ImageForward> {
  return s.kind === 'conv' ? convForward(s, run, params, images, train) : vitForward(s, run, params, images, train);
}
