// The dVAE reconstruction loss: the logit-Laplace distribution (DALL·E paper, App. A.3). Pixels are
// mapped into the open interval (0, 1) first; the decoder's NHWC output holds, per pixel, C
// locations μ followed by C log-scales ln b.
#pragma once
#include <cstdint>

#include "../../core/status.h"

namespace dalle {

// Flat index of the first x[i] not in the open interval (0, 1) (NaN included), or -1 when none.
// Scanned in fixed blocks, so the answer does not depend on the thread count.
int64_t logit_laplace_first_bad(const float* x, int64_t n);

// nll [1], x [rows, C], params [rows, 2C] (params[r, c] = μ, params[r, C + c] = ln b).
//   nll = Σ_{r,c} |logit(x) − μ|·exp(−ln b) + ln b + ln 2 + ln(x(1 − x))
// the negative log-likelihood, each term in double, summed in double over fixed blocks. x outside
// (0, 1) is an E_INVALID_ARGUMENT naming the flat index (op names the op in the message).
Status logit_laplace_forward_cpu(const char* op, float* nll, const float* x, const float* params, int64_t rows,
                                 int64_t C);
// dparams [rows, 2C], x [rows, C], params [rows, 2C], dnll [1]. With d = logit(x) − μ, s = exp(−ln b):
//   dμ = −dnll·sign(d)·s   (sign(0) = 0),   d ln b = dnll·(1 − |d|·s)
Status logit_laplace_backward_cpu(const char* op, float* dparams, const float* x, const float* params,
                                  const float* dnll, int64_t rows, int64_t C);

// The squared error of the decoder's means against the mapped pixels, for recipes that train with it
// (see lib/models/dvae/train.ts): loss [1] = Σ_{r,c} (σ(μ) − x)², in double over fixed blocks; the same
// x check. Backward: dμ = dloss·2(σ(μ) − x)·σ(μ)(1 − σ(μ)), d ln b = 0.
Status sigmoid_mse_forward_cpu(const char* op, float* loss, const float* x, const float* params, int64_t rows,
                               int64_t C);
Status sigmoid_mse_backward_cpu(const char* op, float* dparams, const float* x, const float* params,
                                const float* dloss, int64_t rows, int64_t C);

}  // namespace dalle
