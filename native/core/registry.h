// The op registry: one table that drives dispatch (CUDA when a kernel is registered for it, else
// CPU), the functions the addon exports, and the parity tests. Each kernel file registers its
// forward and backward ops next to their code:
//
//   DALLE_REGISTER_OP(gelu_forward, {"gelu_forward", {"x"}, {"y"}, {}, infer_same, gelu_fwd_cpu});
//   DALLE_REGISTER_CUDA_KERNEL(gelu_forward, gelu_fwd_cuda);   // in gelu_cuda.cu
//
// Shape inference validates every argument and attribute and describes the outputs; the kernels
// may assume what inference checked. Nothing here allocates: the caller owns output memory.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "status.h"
#include "tensor.h"

namespace dalle {

// Numeric attributes by name (axis, eps, seed, mask kind...), as JS passes them.
class Attrs {
 public:
  void set(const std::string& name, double value);
  bool has(const std::string& name) const;
  double num(const std::string& name, double fallback) const;
  // Fails unless present and an integer in [lo, hi].
  Status get_int(const char* op, const std::string& name, int64_t lo, int64_t hi, int64_t* out) const;
  Status get_num(const char* op, const std::string& name, double* out) const;
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

struct OpArgs {
  const char* op = "";  // the op's name, set by prepare_op, for error messages
  std::vector<TensorView> in;
  std::vector<TensorView> out;
  Attrs attrs;
};

// Fills args.out with the output specs (dtype, device, shape; data left null).
using InferFn = Status (*)(OpArgs& args);
using KernelFn = Status (*)(OpArgs& args);

struct OpDef {
  std::string name;
  std::vector<std::string> inputs;   // argument names, for errors and docs
  std::vector<std::string> outputs;
  std::vector<int> mutated_inputs;   // inputs the kernel updates in place (AdamW, clipping)
  InferFn infer = nullptr;
  KernelFn cpu = nullptr;
  KernelFn cuda = nullptr;           // filled in from the CUDA kernel table at lookup
};

bool register_op(OpDef def);
bool register_cuda_kernel(const char* name, KernelFn fn);
// Null when no op has that name.
const OpDef* find_op(const std::string& name);
std::vector<std::string> op_names();

// When on, every f32 input is scanned and a NaN/Inf fails the call with kNonFinite.
void set_check_finite(bool on);
bool check_finite();

// Validates inputs (count, devices, emptiness, contiguity, finiteness) and runs shape
// inference, leaving output specs in args.out.
Status prepare_op(const OpDef& op, OpArgs& args);
// Runs the kernel for the inputs' device; outputs must match what prepare_op described.
Status execute_op(const OpDef& op, OpArgs& args);

}  // namespace dalle

#define DALLE_REGISTER_OP(id, ...) \
  static const bool dalle_op_registered_##id = ::dalle::register_op(::dalle::OpDef __VA_ARGS__)
#define DALLE_REGISTER_CUDA_KERNEL(id, fn) \
  static const bool dalle_cuda_registered_##id = ::dalle::register_cuda_kernel(#id, fn)
