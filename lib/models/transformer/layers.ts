/**
 * Forward and backward of the transformer's layers, written out (llm.c style): the embedding, a pre-LN block
 * (attention resblock, then a GELU MLP resblock) and the final LayerNorm + head. A training forward returns a cache
 * that its backward consumes (disposes); every parameter gradient is written straight into the gradient table.
 *
 * Activations are [B, S, C] (rows = B·S); attention runs on [B, H, S, D]. A column layer permutes q, k and v to the
 * column-major image layout around the attention op (DALLE-SPEC.md §2 (c)), so its keys are one contiguous block.
 */
import { Tensor } from '../../tensor.js';
import { disposeAll, type OpRunner, run1 } from '../../nn/runner.js';
import { type AttentionMaskKind, maskCode } from '../../ops/attention.js';
import type { TensorTable } from '../dvae/network.js';
import type { SequenceLayout, TransformerConfig } from './config.js';

/** What every layer function needs besides its tensors. */
export interface LayerContext {
  run: OpRunner;
  params: TensorTable;
  config: TransformerConfig;
  seq: SequenceLayout;
}

/** y [rows, out] = x [rows, in] · W + b. */
export async function linear(ctx: LayerContext, name: string, x: Tensor): Promise<Tensor> {
  using y = await run1(ctx.run, 'matmul_forward', [x, ctx.params.get(`${name}.w`)], { trans_a: 0, trans_b: 0 });
  return run1(ctx.run, 'bias_add_forward', [y, ctx.params.get(`${name}.b`)]);
}

/** dx of {@link linear}, with dW and db written into `grads`. */
export async function linearBackward(ctx: LayerContext, grads: TensorTable, name: string, x: Tensor, dy: Tensor, wantDx = true): Promise<Tensor | null> {
  await ctx.run('bias_add_backward', [dy], undefined, [grads.get(`${name}.b`)]);
  const w = ctx.params.get(`${name}.w`);
  const dx = Tensor.zeros(x.shape);
  try {
    await ctx.run('matmul_backward', [x, w, dy], { trans_a: 0, trans_b: 0 }, [dx, grads.get(`${name}.w`)]);
  } catch (err) {
    dx.dispose();
    throw err;
  }
  if (wantDx) return dx;
  dx.dispose();
  return null;
}

async function layerNorm(ctx: LayerContext, name: string, x: Tensor): Promise<{ y: Tensor; mean: Tensor; rstd: Tensor }> {
  const [y, mean, rstd] = await ctx.run('layernorm_forward', [x, ctx.params.get(`${name}.w`), ctx.params.get(`${name}.b`)]);
  return { y: y!, mean: mean!, rstd: rstd! };
}

async function layerNormBackward(ctx: LayerContext, grads: TensorTable, name: string, x: Tensor, mean: Tensor, rstd: Tensor, dy: Tensor): Promise<Tensor> {
  const dx = Tensor.zeros(x.shape);
  try {
    await ctx.run('layernorm_backward', [x, ctx.params.get(`${name}.w`), mean, rstd, dy], undefined, [dx, grads.get(`${name}.w`), grads.get(`${name}.b`)]);
  } catch (err) {
    dx.dispose();
    throw err;
  }
  return dx;
}

/** Embeddings of ids [B, n] at sequence positions pos.. pos + n − 1: [B, n, C]. */
export function embed(ctx: LayerContext, ids: Tensor, pos = 0): Promise<Tensor> {
  const p = ctx.params;
  return run1(ctx.run, 'dalle_embed_forward', [ids, p.get('embed.tokens'), p.get('embed.text_pos'), p.get('embed.rows'), p.get('embed.cols')], {
    pos,
    text_len: ctx.seq.prefixLen,
    grid: ctx.seq.grid,
  });
}

export async function embedBackward(ctx: LayerContext, grads: TensorTable, ids: Tensor, dy: Tensor): Promise<void> {
  await ctx.run('dalle_embed_backward', [ids, dy], { vocab: ctx.seq.tokenRows, pos: 0, text_len: ctx.seq.prefixLen, grid: ctx.seq.grid }, [
    grads.get('embed.tokens'),
    grads.get('embed.text_pos'),
    grads.get('embed.rows'),
    grads.get('embed.cols'),
  ]);
}

export interface BlockCache {
  x: Tensor;
  ln1: { y: Tensor; mean: Tensor; rstd: Tensor };
  /** In the layout the attention op saw (column-major image part for column layers). */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  att: Tensor;
  lse: Tensor;
  merged: Tensor;
  x1: Tensor;
  ln2: { y: Tensor; mean: Tensor; rstd: Tensor };
  fc: Tensor;
  act: Tensor;
}

function disposeBlockCache(c: Partial<BlockCache>): void {
  disposeAll(c.x, c.ln1?.y, c.ln1?.mean, c.ln1?.rstd, c.q, c.k, c.v, c.att, c.lse, c.merged, c.x1, c.ln2?.y, c.ln2?.mean, c.ln2?.rstd, c.fc, c.act);
}

/**
 * A block's attention pattern: one of DALL·E's masks, or `'bidirectional'` (every position sees every other: CLIP's
 * ViT image encoder). That one runs on the dense op with an all-ones mask: its sequences are short (64 patches), where
 * the dense product is the whole work anyway.
 */
export type BlockMask = AttentionMaskKind | 'bidirectional';

function attnAttrs(ctx: LayerContext, mask: AttentionMaskKind): Record<string, number> {
  return { mask: maskCode(mask), text_len: ctx.seq.prefixLen, grid: ctx.seq.grid };
}

function allVisible(S: number): Tensor {
  return Tensor.from(new Int32Array(S * S).fill(1), [S, S], { dtype: 'i32' });
}

async function attentionForward(ctx: LayerContext, mask: BlockMask, q: Tensor, k: Tensor, v: Tensor): Promise<Tensor[]> {
  if (mask !== 'bidirectional') return ctx.run('attention_forward', [q, k, v], attnAttrs(ctx, mask));
  using ones = allVisible(q.shape[2]!);
  return await ctx.run('attention_dense_forward', [q, k, v, ones]);
}

async function attentionBackward(ctx: LayerContext, mask: BlockMask, c: BlockCache, dAtt: Tensor): Promise<Tensor[]> {
  if (mask !== 'bidirectional') return ctx.run('attention_backward', [c.q, c.k, c.v, c.att, c.lse, dAtt], attnAttrs(ctx, mask));
  using ones = allVisible(c.q.shape[2]!);
  return await ctx.run('attention_dense_backward', [c.q, c.k, c.v, ones, c.att, c.lse, dAtt]);
}

/** Permutes [B, H, S, D]'s image part between raster and column-major order (its own inverse on a square grid). */
function transposeImage(ctx: LayerContext, t: Tensor, forward: boolean): Promise<Tensor> {
  const [B, H, S, D] = t.shape as [number, number, number, number];
  using flat = t.reshape([B * H, S, D]);
  return run1(ctx.run, forward ? 'image_transpose_forward' : 'image_transpose_backward', [flat], { text_len: ctx.seq.prefixLen, grid: ctx.seq.grid }).then((y) => {
    try {
      return y.reshape([B, H, S, D]);
    } finally {
      y.dispose();
    }
  });
}

/**
 * One block on x [B, S, C] (a full sequence from position 0). With `train`, returns the cache for
 * {@link blockBackward}, which then owns x; without, x stays the caller's.
 */
export async function blockForward(ctx: LayerContext, layer: number, mask: BlockMask, x: Tensor, train: boolean): Promise<{ y: Tensor; cache?: BlockCache }> {
  const { run, config } = ctx;
  const [B, S, C] = x.shape as [number, number, number];
  const p = `blocks.${layer}`;
  const c: Partial<BlockCache> = { x };
  const temps: Tensor[] = [];
  try {
    using x2 = x.reshape([B * S, C]);
    c.ln1 = await layerNorm(ctx, `${p}.ln1`, x2);
    const qkv = await linear(ctx, `${p}.attn.qkv`, c.ln1.y);
    temps.push(qkv);
    using qkv3 = qkv.reshape([B, S, 3 * C]);
    let [q, k, v] = await run('qkv_split_forward', [qkv3], { heads: config.heads });
    if (mask === 'column') {
      temps.push(q!, k!, v!);
      [q, k, v] = [await transposeImage(ctx, q!, true), await transposeImage(ctx, k!, true), await transposeImage(ctx, v!, true)];
    }
    Object.assign(c, { q, k, v });
    const [att, lse] = await attentionForward(ctx, mask, c.q!, c.k!, c.v!);
    Object.assign(c, { att, lse });
    let attRaster = c.att!;
    if (mask === 'column') {
      attRaster = await transposeImage(ctx, c.att!, false);
      temps.push(attRaster);
    }
    using merged3 = await run1(run, 'heads_merge_forward', [attRaster]);
    c.merged = merged3.reshape([B * S, C]);
    using proj = await linear(ctx, `${p}.attn.proj`, c.merged);
    c.x1 = await run1(run, 'residual_forward', [x2, proj], { scale: 1 });
    c.ln2 = await layerNorm(ctx, `${p}.ln2`, c.x1);
    c.fc = await linear(ctx, `${p}.mlp.fc`, c.ln2.y);
    c.act = await run1(run, 'gelu_forward', [c.fc]);
    using out = await linear(ctx, `${p}.mlp.proj`, c.act);
    using y2 = await run1(run, 'residual_forward', [c.x1, out], { scale: 1 });
    const y = y2.reshape([B, S, C]);
    if (train) return { y, cache: c as BlockCache };
    delete c.x;
    disposeBlockCache(c);
    return { y };
  } catch (err) {
    if (!train) delete c.x;
    disposeBlockCache(c);
    throw err;
  } finally {
    disposeAll(...temps);
  }
}

/** Backward of {@link blockForward}: returns dx [B, S, C]; consumes the cache. dy stays the caller's. */
export async function blockBackward(ctx: LayerContext, grads: TensorTable, layer: number, mask: BlockMask, cache: BlockCache, dy: Tensor): Promise<Tensor> {
  const { run, config } = ctx;
  const [B, S, C] = cache.x.shape as [number, number, number];
  const p = `blocks.${layer}`;
  const held: Tensor[] = [];
  const keep = <T extends Tensor | null>(t: T): T => {
    if (t) held.push(t);
    return t;
  };
  try {
    const dy2 = keep(dy.reshape([B * S, C]));
    // x2 = x1 + mlp(ln2(x1)): dx1 = dy + ln2ᵀ(mlpᵀ(dy)).
    const dAct = keep((await linearBackward(ctx, grads, `${p}.mlp.proj`, cache.act, dy2))!);
    const dFc = keep(await run1(run, 'gelu_backward', [cache.fc, dAct]));
    const dLn2 = keep((await linearBackward(ctx, grads, `${p}.mlp.fc`, cache.ln2.y, dFc))!);
    const dX1Branch = keep(await layerNormBackward(ctx, grads, `${p}.ln2`, cache.x1, cache.ln2.mean, cache.ln2.rstd, dLn2));
    const dX1 = keep(await run1(run, 'residual_forward', [dy2, dX1Branch], { scale: 1 }));
    // x1 = x + proj(attn(ln1(x))).
    const dMerged = keep((await linearBackward(ctx, grads, `${p}.attn.proj`, cache.merged, dX1))!);
    const dMerged3 = keep(dMerged.reshape([B, S, C]));
    let dAtt = keep(await run1(run, 'heads_merge_backward', [dMerged3], { heads: config.heads }));
    if (mask === 'column') dAtt = keep(await transposeImage(ctx, dAtt, true));
    let [dq, dk, dv] = await attentionBackward(ctx, mask, cache, dAtt);
    held.push(dq!, dk!, dv!);
    if (mask === 'column') {
      dq = keep(await transposeImage(ctx, dq!, false));
      dk = keep(await transposeImage(ctx, dk!, false));
      dv = keep(await transposeImage(ctx, dv!, false));
    }
    const dQkv3 = keep(await run1(run, 'qkv_split_backward', [dq!, dk!, dv!]));
    const dQkv = keep(dQkv3.reshape([B * S, 3 * C]));
    const dLn1 = keep((await linearBackward(ctx, grads, `${p}.attn.qkv`, cache.ln1.y, dQkv))!);
    using x2 = cache.x.reshape([B * S, C]);
    const dXBranch = keep(await layerNormBackward(ctx, grads, `${p}.ln1`, x2, cache.ln1.mean, cache.ln1.rstd, dLn1));
    using dx2 = await run1(run, 'residual_forward', [dX1, dXBranch], { scale: 1 });
    return dx2.reshape([B, S, C]);
  } finally {
    disposeAll(...held);
    disposeBlockCache(cache);
  }
}

export interface HeadCache {
  x: Tensor;
  ln: { y: Tensor; mean: Tensor; rstd: Tensor };
}

/** Logits [rows, headSize] (f32, as the paper keeps them) of x [rows, C]; with `train`, the cache (which owns x). */
export async function headForward(ctx: LayerContext, x: Tensor, train: boolean): Promise<{ logits: Tensor; cache?: HeadCache }> {
  const ln = await layerNorm(ctx, 'ln_f', x);
  try {
    const logits = await linear(ctx, 'head', ln.y);
    if (train) return { logits, cache: { x, ln } };
    disposeAll(ln.y, ln.mean, ln.rstd);
    return { logits };
  } catch (err) {
    disposeAll(ln.y, ln.mean, ln.rstd);
    throw err;
  }
}

/** dx [rows, C] of {@link headForward}; consumes the cache. */
export async function headBackward(ctx: LayerContext, grads: TensorTable, cache: HeadCache, dLogits: Tensor): Promise<Tensor> {
  try {
    using dLn = (await linearBackward(ctx, grads, 'head', cache.ln.y, dLogits))!;
    return await layerNormBackward(ctx, grads, 'ln_f', cache.x, cache.ln.mean, cache.ln.rstd, dLn);
  } finally {
    disposeAll(cache.x, cache.ln.y, cache.ln.mean, cache.ln.rstd);
  }
}

export function disposeTrainCaches(blocks: Array<BlockCache | undefined>, head?: HeadCache): void {
  for (const b of blocks) if (b) disposeBlockCache(b);
  if (head) disposeAll(head.x, head.ln.y, head.ln.mean, head.ln.rstd);
}
