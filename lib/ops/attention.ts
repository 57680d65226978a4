/**
 * DALL·E attention (DALLE-SPEC.md §2): one joint softmax per query over its allowed keys.
 *
 * Sequence layout: S = textLen + nImg positions; the first textLen are text (BOS counted among
 * them), then image cell i = grid·r + c in raster order, nImg <= grid². Text queries see earlier
 * text keys; every image query sees all text keys plus, for `mask`:
 * - `'causal'`: every earlier image key (dense causal attention);
 * - `'row'`: image keys i−grid … i;
 * - `'column'`: the keys above in its column — passed in the TRANSPOSED layout (the image part
 *   column-major, see {@link imageToColumnMajor}), where they are the block [grid·⌊i/grid⌋, i];
 * - `'conv'`: i−Δ for Δ ∈ {0..h} ∪ {grid·dr + dc : 1 ≤ dr ≤ h, |dc| ≤ h}, wrapping on flat
 *   indices, h = {@link convHalfWidth}(grid).
 *
 * q, k, v, out and their gradients are f32 [B, Hh, S, D]; lse is f32 [B, Hh, S].
 */
import { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

export type AttentionMaskKind = 'causal' | 'row' | 'column' | 'conv';

const MASK_CODES: Record<AttentionMaskKind, number> = { causal: 0, row: 1, column: 2, conv: 3 };

export interface AttentionPattern {
  mask: AttentionMaskKind;
  /** Text positions at the start of the sequence (BOS included). */
  textLen: number;
  /** Image grid side W. */
  grid: number;
}

export interface AttentionOptions extends AttentionPattern {
  /** Score scale; default 1/√D. */
  scale?: number;
}

/** Forward results: `out` [B, Hh, S, D] and `lse` [B, Hh, S], the log-sum-exp kept for backward. */
export interface AttentionResult {
  out: Tensor;
  lse: Tensor;
}

/** Gradients w.r.t. q, k and v, each [B, Hh, S, D]. */
export interface AttentionGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/** Conv-mask half-width: max(1, ⌊5·W/32 + 1/2⌋), i.e. 5 (11×11) at W = 32, 3 at 16, 1 at 8. */
export function convHalfWidth(grid: number): number {
  return Math.max(1, Math.floor((5 * grid + 16) / 32));
}

/** The native code of a mask kind (the `mask` attribute of every attention op). */
export function maskCode(kind: AttentionMaskKind): number {
  const code = MASK_CODES[kind];
  // Unknown strings go to native as -1 so the error comes from the same validation as any other.
  return code === undefined ? -1 : code;
}

function patternAttrs(o: AttentionOptions): Record<string, number | undefined> {
  return { mask: maskCode(o.mask), text_len: o.textLen, grid: o.grid, scale: o.scale };
}

/** Sparse attention: each query touches only its allowed keys. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): AttentionResult {
  const [out, lse] = runOp('attention_forward', [q, k, v], patternAttrs(opts));
  return { out: out!, lse: lse! };
}

/** Gradients of {@link attention} given its inputs, its outputs and dL/dout. */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  opts: AttentionOptions,
): AttentionGrads {
  const [dq, dk, dv] = runOp('attention_backward', [q, k, v, out, lse, dout], patternAttrs(opts));
  return { dq: dq!, dk: dk!, dv: dv! };
}

/**
 * Dense reference: the full S×S scores under an explicit mask, i32 [S, S], nonzero = allowed.
 * A query with no allowed key gets out = 0 and lse = −∞.
 */
export function attentionDense(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, opts: { scale?: number } = {}): AttentionResult {
  const [out, lse] = runOp('attention_dense_forward', [q, k, v, mask], { scale: opts.scale });
  return { out: out!, lse: lse! };
}

/** Gradients of {@link attentionDense}. */
export function attentionDenseBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  opts: { scale?: number } = {},
): AttentionGrads {
  const [dq, dk, dv] = runOp('attention_dense_backward', [q, k, v, mask, out, lse, dout], { scale: opts.scale });
  return { dq: dq!, dk: dk!, dv: dv! };
}

/**
 * The mask the sparse kernels apply, materialised: i32 [S, S], 1 where query row may see key
 * column. Same layout as the kernels (so `'column'` is block-diagonal: the transposed layout).
 * With `raster: true`, the mask in raster order instead, as the KV-cache decoder
 * (`attentionCached`, ops/transformer) applies it: identical except for `'column'`, where an
 * image query sees the image keys j with (i − j) mod grid = 0.
 */
export function attentionMask(
  seqLen: number,
  pattern: AttentionPattern,
  opts: { device?: 'cpu' | 'cuda'; raster?: boolean } = {},
): Tensor {
  using like = Tensor.zeros([seqLen], { dtype: 'i32', device: opts.device ?? 'cpu' });
  return runOp1('attention_mask', [like], {
    mask: maskCode(pattern.mask),
    text_len: pattern.textLen,
    grid: pattern.grid,
    raster: opts.raster === undefined ? undefined : opts.raster ? 1 : 0,
  });
}

/**
 * x [B, S, C] with its image part (S − textLen = grid² or grid² − 1 cells) permuted from raster
 * to column-major order, for column layers; text rows unchanged.
 */
export function imageToColumnMajor(x: Tensor, layout: { textLen: number; grid: number }): Tensor {
  return runOp1('image_transpose_forward', [x], { text_len: layout.textLen, grid: layout.grid });
}

/** The inverse of {@link imageToColumnMajor}; also the backward of it (and vice versa). */
export function imageFromColumnMajor(x: Tensor, layout: { textLen: number; grid: number }): Tensor {
  return runOp1('image_transpose_backward', [x], { text_len: layout.textLen, grid: layout.grid });
}
