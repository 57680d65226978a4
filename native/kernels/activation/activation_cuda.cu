// CUDA kernels for the ops in activation_cpu.cpp (which registers the ops, their shape inference
// and the CPU kernels: the truth these are checked against in test/cuda.test.ts).
//
// This file is the pattern for every CUDA op: kernels and launchers side by side, each launcher
// taking the OpArgs the CPU kernel takes (inputs already validated by the op's infer), enqueuing
// on cuda::stream() and returning the launch's Status; one DALLE_REGISTER_CUDA_KERNEL per op.
#include "../../cuda/device.h"
#include "../common.h"

namespace dalle {

namespace {

// Same constants and formula as the CPU version; tanhf is within 2 ulp of std::tanh, and no
// fast-math flag is set, so results agree to ~1e-6.
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCube = 0.044715f;

__global__ void gelu_forward_kernel(float* __restrict__ out, const float* __restrict__ inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + kGeluCube * x * x * x)));
  }
}

__global__ void gelu_backward_kernel(float* __restrict__ dinp, const float* __restrict__ inp,
                                     const float* __restrict__ dout, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float x = inp[i];
    float t = tanhf(kGeluScale * (x + kGeluCube * x * x * x));
    float sech2 = 1.0f - t * t;
    float grad = 0.5f * (1.0f + t) + 0.5f * x * sech2 * kGeluScale * (1.0f + 3.0f * kGeluCube * x * x);
    dinp[i] = grad * dout[i];
  }
}

__global__ void relu_forward_kernel(float* __restrict__ out, const float* __restrict__ inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;  // NaN -> 0, as on the CPU
}

__global__ void relu_backward_kernel(float* __restrict__ dinp, const float* __restrict__ inp,
                                     const float* __restrict__ dout, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}

Status gelu_fwd_cuda(OpArgs& a) {
  int64_t n = a.in[0].numel();
  return cuda::launch<gelu_forward_kernel>(a.op, cuda::grid_for(n), cuda::kBlock, 0, a.out[0].f32(), a.in[0].f32(), n);
}

Status gelu_bwd_cuda(OpArgs& a) {
  int64_t n = a.in[0].numel();
  return cuda::launch<gelu_backward_kernel>(a.op, cuda::grid_for(n), cuda::kBlock, 0, a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), n);
}

Status relu_fwd_cuda(OpArgs& a) {
  int64_t n = a.in[0].numel();
  return cuda::launch<relu_forward_kernel>(a.op, cuda::grid_for(n), cuda::kBlock, 0, a.out[0].f32(), a.in[0].f32(), n);
}

Status relu_bwd_cuda(OpArgs& a) {
  int64_t n = a.in[0].numel();
  return cuda::launch<relu_backward_kernel>(a.op, cuda::grid_for(n), cuda::kBlock, 0, a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), n);
}

}  // namespace

DALLE_REGISTER_CUDA_KERNEL(gelu_forward, gelu_fwd_cuda);
DALLE_REGISTER_CUDA_KERNEL(gelu_backward, gelu_bwd_cuda);
DALLE_REGISTER_CUDA_KERNEL(relu_forward, relu_fwd_cuda);
DALLE_REGISTER_CUDA_KERNEL(relu_backward, relu_bwd_cuda);

}  // namespace dalle
