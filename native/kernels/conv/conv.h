// 2-D convolutions for the dVAE: K x K (K in {1, 3, 7}), stride 1, "same" zero padding of K/2.
//
// Why NHWC (channels last) with HWIO weights: a pixel's channels are contiguous, so a 1x1 conv is
// exactly one sgemm ([B*H*W, Cin] x [Cin, Cout]) with no data movement, and a K x K conv is
// im2col ([B*H*W, K*K*Cin], each (kh, kw) tap one memcpy of Cin floats) times the weight viewed as
// [K*K*Cin, Cout]. The same layout is what tensor cores want on the GPU (channels-last).
//
// im2col scratch is bounded by working through the pixels in chunks of at most a few thousand
// rows, so a 256x256 image with 512 channels never needs a multi-GB buffer. Callers allocate the
// scratch (conv2d_*_scratch_floats says how much) so allocation failure can be reported.
#pragma once
#include <cstdint>

namespace dalle {

// Floats of scratch conv2d_forward_cpu needs (0 when K == 1: no im2col).
int64_t conv2d_forward_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t K);

// out [B,H,W,Cout] = conv(inp [B,H,W,Cin], weight [K,K,Cin,Cout]) + bias [Cout].
// bias may be null (no bias).
void conv2d_forward_cpu(float* out, const float* inp, const float* weight, const float* bias,
                        float* scratch, int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t Cout,
                        int64_t K);

// Floats of scratch conv2d_backward_weights_cpu needs.
int64_t conv2d_backward_weights_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin,
                                               int64_t K);

// The parameter half of conv2d_backward_cpu: dweight [K,K,Cin,Cout] and dbias [Cout] (overwritten)
// from inp [B,H,W,Cin] and dout [B,H,W,Cout]. conv2d_backward_cpu calls it, then adds dinp.
void conv2d_backward_weights_cpu(float* dweight, float* dbias, const float* inp, const float* dout,
                                 float* scratch, int64_t B, int64_t H, int64_t W, int64_t Cin,
                                 int64_t Cout, int64_t K);

// Floats of scratch conv2d_backward_cpu needs.
int64_t conv2d_backward_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t Cout,
                                       int64_t K);

// Given inp [B,H,W,Cin], weight [K,K,Cin,Cout] and dout [B,H,W,Cout], writes (overwrites)
// dinp [B,H,W,Cin], dweight [K,K,Cin,Cout] and dbias [Cout].
void conv2d_backward_cpu(float* dinp, float* dweight, float* dbias, const float* inp,
                         const float* weight, const float* dout, float* scratch, int64_t B,
                         int64_t H, int64_t W, int64_t Cin, int64_t Cout, int64_t K);

}  // namespace dalle
