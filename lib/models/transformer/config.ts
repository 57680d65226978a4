/**
 * The DALL·E transformer's configuration, its presets, the layer schedule, the id spaces of its sequence, the
 * parameter table and what a model of a config needs in memory — all pure functions of the config, so a 12B model
 * can be described without allocating it.
 */
import type { ArenaSpec } from '../../engine.js';
import { DalleError } from '../../errors.js';
import type { AttentionMaskKind } from '../../ops/attention.js';
import { checkBounds } from '../weights.js';

export interface TransformerConfig {
  /** Attention layers (each an attention resblock and an MLP resblock). */
  layers: number;
  /** d_model; heads·64 in the paper. */
  width: number;
  heads: number;
  /** T, text slots (BPE ids or per-position pads). */
  textLen: number;
  /** BPE vocabulary size (the T pads come on top). */
  textVocab: number;
  /** dVAE codebook size. */
  imageVocab: number;
  /** Image grid side W: W² image tokens. */
  grid: number;
}

export const TRANSFORMER_PRESETS = {
  /** For tests and the CPU end-to-end run: pairs with the small32 dVAE (16×16 codes from 512). */
  tiny: { layers: 4, width: 128, heads: 2, textLen: 16, textVocab: 512, imageVocab: 512, grid: 16 },
  /** The default model we ship: pairs with the small64 dVAE (16×16 codes from 1024). */
  small: { layers: 12, width: 384, heads: 6, textLen: 32, textVocab: 4096, imageVocab: 1024, grid: 16 },
  /** The paper's 12B model (App. B.1): 64 layers, 62 heads of 64, 256 text tokens, 32×32 codes from 8192. */
  paper: { layers: 64, width: 3968, heads: 62, textLen: 256, textVocab: 16384, imageVocab: 8192, grid: 32 },
} as const satisfies Record<string, TransformerConfig>;

export type TransformerPreset = keyof typeof TRANSFORMER_PRESETS;

export type TransformerConfigInput = TransformerPreset | (Partial<TransformerConfig> & { preset?: TransformerPreset });

export function resolveTransformerConfig(config: TransformerConfigInput): TransformerConfig {
  const name = typeof config === 'string' ? config : (config?.preset ?? 'tiny');
  const base = (TRANSFORMER_PRESETS as Record<string, TransformerConfig>)[name];
  if (base === undefined) {
    throw new DalleError('E_INVALID_ARGUMENT', `unknown transformer preset ${JSON.stringify(name)}; expected one of ${Object.keys(TRANSFORMER_PRESETS).join(', ')}`);
  }
  const { preset: _preset, ...overrides } = typeof config === 'string' ? {} : config;
  return checkTransformerConfig({ ...base, ...overrides });
}

/**
 * Bounds on every field, far above the paper's 12B model (64 layers, width 3968, 256 text tokens, a 32×32 grid), so
 * that a config read from a file is refused before its parameter table is built: 10⁹ layers once hung the loader.
 */
export const TRANSFORMER_LIMITS = {
  layers: 1024,
  width: 65536,
  heads: 1024,
  textLen: 16384,
  textVocab: 1 << 24,
  imageVocab: 1 << 24,
  grid: 256,
} as const satisfies Record<keyof TransformerConfig, number>;

export function checkTransformerConfig(c: TransformerConfig): TransformerConfig {
  const bad = (msg: string): never => {
    throw new DalleError('E_INVALID_ARGUMENT', `transformer config: ${msg}`);
  };
  checkBounds('transformer', c, TRANSFORMER_LIMITS);
  for (const key of ['layers', 'width', 'heads', 'textLen', 'textVocab', 'imageVocab', 'grid'] as const) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) bad(`${key} must be a positive integer, got ${String(c[key])}`);
  }
  if (c.width % c.heads !== 0) bad(`width ${c.width} is not a multiple of heads ${c.heads}`);
  if (c.grid < 2) bad(`grid must be at least 2, got ${c.grid}`);
  if (c.textVocab + c.textLen + c.imageVocab + 1 > 2 ** 31 - 1) bad('vocabularies too large for 32-bit ids');
  return { layers: c.layers, width: c.width, heads: c.heads, textLen: c.textLen, textVocab: c.textVocab, imageVocab: c.imageVocab, grid: c.grid };
}

/**
 * The id spaces (DALLE-SPEC.md "Decisions"). Head (target) ids: [0, textVocab) BPE, [textVocab, textSide) the pads
 * PAD_j = textVocab + j, [textSide, headSize) image codes offset by textSide. Input ids are the same plus BOS =
 * headSize, which is never a target. Sequence positions: 0 is BOS, 1..T the text slots, T+1.. the image cells
 * z_0..z_{N−2} in raster order; the output at position p predicts target p.
 */
export interface SequenceLayout {
  /** T. */
  textLen: number;
  /** T + 1: BOS and the text slots, the attention ops' text_len. */
  prefixLen: number;
  /** N = W². */
  imageLen: number;
  /** S = T + N: inputs [BOS, s_0..s_{T−1}, z_0..z_{N−2}], targets [s_0..s_{T−1}, z_0..z_{N−1}]. */
  seqLen: number;
  /** textVocab + T. */
  textSide: number;
  /** textSide + imageVocab: the head's width. */
  headSize: number;
  /** Rows of the token table: headSize + 1 (BOS last). */
  tokenRows: number;
  bos: number;
  grid: number;
}

export function sequenceLayout(c: TransformerConfig): SequenceLayout {
  const textSide = c.textVocab + c.textLen;
  const headSize = textSide + c.imageVocab;
  return {
    textLen: c.textLen,
    prefixLen: c.textLen + 1,
    imageLen: c.grid * c.grid,
    seqLen: c.textLen + c.grid * c.grid,
    textSide,
    headSize,
    tokenRows: headSize + 1,
    bos: headSize,
    grid: c.grid,
  };
}

/**
 * The mask of layer ℓ (0-based here, 1-based in the paper, App. B.1): conv in the last layer, column where
 * (ℓ₁ − 2) mod 4 = 0, row otherwise — row, column, row, row, row, column, … .
 */
export function layerMask(layer: number, layers: number): AttentionMaskKind {
  const l1 = layer + 1;
  if (l1 === layers) return 'conv';
  return (l1 - 2) % 4 === 0 ? 'column' : 'row';
}

/** How a parameter is initialised: N(0, std²), or the constant `fill`. */
export interface ParamInit {
  std?: number;
  fill?: number;
}

export type TransformerParamSpec = ArenaSpec & { init: ParamInit };

/**
 * The parameter table. Weights are [in, out]. Init: N(0, 0.02²) for embeddings and matrices, the two residual output
 * projections of each block scaled by 1/√(2L) (Sparse Transformer §5.2, which the paper's blocks follow), LayerNorm
 * gains 1, biases 0.
 */
export function transformerParamSpecs(c: TransformerConfig): TransformerParamSpec[] {
  const { width: C, layers: L, grid: W } = c;
  const seq = sequenceLayout(c);
  const std = 0.02;
  const outStd = std / Math.sqrt(2 * L);
  const specs: TransformerParamSpec[] = [
    { name: 'embed.tokens', shape: [seq.tokenRows, C], init: { std } },
    { name: 'embed.text_pos', shape: [seq.prefixLen, C], init: { std } },
    { name: 'embed.rows', shape: [W, C], init: { std } },
    { name: 'embed.cols', shape: [W, C], init: { std } },
  ];
  for (let l = 0; l < L; l++) {
    const p = `blocks.${l}`;
    specs.push(
      { name: `${p}.ln1.w`, shape: [C], init: { fill: 1 } },
      { name: `${p}.ln1.b`, shape: [C], init: { fill: 0 } },
      { name: `${p}.attn.qkv.w`, shape: [C, 3 * C], init: { std } },
      { name: `${p}.attn.qkv.b`, shape: [3 * C], init: { fill: 0 } },
      { name: `${p}.attn.proj.w`, shape: [C, C], init: { std: outStd } },
      { name: `${p}.attn.proj.b`, shape: [C], init: { fill: 0 } },
      { name: `${p}.ln2.w`, shape: [C], init: { fill: 1 } },
      { name: `${p}.ln2.b`, shape: [C], init: { fill: 0 } },
      { name: `${p}.mlp.fc.w`, shape: [C, 4 * C], init: { std } },
      { name: `${p}.mlp.fc.b`, shape: [4 * C], init: { fill: 0 } },
      { name: `${p}.mlp.proj.w`, shape: [4 * C, C], init: { std: outStd } },
      { name: `${p}.mlp.proj.b`, shape: [C], init: { fill: 0 } },
    );
  }
  specs.push(
    { name: 'ln_f.w', shape: [C], init: { fill: 1 } },
    { name: 'ln_f.b', shape: [C], init: { fill: 0 } },
    { name: 'head.w', shape: [C, seq.headSize], init: { std } },
    { name: 'head.b', shape: [seq.headSize], init: { fill: 0 } },
  );
  return specs;
}

/** What a model of a config needs, in bytes (f32 throughout, as the CPU backend stores it). */
export interface TransformerMemory {
  parameterCount: number;
  /** The parameter arena. */
  parameterBytes: number;
  /** Parameters, gradients and the two AdamW moments (plus an EMA copy when training keeps one). */
  trainingStateBytes: number;
  trainingStateWithEmaBytes: number;
  /** Activations a training forward keeps for its backward, per sample of the batch (full sequence). */
  activationBytesPerSample: number;
  /** The sampler's key/value cache, per sample being generated. */
  kvCacheBytesPerSample: number;
}

export function parameterCount(c: TransformerConfig): number {
  let n = 0;
  for (const s of transformerParamSpecs(c)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

export function transformerMemory(c: TransformerConfig): TransformerMemory {
  const n = parameterCount(c);
  const { seqLen: S, headSize } = sequenceLayout(c);
  const C = c.width;
  // Per layer the backward keeps x, ln1 out, q, k, v, attention out, merged heads, x1, ln2 out (9·C per position),
  // the MLP's pre- and post-GELU (8·C), LayerNorm statistics and the attention log-sum-exp (4 + heads);
  // the head keeps its input and the logits with their gradient.
  const perLayer = 17 * C + 4 + c.heads;
  const activations = S * (c.layers * perLayer + 2 * C + 2 * headSize);
  return {
    parameterCount: n,
    parameterBytes: 4 * n,
    trainingStateBytes: 16 * n,
    trainingStateWithEmaBytes: 20 * n,
    activationBytesPerSample: 4 * activations,
    kvCacheBytesPerSample: 4 * 2 * c.layers * S * C,
  };
}
