/** Row-wise normalisations over the last dimension: LayerNorm and softmax. */
import type { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

export interface LayerNormOptions {
  /** Added to the variance; in (0, 1), default 1e-5. */
  eps?: number;
}

/** LayerNorm outputs: y like x, and the per-row statistics the backward pass needs. */
export interface LayerNormResult {
  /** (x − mean)·rstd·weight + bias, shaped like x [..., C]. */
  y: Tensor;
  /** [rows], rows = x.size / C (all leading dims flattened). */
  mean: Tensor;
  /** 1/√(var + eps), biased variance, [rows]. */
  rstd: Tensor;
}

/**
 * LayerNorm over the last dim: x [..., C], weight [C], bias [C]. With C = 1 every row equals its
 * own mean, so y = bias (and only dbias gets a nonzero gradient).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, options: LayerNormOptions = {}): LayerNormResult {
  const [y, mean, rstd] = runOp('layernorm_forward', [x, weight, bias], { eps: options.eps });
  return { y: y!, mean: mean!, rstd: rstd! };
}

/** LayerNorm gradients: dx [..., C], dweight [C], dbias [C]. */
export interface LayerNormGrads {
  dx: Tensor;
  dweight: Tensor;
  dbias: Tensor;
}

/** Backward of layerNorm from x, weight, the saved mean and rstd [rows], and dy [..., C]. */
export function layerNormBackward(x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor, dy: Tensor): LayerNormGrads {
  const [dx, dweight, dbias] = runOp('layernorm_backward', [x, weight, mean, rstd, dy]);
  return { dx: dx!, dweight: dweight!, dbias: dbias! };
}

/**
 * Softmax over the last dim, max-subtracted so huge logits stay finite: x [..., C] -> y [..., C].
 * −Infinity entries get probability 0; a row that is −Infinity throughout gives all zeros.
 */
export function softmax(x: Tensor): Tensor {
  return runOp1('softmax_forward', [x]);
}

/** Backward of softmax from its output y and dy (same shape): dx = y·(dy − Σ y·dy) per row. */
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor {
  return runOp1('softmax_backward', [y, dy]);
}
