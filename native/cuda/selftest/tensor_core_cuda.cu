// Self-test: the tensor-core path (mma.sync m16n8k16 bf16 -> f32, ldmatrix, cp.async) against a
// host matrix product. Fragments are loaded two ways: by hand, from the PTX ISA's layout tables,
// and by ldmatrix from shared memory filled by cp.async; both must give the host's product.
#include "selftest.h"

namespace dalle {
namespace cuda {
namespace selftest {

namespace {

uint16_t to_bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16_bits(uint16_t h) {
  uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

__device__ __forceinline__ uint32_t pack2(const uint16_t* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 16); }

// C[M,N] = A[M,K]·B[K,N] + C0 with A row-major, B given as B^T (N rows of K: "col" for mma), one
// warp per 16x8 tile of C, fragments gathered by hand from global memory.
__global__ void selftest_mma_kernel(float* c, const uint16_t* a, const uint16_t* bt, const float* c0, int m, int n, int k) {
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const int tiles_n = n / 8;
  const int tm = (static_cast<int>(blockIdx.x) * 4 + warp) / tiles_n, tn = (static_cast<int>(blockIdx.x) * 4 + warp) % tiles_n;
  if (tm * 16 >= m) return;  // whole warps only: the mma below is warp-wide
  const int g = lane / 4, t = lane % 4;
  const int r0 = tm * 16 + g, col = tn * 8 + 2 * t;
  float acc[4] = {c0[r0 * n + col], c0[r0 * n + col + 1], c0[(r0 + 8) * n + col], c0[(r0 + 8) * n + col + 1]};
  for (int k0 = 0; k0 < k; k0 += 16) {
    uint32_t fa[4] = {pack2(a + r0 * k + k0 + 2 * t), pack2(a + (r0 + 8) * k + k0 + 2 * t),
                      pack2(a + r0 * k + k0 + 2 * t + 8), pack2(a + (r0 + 8) * k + k0 + 2 * t + 8)};
    const uint16_t* brow = bt + (tn * 8 + g) * k + k0;
    uint32_t fb[2] = {pack2(brow + 2 * t), pack2(brow + 2 * t + 8)};
    float d[4];
    mma_m16n8k16_bf16(d, fa, fb, acc);
    for (int i = 0; i < 4; ++i) acc[i] = d[i];
  }
  c[r0 * n + col] = acc[0];
  c[r0 * n + col + 1] = acc[1];
  c[(r0 + 8) * n + col] = acc[2];
  c[(r0 + 8) * n + col + 1] = acc[3];
}

// One warp, one 16x8 tile with K = 16: A and B^T staged in shared memory by cp.async, fragments
// by ldmatrix (A: x4; B^T rows: x2), and B staged untransposed (K rows of N) read with .trans.
__global__ void selftest_ldmatrix_kernel(float* c, const uint16_t* a, const uint16_t* bt, const uint16_t* b) {
  __shared__ __align__(16) uint16_t sa[16 * 16];
  __shared__ __align__(16) uint16_t sbt[8 * 16];
  __shared__ __align__(16) uint16_t sb[16 * 8];
  const int lane = static_cast<int>(threadIdx.x);
  // 16-byte chunks: A has 32, B^T 16, B 16.
  cp_async_16(sa + 8 * lane, a + 8 * lane);
  if (lane < 16) cp_async_16(sbt + 8 * lane, bt + 8 * lane);
  else cp_async_16(sb + 8 * (lane - 16), b + 8 * (lane - 16));
  cp_async_commit();
  cp_async_wait<0>();
  __syncwarp();
  uint32_t fa[4], fb[2], fbt[2];
  // x4 over A: lanes 0-15 address rows 0-15 at column 0, lanes 16-31 the same rows at column 8.
  ldmatrix<4>(fa, sa + (lane % 16) * 16 + (lane / 16) * 8);
  // x2 over B^T (8 rows of 16): matrix 0 is columns 0-7, matrix 1 columns 8-15.
  ldmatrix<2>(fb, sbt + (lane % 8) * 16 + ((lane / 8) % 2) * 8);
  // B itself (16 rows of 8) transposed: matrix 0 is rows 0-7, matrix 1 rows 8-15.
  ldmatrix<2, true>(fbt, sb + (lane % 16) * 8);
  float zero[4] = {0, 0, 0, 0}, d[4], e[4];
  mma_m16n8k16_bf16(d, fa, fb, zero);
  mma_m16n8k16_bf16(e, fa, fbt, zero);
  const int g = lane / 4, t = lane % 4;
  c[g * 8 + 2 * t] = d[0];
  c[g * 8 + 2 * t + 1] = d[1];
  c[(g + 8) * 8 + 2 * t] = d[2];
  c[(g + 8) * 8 + 2 * t + 1] = d[3];
  c[128 + g * 8 + 2 * t] = e[0];
  c[128 + g * 8 + 2 * t + 1] = e[1];
  c[128 + (g + 8) * 8 + 2 * t] = e[2];
  c[128 + (g + 8) * 8 + 2 * t + 1] = e[3];
}

struct Problem {
  std::vector<uint16_t> a, bt, b;
  std::vector<float> c0, want;
};

Problem make_problem(int m, int n, int k, uint32_t seed) {
  Problem p;
  std::vector<float> fa = random_floats(size_t(m) * k, seed), fb = random_floats(size_t(k) * n, seed + 1);
  p.c0 = random_floats(size_t(m) * n, seed + 2);
  for (float x : fa) p.a.push_back(to_bf16_bits(x));
  p.bt.resize(size_t(n) * k);
  p.b.resize(size_t(k) * n);
  for (int kk = 0; kk < k; ++kk)
    for (int j = 0; j < n; ++j) {
      uint16_t h = to_bf16_bits(fb[size_t(kk) * n + j]);
      p.b[size_t(kk) * n + j] = h;
      p.bt[size_t(j) * k + kk] = h;
    }
  p.want.resize(size_t(m) * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = p.c0[size_t(i) * n + j];
      for (int kk = 0; kk < k; ++kk)
        acc += double(from_bf16_bits(p.a[size_t(i) * k + kk])) * from_bf16_bits(p.bt[size_t(j) * k + kk]);
      p.want[size_t(i) * n + j] = static_cast<float>(acc);
    }
  return p;
}

Status mma(std::string* info) {
  const int m = 48, n = 24, k = 64;  // 3 x 3 tiles, 4 chunks of K
  Problem p = make_problem(m, n, k, 21);
  DeviceArray<uint16_t> da, dbt;
  DeviceArray<float> dc0, dc;
  DALLE_RETURN_IF_ERROR(da.upload(p.a));
  DALLE_RETURN_IF_ERROR(dbt.upload(p.bt));
  DALLE_RETURN_IF_ERROR(dc0.upload(p.c0));
  DALLE_RETURN_IF_ERROR(dc.alloc(size_t(m) * n));
  // 9 tiles, 4 warps a block: 3 blocks, the last with one idle... whole warps return together.
  DALLE_RETURN_IF_ERROR(launch<selftest_mma_kernel>("selftest", dim3(3), dim3(128), 0, dc.get(), da.get(), dbt.get(),
                                                    dc0.get(), m, n, k));
  std::vector<float> got;
  DALLE_RETURN_IF_ERROR(dc.download(&got));
  // f32 accumulation of exact bf16 products over K = 64 (plus C): a few ulp of the sum's scale.
  return compare("mma.sync m16n8k16 bf16 (48x24x64) vs a host product", got, p.want, 2e-5, 1e-5, info);
}

Status ldmatrix_cp_async(std::string* info) {
  Problem p = make_problem(16, 8, 16, 33);
  std::fill(p.c0.begin(), p.c0.end(), 0.0f);
  for (size_t i = 0; i < p.want.size(); ++i) {
    double acc = 0;
    int r = static_cast<int>(i / 8), c = static_cast<int>(i % 8);
    for (int kk = 0; kk < 16; ++kk) acc += double(from_bf16_bits(p.a[r * 16 + kk])) * from_bf16_bits(p.bt[c * 16 + kk]);
    p.want[i] = static_cast<float>(acc);
  }
  std::vector<float> want2 = p.want;
  want2.insert(want2.end(), p.want.begin(), p.want.end());
  DeviceArray<uint16_t> da, dbt, db;
  DeviceArray<float> dc;
  DALLE_RETURN_IF_ERROR(da.upload(p.a));
  DALLE_RETURN_IF_ERROR(dbt.upload(p.bt));
  DALLE_RETURN_IF_ERROR(db.upload(p.b));
  DALLE_RETURN_IF_ERROR(dc.alloc(256));
  DALLE_RETURN_IF_ERROR(launch<selftest_ldmatrix_kernel>("selftest", dim3(1), dim3(32), 0, dc.get(), da.get(),
                                                         dbt.get(), db.get()));
  std::vector<float> got;
  DALLE_RETURN_IF_ERROR(dc.download(&got));
  return compare("cp.async + ldmatrix x4/x2/x2.trans + mma vs a host product", got, want2, 1e-5, 1e-5, info);
}

}  // namespace

DALLE_REGISTER_CUDA_SELFTEST(mma, SelfTestKind::kPrimitive, mma);
DALLE_REGISTER_CUDA_SELFTEST(ldmatrix_cp_async, SelfTestKind::kPrimitive, ldmatrix_cp_async);

}  // namespace selftest
}  // namespace cuda
}  // namespace dalle
