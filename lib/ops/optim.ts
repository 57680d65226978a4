/**
 * The optimizer step and gradient-norm clipping, in place. Parameters, gradients and moments each
 * live in one arena, so a single flat tensor can carry the whole model.
 */
import type { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

export interface AdamWOptions {
  /** Learning rate, >= 0. */
  lr: number;
  /** 1-based step count, for bias correction. */
  step: number;
  /** Default 0.9 (in [0, 1)). */
  beta1?: number;
  /** Default 0.999 (in [0, 1)). */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay, default 1e-2 (PyTorch's default). */
  weightDecay?: number;
}

/**
 * One AdamW step, updating `param`, `m` and `v` in place (all f32, the same shape as `grad`; four
 * distinct buffers). Exactly torch.optim.AdamW: p -= lr·wd·p; m = β1·m + (1-β1)·g;
 * v = β2·v + (1-β2)·g²; p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
 */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, options: AdamWOptions): void {
  runOp('adamw_step', [param, grad, m, v], {
    lr: options.lr,
    step: options.step,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    eps: options.eps ?? 1e-8,
    weight_decay: options.weightDecay ?? 1e-2,
  });
}

/** ||x||₂ as a [1] tensor, accumulated in double (any shape of f32). */
export function gradNorm(x: Tensor): Tensor {
  return runOp1('grad_norm', [x]);
}

/**
 * Scales `x` in place by maxNorm/(norm + 1e-6) when its L2 norm exceeds `maxNorm` (> 0), and
 * returns the norm before clipping as a [1] tensor. A non-finite norm leaves `x` untouched, so the
 * caller can detect the overflow and skip the step.
 */
export function clipGradNorm(x: Tensor, maxNorm: number): Tensor {
  return runOp1('clip_grad_norm', [x], { max_norm: maxNorm });
}

/**
 * The parameters' exponential moving average, in place: ema = decay·ema + (1 − decay)·param,
 * elementwise in double and rounded once to f32 (so decay 1 leaves `ema` as it is and decay 0
 * copies `param`). Both f32, the same shape, distinct buffers; decay in [0, 1] (else
 * E_INVALID_ARGUMENT). With arenas, one call over `arena.flat` updates the whole model.
 */
export function emaUpdate(ema: Tensor, param: Tensor, decay: number): void {
  runOp('ema_update', [ema, param], { decay });
}
