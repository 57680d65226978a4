// cuBLASLt through dlopen and our own declarations (no cublasLt.h on the build machine).
//
// Where the ABI facts come from: enum values and struct layouts are those of NVIDIA's cublasLt.h
// and cublas_api.h as mirrored in NVIDIA's own generated bindings, NVIDIA/nvmath-python
// nvmath/bindings/cycublasLt.pxd (generated "across versions from 11.0.3 to 12.8.0") and
// nvmath/bindings/cycublas.pxd; cudaDataType_t comes from the toolkit's library_types.h. These
// values have not changed since cuBLASLt 11.0 (new values are only ever appended), which is what
// lets one binary use libcublasLt.so.12 or .so.13. Each block below names its enum.
#include "cublaslt.h"

#include <dlfcn.h>
#include <library_types.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "device.h"

namespace dalle {
namespace cuda {

namespace {

// ---- our declarations -----------------------------------------------------------------------

using LtStatus = int;  // cublasStatus_t (a C enum: int-sized on every ABI we target)
using LtHandle = void*;
using LtMatmulDesc = void*;
using LtLayout = void*;
using LtPreference = void*;

// cublasLtMatmulAlgo_t: "uint64_t data[8]" (cycublasLt.pxd).
struct LtAlgo {
  uint64_t data[8];
};
// cublasLtMatmulHeuristicResult_t: algo, size_t workspaceSize, cublasStatus_t state,
// float wavesCount, int reserved[4] (cycublasLt.pxd).
struct LtHeuristicResult {
  LtAlgo algo;
  size_t workspaceSize;
  LtStatus state;
  float wavesCount;
  int reserved[4];
};
static_assert(sizeof(LtAlgo) == 64, "cublasLtMatmulAlgo_t is 64 bytes");
static_assert(sizeof(LtHeuristicResult) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");

// cublasStatus_t (cycublas.pxd).
constexpr LtStatus kLtSuccess = 0;
// cublasOperation_t (cycublas.pxd): CUBLAS_OP_N = 0, CUBLAS_OP_T = 1.
constexpr int32_t kOpN = 0, kOpT = 1;
// cublasComputeType_t (cycublas.pxd): CUBLAS_COMPUTE_32F = 68 (plain f32, no TF32 shortcut).
constexpr int kCompute32F = 68;
// cublasLtMatmulDescAttributes_t (cycublasLt.pxd): TRANSA = 3, TRANSB = 4; values are int32_t.
constexpr int kDescTransA = 3, kDescTransB = 4;
// cublasLtMatrixLayoutAttribute_t (cycublasLt.pxd): BATCH_COUNT = 5 (int32_t),
// STRIDED_BATCH_OFFSET = 6 (int64_t, in elements).
constexpr int kLayoutBatchCount = 5, kLayoutStridedBatchOffset = 6;
// cublasLtMatmulPreferenceAttributes_t (cycublasLt.pxd): MAX_WORKSPACE_BYTES = 1 (uint64_t),
// MIN_ALIGNMENT_{A,B,C,D}_BYTES = 5, 6, 7, 8 (uint32_t; default 256, so smaller alignments must
// be declared or the heuristic may pick an algorithm that faults on them).
constexpr int kPrefMaxWorkspace = 1, kPrefAlignA = 5, kPrefAlignB = 6, kPrefAlignC = 7, kPrefAlignD = 8;

// Entry points, with the signatures of cublasLt.h (cycublasLt.pxd's "Functions" section).
struct LtApi {
  LtStatus (*Create)(LtHandle*);
  LtStatus (*Destroy)(LtHandle);
  LtStatus (*MatmulDescCreate)(LtMatmulDesc*, int compute_type, cudaDataType_t scale_type);
  LtStatus (*MatmulDescDestroy)(LtMatmulDesc);
  LtStatus (*MatmulDescSetAttribute)(LtMatmulDesc, int attr, const void* buf, size_t size);
  LtStatus (*MatrixLayoutCreate)(LtLayout*, cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld);
  LtStatus (*MatrixLayoutDestroy)(LtLayout);
  LtStatus (*MatrixLayoutSetAttribute)(LtLayout, int attr, const void* buf, size_t size);
  LtStatus (*MatmulPreferenceCreate)(LtPreference*);
  LtStatus (*MatmulPreferenceDestroy)(LtPreference);
  LtStatus (*MatmulPreferenceSetAttribute)(LtPreference, int attr, const void* buf, size_t size);
  LtStatus (*MatmulAlgoGetHeuristic)(LtHandle, LtMatmulDesc, LtLayout a, LtLayout b, LtLayout c,
                                     LtLayout d, LtPreference, int requested,
                                     LtHeuristicResult* results, int* returned);
  LtStatus (*Matmul)(LtHandle, LtMatmulDesc, const void* alpha, const void* A, LtLayout a_desc,
                     const void* B, LtLayout b_desc, const void* beta, const void* C,
                     LtLayout c_desc, void* D, LtLayout d_desc, const LtAlgo* algo,
                     void* workspace, size_t workspace_bytes, cudaStream_t stream);
};

const char* lt_status_name(LtStatus s) {
  switch (s) {  // cublasStatus_t values (cycublas.pxd)
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cublasStatus_t";
  }
}

Status lt_check(LtStatus s, const char* what) {
  if (s == kLtSuccess) return Status::Ok();
  StatusCode code = s == 3 ? StatusCode::kOutOfMemory : s == 15 ? StatusCode::kUnsupported
                                                                  : StatusCode::kCudaError;
  return make_status(code, "cuBLASLt %s: %s (%d)", what, lt_status_name(s), s);
}

// ---- loading --------------------------------------------------------------------------------

struct Library {
  bool ok = false;
  std::string error;
  LtApi api{};
};

template <typename Fn>
bool resolve(void* lib, const char* name, Fn* out, std::string* missing) {
  void* sym = dlsym(lib, name);
  if (!sym) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return false;
  }
  *out = reinterpret_cast<Fn>(sym);
  return true;
}

const Library& library() {
  static const Library lib = [] {
    Library r;
#if DALLE_CUDA_EMULATED
    // cuBLASLt would be handed host pointers as device memory.
    r.error = "the emulated CUDA device has no cuBLASLt";
    return r;
#endif
    std::string tried;
    void* h = nullptr;
    // DALLE_CUBLASLT names a file to use; then the sonames (the loader's search path, which
    // includes a PyTorch wheel's only if LD_LIBRARY_PATH says so); then the toolkit's usual home.
    const char* env = std::getenv("DALLE_CUBLASLT");
    const char* names[] = {env && *env ? env : nullptr,
                           "libcublasLt.so.13",
                           "libcublasLt.so.12",
                           "libcublasLt.so",
                           "/usr/local/cuda/lib64/libcublasLt.so.13",
                           "/usr/local/cuda/lib64/libcublasLt.so.12"};
    for (const char* name : names) {
      if (!name) continue;
      h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (h) break;
      const char* why = dlerror();
      tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
    }
    if (!h) {
      r.error = "libcublasLt could not be opened (" + tried + ")";
      return r;
    }
    std::string missing;
    LtApi& a = r.api;
    bool all = true;
    all &= resolve(h, "cublasLtCreate", &a.Create, &missing);
    all &= resolve(h, "cublasLtDestroy", &a.Destroy, &missing);
    all &= resolve(h, "cublasLtMatmulDescCreate", &a.MatmulDescCreate, &missing);
    all &= resolve(h, "cublasLtMatmulDescDestroy", &a.MatmulDescDestroy, &missing);
    all &= resolve(h, "cublasLtMatmulDescSetAttribute", &a.MatmulDescSetAttribute, &missing);
    all &= resolve(h, "cublasLtMatrixLayoutCreate", &a.MatrixLayoutCreate, &missing);
    all &= resolve(h, "cublasLtMatrixLayoutDestroy", &a.MatrixLayoutDestroy, &missing);
    all &= resolve(h, "cublasLtMatrixLayoutSetAttribute", &a.MatrixLayoutSetAttribute, &missing);
    all &= resolve(h, "cublasLtMatmulPreferenceCreate", &a.MatmulPreferenceCreate, &missing);
    all &= resolve(h, "cublasLtMatmulPreferenceDestroy", &a.MatmulPreferenceDestroy, &missing);
    all &= resolve(h, "cublasLtMatmulPreferenceSetAttribute", &a.MatmulPreferenceSetAttribute, &missing);
    all &= resolve(h, "cublasLtMatmulAlgoGetHeuristic", &a.MatmulAlgoGetHeuristic, &missing);
    all &= resolve(h, "cublasLtMatmul", &a.Matmul, &missing);
    if (!all) {
      r.error = "libcublasLt lacks " + missing;
      dlclose(h);
      return r;
    }
    r.ok = true;  // the handle stays open for the life of the process
    return r;
  }();
  return lib;
}

// ---- state: handle, workspace, chosen algorithms --------------------------------------------

// 32 MiB is what NVIDIA recommends for Hopper; less only narrows the algorithm choice.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct AlgoKey {
  bool ta, tb;
  int64_t batch, M, N, K, lda, ldb, ldc, sa, sb, sc;
  int ab, c;
  uint32_t align_a, align_b, align_c;
  bool beta_zero;
  auto tie() const {
    return std::tie(ta, tb, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, ab, c, align_a, align_b, align_c,
                    beta_zero);
  }
  bool operator<(const AlgoKey& o) const { return tie() < o.tie(); }
};

struct State {
  std::mutex mu;
  LtHandle handle = nullptr;
  bool workspace_tried = false;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<AlgoKey, LtAlgo> algos;
};

State& state() {
  static State* s = new State();  // leaked: may be used until process exit
  return *s;
}

// Descriptors freed on every path out of a call.
struct Descs {
  const LtApi& api;
  LtMatmulDesc op = nullptr;
  LtLayout a = nullptr, b = nullptr, c = nullptr;
  LtPreference pref = nullptr;
  explicit Descs(const LtApi& x) : api(x) {}
  ~Descs() {
    if (pref) api.MatmulPreferenceDestroy(pref);
    if (c) api.MatrixLayoutDestroy(c);
    if (b) api.MatrixLayoutDestroy(b);
    if (a) api.MatrixLayoutDestroy(a);
    if (op) api.MatmulDescDestroy(op);
  }
};

cudaDataType_t cuda_type(DType t) { return t == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F; }

// Largest power of two (up to 256) dividing the address and, when batched, the batch stride.
uint32_t alignment(const void* p, int64_t stride_elems, int64_t batch, size_t elem) {
  uint64_t bits = reinterpret_cast<uintptr_t>(p) | 256u;
  if (batch > 1) bits |= static_cast<uint64_t>(stride_elems) * elem;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

Status make_layout(const LtApi& api, LtLayout* out, DType t, int64_t rows, int64_t cols, int64_t ld,
                   int64_t batch, int64_t stride) {
  DALLE_RETURN_IF_ERROR(lt_check(api.MatrixLayoutCreate(out, cuda_type(t), static_cast<uint64_t>(rows),
                                                        static_cast<uint64_t>(cols), ld),
                                 "MatrixLayoutCreate"));
  if (batch > 1) {
    int32_t count = static_cast<int32_t>(batch);
    DALLE_RETURN_IF_ERROR(lt_check(api.MatrixLayoutSetAttribute(*out, kLayoutBatchCount, &count, sizeof count),
                                   "MatrixLayoutSetAttribute(BATCH_COUNT)"));
    DALLE_RETURN_IF_ERROR(
        lt_check(api.MatrixLayoutSetAttribute(*out, kLayoutStridedBatchOffset, &stride, sizeof stride),
                 "MatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)"));
  }
  return Status::Ok();
}

Status validate(const LtGemm& g) {
  const char* op = "cublaslt_gemm";
  if (g.M < 0 || g.N < 0 || g.K < 1 || g.batch < 1 || g.batch > INT32_MAX)
    return make_status(StatusCode::kInvalidArgument, "%s: bad sizes batch=%lld M=%lld N=%lld K=%lld", op,
                       static_cast<long long>(g.batch), static_cast<long long>(g.M),
                       static_cast<long long>(g.N), static_cast<long long>(g.K));
  int64_t a_cols = g.trans_a ? g.M : g.K, b_cols = g.trans_b ? g.K : g.N;
  if (g.lda < a_cols || g.ldb < b_cols || g.ldc < g.N)
    return make_status(StatusCode::kInvalidArgument, "%s: leading dimensions too small (lda=%lld ldb=%lld ldc=%lld)",
                       op, static_cast<long long>(g.lda), static_cast<long long>(g.ldb),
                       static_cast<long long>(g.ldc));
  if (g.ab_type == DType::kI32 || g.c_type == DType::kI32 ||
      (g.ab_type == DType::kF32 && g.c_type != DType::kF32))
    return make_status(StatusCode::kDTypeMismatch, "%s: operands must be f32 (C f32) or bf16 (C f32 or bf16)", op);
  if (!g.A || !g.B || !g.C) return make_status(StatusCode::kInvalidArgument, "%s: null pointer", op);
  return Status::Ok();
}

}  // namespace

bool cublaslt_available() { return library().ok; }
std::string cublaslt_error() { return library().error; }

Status cublaslt_gemm(const LtGemm& g) {
  const Library& lib = library();
  if (!lib.ok) return make_status(StatusCode::kUnsupported, "cuBLASLt unavailable: %s", lib.error.c_str());
  DALLE_RETURN_IF_ERROR(validate(g));
  if (g.M == 0 || g.N == 0) return Status::Ok();
  const LtApi& api = lib.api;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);

  if (!st.handle) DALLE_RETURN_IF_ERROR(lt_check(api.Create(&st.handle), "Create"));
  if (!st.workspace_tried) {
    // Never freed. Without it cuBLASLt still works, with fewer algorithms to choose from.
    st.workspace_tried = true;
    if (cudaMalloc(&st.workspace, kWorkspaceBytes) == cudaSuccess) {
      st.workspace_bytes = kWorkspaceBytes;
    } else {
      (void)cudaGetLastError();
      st.workspace = nullptr;
    }
  }
  size_t ws_bytes = st.workspace_bytes;

  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix with
  // row stride ld is, unchanged in memory, its column-major transpose with the same ld. So
  // cuBLASLt (column-major) gets B as its first operand and A as its second, each described as
  // stored: B is [K,N] row-major = N×K column-major (or [N,K] = K×N with op T), and so on.
  size_t ab_elem = dtype_size(g.ab_type), c_elem = dtype_size(g.c_type);
  Descs d(api);
  DALLE_RETURN_IF_ERROR(make_layout(api, &d.a, g.ab_type, g.trans_b ? g.K : g.N, g.trans_b ? g.N : g.K, g.ldb,
                                    g.batch, g.stride_b));
  DALLE_RETURN_IF_ERROR(make_layout(api, &d.b, g.ab_type, g.trans_a ? g.M : g.K, g.trans_a ? g.K : g.M, g.lda,
                                    g.batch, g.stride_a));
  DALLE_RETURN_IF_ERROR(make_layout(api, &d.c, g.c_type, g.N, g.M, g.ldc, g.batch, g.stride_c));
  DALLE_RETURN_IF_ERROR(lt_check(api.MatmulDescCreate(&d.op, kCompute32F, CUDA_R_32F), "MatmulDescCreate"));
  int32_t op_a = g.trans_b ? kOpT : kOpN, op_b = g.trans_a ? kOpT : kOpN;
  DALLE_RETURN_IF_ERROR(lt_check(api.MatmulDescSetAttribute(d.op, kDescTransA, &op_a, sizeof op_a),
                                 "MatmulDescSetAttribute(TRANSA)"));
  DALLE_RETURN_IF_ERROR(lt_check(api.MatmulDescSetAttribute(d.op, kDescTransB, &op_b, sizeof op_b),
                                 "MatmulDescSetAttribute(TRANSB)"));

  AlgoKey key{g.trans_a, g.trans_b, g.batch, g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.stride_a, g.stride_b,
              g.stride_c, static_cast<int>(g.ab_type), static_cast<int>(g.c_type),
              alignment(g.A, g.stride_a, g.batch, ab_elem), alignment(g.B, g.stride_b, g.batch, ab_elem),
              alignment(g.C, g.stride_c, g.batch, c_elem), g.beta == 0.0f};
  auto found = st.algos.find(key);
  if (found == st.algos.end()) {
    DALLE_RETURN_IF_ERROR(lt_check(api.MatmulPreferenceCreate(&d.pref), "MatmulPreferenceCreate"));
    uint64_t ws = ws_bytes;
    DALLE_RETURN_IF_ERROR(lt_check(api.MatmulPreferenceSetAttribute(d.pref, kPrefMaxWorkspace, &ws, sizeof ws),
                                   "MatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)"));
    // Our operand order is swapped (see above): cuBLASLt's A is our B.
    const std::pair<int, uint32_t> aligns[] = {
        {kPrefAlignA, key.align_b}, {kPrefAlignB, key.align_a}, {kPrefAlignC, key.align_c}, {kPrefAlignD, key.align_c}};
    for (const auto& [attr, value] : aligns)
      DALLE_RETURN_IF_ERROR(lt_check(api.MatmulPreferenceSetAttribute(d.pref, attr, &value, sizeof value),
                                     "MatmulPreferenceSetAttribute(MIN_ALIGNMENT)"));
    LtHeuristicResult result;
    std::memset(&result, 0, sizeof result);
    int returned = 0;
    DALLE_RETURN_IF_ERROR(lt_check(
        api.MatmulAlgoGetHeuristic(st.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &returned),
        "MatmulAlgoGetHeuristic"));
    if (returned < 1 || result.state != kLtSuccess)
      return make_status(StatusCode::kUnsupported,
                         "cuBLASLt has no algorithm for %s%s batch=%lld M=%lld N=%lld K=%lld (%s -> %s)",
                         g.trans_a ? "Aᵀ" : "A", g.trans_b ? "Bᵀ" : "B", static_cast<long long>(g.batch),
                         static_cast<long long>(g.M), static_cast<long long>(g.N), static_cast<long long>(g.K),
                         dtype_name(g.ab_type), dtype_name(g.c_type));
    found = st.algos.emplace(key, result.algo).first;
  }

  // beta = 0: cuBLASLt does not read C then, so C's old contents (NaN included) are ignored.
  float alpha = g.alpha, beta = g.beta;
  return lt_check(api.Matmul(st.handle, d.op, &alpha, g.B, d.a, g.A, d.b, &beta, g.C, d.c, g.C, d.c,
                             &found->second, st.workspace, ws_bytes, stream()),
                  "Matmul");
}

Status cublaslt_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
  LtGemm g;
  g.trans_a = trans_a, g.trans_b = trans_b, g.M = M, g.N = N, g.K = K, g.alpha = alpha, g.beta = beta;
  g.A = A, g.lda = lda, g.B = B, g.ldb = ldb, g.C = C, g.ldc = ldc;
  return cublaslt_gemm(g);
}

Status cublaslt_gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
                          void* C, DType c_type, int64_t ldc) {
  LtGemm g;
  g.trans_a = trans_a, g.trans_b = trans_b, g.M = M, g.N = N, g.K = K, g.alpha = alpha, g.beta = beta;
  g.A = A, g.lda = lda, g.B = B, g.ldb = ldb, g.C = C, g.ldc = ldc;
  g.ab_type = DType::kBF16, g.c_type = c_type;
  return cublaslt_gemm(g);
}

}  // namespace cuda
}  // namespace dalle
