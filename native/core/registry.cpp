#include "registry.h"

#include "fp_mode.h"

#include <cmath>
#include <map>
#include <mutex>

namespace dalle {

namespace {

struct Tables {
  std::mutex mu;
  std::map<std::string, OpDef> ops;
  std::map<std::string, KernelFn> cuda;
};

Tables& tables() {
  static Tables* t = new Tables();  // leaked on purpose: used from static initialisers
  return *t;
}

bool g_check_finite = false;

Status check_finite_input(const OpDef& op, size_t i, const TensorView& t) {
  if (t.dtype != DType::kF32 || t.device != Device::kCPU) return Status::Ok();
  const float* p = t.f32();
  int64_t n = t.numel();
  for (int64_t k = 0; k < n; ++k)
    if (!std::isfinite(p[k]))
      return make_status(StatusCode::kNonFinite, "%s: %s has a non-finite value at flat index %lld",
                         op.name.c_str(), op.inputs[i].c_str(), static_cast<long long>(k));
  return Status::Ok();
}

}  // namespace

void Attrs::set(const std::string& name, double value) {
  for (auto& kv : items_)
    if (kv.first == name) {
      kv.second = value;
      return;
    }
  items_.emplace_back(name, value);
}

bool Attrs::has(const std::string& name) const {
  for (const auto& kv : items_)
    if (kv.first == name) return true;
  return false;
}

double Attrs::num(const std::string& name, double fallback) const {
  for (const auto& kv : items_)
    if (kv.first == name) return kv.second;
  return fallback;
}

Status Attrs::get_num(const char* op, const std::string& name, double* out) const {
  for (const auto& kv : items_)
    if (kv.first == name) {
      if (!std::isfinite(kv.second))
        return make_status(StatusCode::kInvalidArgument, "%s: attribute '%s' must be finite", op,
                           name.c_str());
      *out = kv.second;
      return Status::Ok();
    }
  return make_status(StatusCode::kInvalidArgument, "%s: missing attribute '%s'", op, name.c_str());
}

Status Attrs::get_int(const char* op, const std::string& name, int64_t lo, int64_t hi,
                      int64_t* out) const {
  double v = 0;
  DALLE_RETURN_IF_ERROR(get_num(op, name, &v));
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
    return make_status(StatusCode::kInvalidArgument,
                       "%s: attribute '%s' must be an integer in [%lld, %lld], got %g", op,
                       name.c_str(), static_cast<long long>(lo), static_cast<long long>(hi), v);
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

bool register_op(OpDef def) {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  std::string name = def.name;
  return t.ops.emplace(name, std::move(def)).second;
}

bool register_cuda_kernel(const char* name, KernelFn fn) {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  return t.cuda.emplace(name, fn).second;
}

const OpDef* find_op(const std::string& name) {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  auto it = t.ops.find(name);
  if (it == t.ops.end()) return nullptr;
  if (!it->second.cuda) {
    auto c = t.cuda.find(name);
    if (c != t.cuda.end()) it->second.cuda = c->second;
  }
  return &it->second;
}

std::vector<std::string> op_names() {
  Tables& t = tables();
  std::lock_guard<std::mutex> lock(t.mu);
  std::vector<std::string> names;
  for (const auto& kv : t.ops) names.push_back(kv.first);
  return names;
}

void set_check_finite(bool on) { g_check_finite = on; }
bool check_finite() { return g_check_finite; }

Status prepare_op(const OpDef& op, OpArgs& args) {
  const char* name = op.name.c_str();
  args.op = name;
  if (args.in.size() != op.inputs.size())
    return make_status(StatusCode::kInvalidArgument, "%s: expected %zu inputs, got %zu", name,
                       op.inputs.size(), args.in.size());
  for (size_t i = 0; i < args.in.size(); ++i) {
    const TensorView& t = args.in[i];
    const char* arg = op.inputs[i].c_str();
    if (!t.data && t.numel() > 0)
      return make_status(StatusCode::kDisposed, "%s: %s has no memory (disposed?)", name, arg);
    if (t.numel() == 0)
      return make_status(StatusCode::kEmptyTensor, "%s: %s is empty (shape %s)", name, arg,
                         t.shape_string().c_str());
    if (!t.is_contiguous())
      return make_status(StatusCode::kInvalidArgument, "%s: %s must be contiguous", name, arg);
    if (t.device != args.in[0].device)
      return make_status(StatusCode::kDeviceMismatch, "%s: %s is on %s but %s is on %s", name, arg,
                         device_name(t.device), op.inputs[0].c_str(),
                         device_name(args.in[0].device));
    if (g_check_finite) DALLE_RETURN_IF_ERROR(check_finite_input(op, i, t));
  }
  args.out.clear();
  DALLE_RETURN_IF_ERROR(op.infer(args));
  if (args.out.size() != op.outputs.size())
    return make_status(StatusCode::kInternal, "%s: inference described %zu outputs, expected %zu",
                       name, args.out.size(), op.outputs.size());
  for (TensorView& o : args.out) o.device = args.in.empty() ? Device::kCPU : args.in[0].device;
  return Status::Ok();
}

Status execute_op(const OpDef& op, OpArgs& args) {
  Device device = args.in.empty() ? Device::kCPU : args.in[0].device;
  if (device == Device::kCPU) {
    FlushDenormals flush;
    return op.cpu(args);
  }
  if (!op.cuda)
    return make_status(StatusCode::kUnsupported, "%s has no CUDA kernel in this build",
                       op.name.c_str());
  return op.cuda(args);
}

}  // namespace dalle
