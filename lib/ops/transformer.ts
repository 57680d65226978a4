/**
 * The DALL·E transformer's glue ops and its KV-cache sampler (CPU kernels for now; CUDA tensors
 * are refused with E_UNSUPPORTED until the CUDA kernels land).
 *
 * Layouts: the fused QKV projection x is f32 [B, S, 3C] with its last dim [q | k | v], each
 * C = H·D laid out [head 0 | head 1 | ...]; per-head tensors are [B, H, S, D]. The sequence is
 * textLen text positions (BOS included) then grid² image cells in raster order (see
 * ./attention.ts for the masks).
 */
import type { Tensor } from '../tensor.js';
import { maskCode, type AttentionMaskKind } from './attention.js';
import { runOp, runOp1 } from './run.js';

/** q, k, v, each f32 [B, H, S, D]. */
export interface QkvHeads {
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

/**
 * Splits x [B, S, 3C] into heads: q[b,h,s,d] = x[b,s,h·D+d], k from C on, v from 2C on; each
 * [B, H, S, D] with D = C / H. The last dim must be a multiple of 3·heads (E_INVALID_ARGUMENT).
 */
export function qkvSplit(x: Tensor, opts: { heads: number }): QkvHeads {
  const [q, k, v] = runOp('qkv_split_forward', [x], { heads: opts.heads });
  return { q: q!, k: k!, v: v! };
}

/** The backward of {@link qkvSplit} (its inverse permutation): dq, dk, dv [B, H, S, D] -> dx [B, S, 3·H·D]. */
export function qkvSplitBackward(dq: Tensor, dk: Tensor, dv: Tensor): Tensor {
  return runOp1('qkv_split_backward', [dq, dk, dv]);
}

/** Merges heads: x [B, H, S, D] -> y [B, S, H·D], y[b,s,h·D+d] = x[b,h,s,d]. */
export function headsMerge(x: Tensor): Tensor {
  return runOp1('heads_merge_forward', [x]);
}

/** The backward of {@link headsMerge}: dy [B, S, C] -> dx [B, H, S, C / H] (C a multiple of heads). */
export function headsMergeBackward(dy: Tensor, opts: { heads: number }): Tensor {
  return runOp1('heads_merge_backward', [dy], { heads: opts.heads });
}

/**
 * Writes x [B, H, n, D] into cache [B, H, Smax, D] IN PLACE at positions pos .. pos+n−1
 * (cache[b,h,pos+t,:] = x[b,h,t,:]); other rows are untouched. pos + n > Smax, or x sharing
 * memory with the cache, throws E_INVALID_ARGUMENT.
 */
export function kvCacheWrite(cache: Tensor, x: Tensor, opts: { pos: number }): void {
  runOp('kv_cache_write', [cache, x], { pos: opts.pos });
}

export interface AttentionCachedOptions {
  /** Sequence position of the first query (q[:, :, t] sits at pos + t); pos + n <= Smax. */
  pos: number;
  mask: AttentionMaskKind;
  /** Text positions at the start of the sequence (BOS included), >= 1. */
  textLen: number;
  /** Image grid side W; the last query must lie within textLen + W² positions. */
  grid: number;
  /** Score scale; default 1/√D. */
  scale?: number;
}

/**
 * Attention of n new queries q [B, H, n, D] against the cache kcache, vcache [B, H, Smax, D]
 * (already holding positions 0 .. pos+n−1, the new ones included) -> out [B, H, n, D]. Query t
 * (position p = pos + t) sees the keys at positions <= p its mask allows, all under one softmax,
 * with the image in RASTER order for every mask: for `'column'` the image keys j with
 * (i − j) mod grid = 0 (the mask of `attentionMask(..., { raster: true })`), which is what a
 * column layer computes in the transposed layout. Cache rows at positions >= pos + n are never
 * read. Same numerics as {@link attention}'s forward.
 */
export function attentionCached(q: Tensor, kcache: Tensor, vcache: Tensor, opts: AttentionCachedOptions): Tensor {
  return runOp1('attention_cached_forward', [q, kcache, vcache], {
    pos: opts.pos,
    mask: maskCode(opts.mask),
    text_len: opts.textLen,
    grid: opts.grid,
    scale: opts.scale,
  });
}

export interface DalleEmbedOptions {
  /** Sequence position of ids[:, 0]; default 0. */
  pos?: number;
  /** Text positions (rows of textPos), >= 1. */
  textLen: number;
  /** Image grid side W (rows of `rows` and `cols`). */
  grid: number;
}

/**
 * The DALL·E input embedding: ids i32 [B, n] (ids[:, t] at sequence position p = pos + t),
 * tokens [V, C], textPos [textLen, C], rows and cols [grid, C] -> out [B, n, C] with
 * out[b,t] = tokens[id] + textPos[p] for text positions, tokens[id] + rows[⌊i/W⌋] + cols[i mod W]
 * for image cell i = p − textLen. An id outside [0, V), or a position past the grid, throws
 * E_INVALID_ARGUMENT naming it.
 */
export function dalleEmbed(ids: Tensor, tokens: Tensor, textPos: Tensor, rows: Tensor, cols: Tensor, opts: DalleEmbedOptions): Tensor {
  return runOp1('dalle_embed_forward', [ids, tokens, textPos, rows, cols], {
    pos: opts.pos ?? 0,
    text_len: opts.textLen,
    grid: opts.grid,
  });
}

export interface DalleEmbedBackwardOptions extends DalleEmbedOptions {
  /** V, the rows of the token table. */
  vocab: number;
}

/** Gradients of {@link dalleEmbed}'s four tables. */
export interface DalleEmbedGrads {
  /** [V, C] */
  dtokens: Tensor;
  /** [textLen, C] */
  dtextPos: Tensor;
  /** [grid, C] */
  drows: Tensor;
  /** [grid, C] */
  dcols: Tensor;
}

/**
 * The backward of {@link dalleEmbed} from ids [B, n] and dy [B, n, C]: each table row is the sum
 * of dy over the positions that used it (rows nobody used are 0). Sums run in a fixed order, so
 * the result is the same on every run and thread count.
 */
export function dalleEmbedBackward(ids: Tensor, dy: Tensor, opts: DalleEmbedBackwardOptions): DalleEmbedGrads {
  const [dtokens, dtextPos, drows, dcols] = runOp('dalle_embed_backward', [ids, dy], {
    vocab: opts.vocab,
    pos: opts.pos ?? 0,
    text_len: opts.textLen,
    grid: opts.grid,
  });
  return { dtokens: dtokens!, dtextPos: dtextPos!, drows: drows!, dcols: dcols! };
}
