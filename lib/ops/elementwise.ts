/** Bias add and scaled residual add: the glue around linear layers and resblocks. */
import type { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

/** y = x + b, b broadcast over the rows: x [..., C], b [C] -> y [..., C]. */
export function biasAdd(x: Tensor, b: Tensor): Tensor {
  return runOp1('bias_add_forward', [x, b]);
}

/** db [C] = Σ over rows of dy [..., C]. dL/dx is dy itself, so it is not returned. */
export function biasAddBackward(dy: Tensor): Tensor {
  return runOp1('bias_add_backward', [dy]);
}

export interface ResidualOptions {
  /** Multiplies the branch r; default 1. Any finite value. */
  scale?: number;
}

/** y = x + scale·r; x, r and y share one shape. */
export function residual(x: Tensor, r: Tensor, options: ResidualOptions = {}): Tensor {
  return runOp1('residual_forward', [x, r], { scale: options.scale });
}

/** Gradients of residual: dx = dy and dr = scale·dy, both new tensors shaped like dy. */
export interface ResidualGrads {
  dx: Tensor;
  dr: Tensor;
}

/** Backward of residual given dy; pass the same scale as the forward call. */
export function residualBackward(dy: Tensor, options: ResidualOptions = {}): ResidualGrads {
  const [dx, dr] = runOp('residual_backward', [dy], { scale: options.scale });
  return { dx: dx!, dr: dr! };
}
