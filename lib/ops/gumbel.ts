/**
 * The dVAE relaxation: soft Gumbel-softmax (used in both passes, no straight-through) and the KL
 * to the uniform prior over codes, computed from the noise-free logits. Logits are [N, K]: N
 * cells (batch × grid, flattened) by K codes; reshape a contiguous [B, H, W, K] tensor first.
 */
import type { Tensor } from '../tensor.js';
import { runOp1 } from './run.js';

export interface GumbelOptions {
  /** Temperature, > 0 (the paper anneals 1 → 1/16). */
  tau: number;
  /** Philox key: an integer in [0, 2^53 - 1]. */
  seed: number;
  /** First stream word: an integer in [0, 2^53 - 1]; default 0. A call uses N·K words. */
  offset?: number;
}

/**
 * y [N, K] = softmax((logits + g) / tau) per row, g[n, k] = -log(-log(u)) with u the uniform of
 * stream word `offset + n·K + k` (see randomUniform): the same noise for the same seed and offset.
 */
export function gumbelSoftmax(logits: Tensor, options: GumbelOptions): Tensor {
  return runOp1('gumbel_softmax_forward', [logits], { tau: options.tau, seed: options.seed, offset: options.offset ?? 0 });
}

/** dL/dlogits [N, K] = (1/tau)·y·(dy - Σ_k y·dy), from the forward's output y [N, K] and dL/dy [N, K]. */
export function gumbelSoftmaxBackward(y: Tensor, dy: Tensor, tau: number): Tensor {
  return runOp1('gumbel_softmax_backward', [y, dy], { tau });
}

/** kl [1] = Σ_n KL(softmax(logits[n]) ‖ Uniform(K)) = Σ_n (Σ_k p log p + log K), logits [N, K]. */
export function klUniform(logits: Tensor): Tensor {
  return runOp1('kl_uniform_forward', [logits]);
}

/** dL/dlogits [N, K] = dkl · p · (log p - Σ_k p log p), given logits [N, K] and dL/dkl [1]. */
export function klUniformBackward(logits: Tensor, dkl: Tensor): Tensor {
  return runOp1('kl_uniform_backward', [logits, dkl]);
}
