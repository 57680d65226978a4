/**
 * The dVAE's spatial ops. Layout is NHWC (channels last): images are [B, H, W, C] and conv weights
 * are [K, K, Cin, Cout] (HWIO), so a 1x1 conv is one matrix product and a KxK conv is im2col
 * times the weight viewed as [K*K*Cin, Cout].
 */
import type { Tensor } from '../tensor.js';
import { runOp, runOp1 } from './run.js';

/**
 * 2-D convolution, stride 1, "same" zero padding (K/2), K taken from w and one of 1, 3, 7.
 * x [B, H, W, Cin], w [K, K, Cin, Cout], b [Cout] -> y [B, H, W, Cout].
 */
export function conv2d(x: Tensor, w: Tensor, b: Tensor): Tensor {
  return runOp1('conv2d_forward', [x, w, b]);
}

/** Gradients of conv2d: dx [B, H, W, Cin], dw [K, K, Cin, Cout], db [Cout]. */
export interface Conv2dGrads {
  dx: Tensor;
  dw: Tensor;
  db: Tensor;
}

/** Backward of conv2d given x [B, H, W, Cin], w [K, K, Cin, Cout] and dy [B, H, W, Cout]. */
export function conv2dBackward(x: Tensor, w: Tensor, dy: Tensor): Conv2dGrads {
  const [dx, dw, db] = runOp('conv2d_backward', [x, w, dy]);
  return { dx: dx!, dw: dw!, db: db! };
}

/** Gradients of conv2d with respect to its parameters only: dw [K, K, Cin, Cout], db [Cout]. */
export interface Conv2dWeightGrads {
  dw: Tensor;
  db: Tensor;
}

/**
 * conv2dBackward without dx, for a layer whose input needs no gradient (a network's first conv,
 * over the images): the same dw and db, without the cost of the input gradient.
 */
export function conv2dBackwardWeights(x: Tensor, w: Tensor, dy: Tensor): Conv2dWeightGrads {
  const [dw, db] = runOp('conv2d_backward_weights', [x, w, dy]);
  return { dw: dw!, db: db! };
}

/** 2x2 max-pool, stride 2: x [B, H, W, C] with H and W even -> y [B, H/2, W/2, C]. */
export function maxPool2x2(x: Tensor): Tensor {
  return runOp1('maxpool2x2_forward', [x]);
}

/**
 * Backward of maxPool2x2: x [B, H, W, C], dy [B, H/2, W/2, C] -> dx [B, H, W, C]. Each window's
 * gradient goes to its first maximal element (row-major), recomputed from x.
 */
export function maxPool2x2Backward(x: Tensor, dy: Tensor): Tensor {
  return runOp1('maxpool2x2_backward', [x, dy]);
}

/** Nearest-neighbour 2x upsample: x [B, H, W, C] -> y [B, 2H, 2W, C]. */
export function upsample2x(x: Tensor): Tensor {
  return runOp1('upsample2x_forward', [x]);
}

/** Backward of upsample2x: dy [B, 2H, 2W, C] -> dx [B, H, W, C], the sum of each pixel's 4 copies. */
export function upsample2xBackward(dy: Tensor): Tensor {
  return runOp1('upsample2x_backward', [dy]);
}
