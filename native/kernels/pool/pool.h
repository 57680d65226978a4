// The dVAE's resampling ops, NHWC like the convolutions (see conv/conv.h): the encoder's 2x2
// max-pool (stride 2) and the decoder's 2x nearest-neighbour upsample.
#pragma once
#include <cstdint>

namespace dalle {

// out [B,H/2,W/2,C] = max of each 2x2 window of inp [B,H,W,C]; H and W even. A NaN in a window
// wins (propagates), as in PyTorch.
void maxpool2x2_forward_cpu(float* out, const float* inp, int64_t B, int64_t H, int64_t W,
                            int64_t C);
// dinp [B,H,W,C]: each dout [B,H/2,W/2,C] value goes to the first maximal element of its window
// (row-major order within the window, the same element the forward picked), zeros elsewhere.
void maxpool2x2_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t B,
                             int64_t H, int64_t W, int64_t C);

// out [B,2H,2W,C]: out[b, 2i+di, 2j+dj, c] = inp [B,H,W,C][b, i, j, c].
void upsample2x_forward_cpu(float* out, const float* inp, int64_t B, int64_t H, int64_t W,
                            int64_t C);
// dinp [B,H,W,C] = sum of the four copies in dout [B,2H,2W,C].
void upsample2x_backward_cpu(float* dinp, const float* dout, int64_t B, int64_t H, int64_t W,
                             int64_t C);

}  // namespace dalle
