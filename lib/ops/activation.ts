/** Pointwise activations: GELU (transformer MLP) and ReLU (dVAE blocks). */
import type { Tensor } from '../tensor.js';
import { runOp1 } from './run.js';

/** GELU, tanh approximation. */
export function gelu(x: Tensor): Tensor {
  return runOp1('gelu_forward', [x]);
}
/** dL/dx given x and dL/dy. */
export function geluBackward(x: Tensor, dy: Tensor): Tensor {
  return runOp1('gelu_backward', [x, dy]);
}
export function relu(x: Tensor): Tensor {
  return runOp1('relu_forward', [x]);
}
export function reluBackward(x: Tensor, dy: Tensor): Tensor {
  return runOp1('relu_backward', [x, dy]);
}
