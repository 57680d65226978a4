/** Matrix products (linear layers, attention scores): c = op(a)·op(b), op = transpose when asked. */
import type { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

export interface MatmulOptions {
  /** a is stored transposed: [K, M] (or [B, K, M]). */
  transA?: boolean;
  /** b is stored transposed: [N, K] (or [B, N, K]). */
  transB?: boolean;
}

const attrs = (opts: MatmulOptions = {}) => ({ trans_a: opts.transA ? 1 : 0, trans_b: opts.transB ? 1 : 0 });

/**
 * c = op(a)·op(b).
 * a: [M, K], or batched [B, M, K] ([K, M] / [B, K, M] with transA).
 * b: [K, N] ([N, K] with transB), shared by every batch when a is batched; or [B, K, N] / [B, N, K].
 * Returns c: [M, N], or [B, M, N] when a is batched.
 */
export function matmul(a: Tensor, b: Tensor, opts?: MatmulOptions): Tensor {
  return runOp1('matmul_forward', [a, b], attrs(opts));
}

/**
 * Gradients of c = op(a)·op(b) given dc (c's shape), with the same options as the forward call.
 * Returns da with a's shape and db with b's shape; a shared rank-2 b gets the sum over the batch.
 */
export function matmulBackward(a: Tensor, b: Tensor, dc: Tensor, opts?: MatmulOptions): { da: Tensor; db: Tensor } {
  const [da, db] = runOp('matmul_backward', [a, b, dc], attrs(opts));
  return { da: da!, db: db! };
}
