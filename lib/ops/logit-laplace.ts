/**
 * The dVAE's reconstruction loss: the negative log-likelihood of the logit-Laplace distribution
 * (DALL·E paper, App. A.3). Pixels must already lie in the open interval (0, 1) (the paper maps
 * x ↦ (1 − 2ε)·x + ε). The decoder's NHWC output carries 2C channels per pixel: the C locations μ
 * first, then the C log-scales ln b.
 */
import type { Tensor } from '../tensor.js';
import { runOp1 } from './run.js';

/**
 * nll [1] = Σ over every element of |logit(x) − μ|·exp(−ln b) + ln b + ln 2 + ln(x(1 − x)).
 *   x      f32 [..., C], every value in (0, 1) (else E_INVALID_ARGUMENT naming the flat index)
 *   params f32 [..., 2C], the same leading dims: params[..., c] = μ, params[..., C + c] = ln b
 * Each term is computed in double and the sum accumulated in double over fixed blocks, so the
 * result does not depend on the thread count.
 */
export function logitLaplace(x: Tensor, params: Tensor): Tensor {
  return runOp1('logit_laplace_forward', [x, params]);
}

/**
 * dL/dparams [..., 2C] given x [..., C], params [..., 2C] and dL/dnll [1]. With d = logit(x) − μ:
 *   dμ    = −dnll·sign(d)·exp(−ln b)      (sign(0) = 0)
 *   d ln b = dnll·(1 − |d|·exp(−ln b))
 * There is no gradient for x (the pixels are data).
 */
export function logitLaplaceBackward(x: Tensor, params: Tensor, dnll: Tensor): Tensor {
  return runOp1('logit_laplace_backward', [x, params, dnll]);
}

/**
 * loss [1] = Σ (σ(μ) − x)²: the squared error of the decoder's means, read as pixels, against the mapped pixels x.
 * Same inputs and checks as logitLaplace; the log-scales are ignored. For dVAE recipes that train the means with a
 * squared error first (lib/models/dvae/train.ts explains why).
 */
export function sigmoidMse(x: Tensor, params: Tensor): Tensor {
  return runOp1('sigmoid_mse_forward', [x, params]);
}

/** dL/dparams [..., 2C]: dμ = dloss·2(σ(μ) − x)·σ(μ)(1 − σ(μ)); the log-scale half is zero. */
export function sigmoidMseBackward(x: Tensor, params: Tensor, dloss: Tensor): Tensor {
  return runOp1('sigmoid_mse_backward', [x, params, dloss]);
}
