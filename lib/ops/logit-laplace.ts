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
