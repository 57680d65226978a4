// Vectorisable f32 exp and log, for loops that GCC auto-vectorises: no calls, no branches (every
// special case is a select), no float -> int conversions (the exponent is read from the bits of
// x·log2(e) + 1.5·2^23, the integer is never converted). Written as plain per-element functions and
// loops over arrays, so one source gives SSE2, AVX2 and AVX-512 code from the translation unit it
// is compiled in.
//
// Include this only from kernel files compiled once per SIMD level (foo.cpp, foo_avx2.cpp,
// foo_avx512.cpp, dispatched on active_simd_level()). Everything here has internal linkage (an
// unnamed namespace), so each translation unit keeps its own copy: an inline function with external
// linkage would let the linker pick the AVX-512 copy for the portable code.
//
// Accuracy, measured against double std::exp / std::log (every 7th f32 of each range, and every
// f32 of [-1, 0] for exp and of [0.5, 2] and [2^-24, 1) for log; the same at each SIMD level):
//   exp_f32: |rel err| <= 8.5e-8 (1.42·2^-24) for x in [-87.33, 88.72] (normal results);
//            subnormal results (x down to -103.97) within 0.75·2^-149; below that 0, above +inf.
//   log_f32: |rel err| <= 8.1e-8 (1.36·2^-24) for every positive normal x; subnormals are scaled
//            up first; log(±0) = -inf, log(x < 0) = NaN, log(+inf) = +inf.
// (Kernels run with flush-to-zero and denormals-are-zero, core/fp_mode.h, so in an op subnormal
// inputs read as 0 and subnormal results come out as 0.) The gumbel tests check the ops built on
// these against double-precision JS references at every SIMD level.
// NaN in, NaN out, for both.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace dalle {
namespace fastmath {
namespace {

inline uint32_t f2u(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float u2f(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// c ? a : b, as a bit blend. Both a and b are always computed: a plain ?: lets GCC sink the work of
// the arm it does not pick into a branch, which (under the default -ftrapping-math) then cannot be
// if-converted back, and the loop no longer vectorises.
inline float select(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return u2f((f2u(a) & m) | (f2u(b) & ~m));
}

// ln 2 split so that k·kLn2Hi is exact for |k| < 2^8: 16 significant bits, then the rest.
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.428606765330187e-06f;
constexpr float kLog2e = 1.44269502162933349609375f;
// Adding 1.5·2^23 rounds a float of magnitude < 2^22 to an integer, which lands in the low
// mantissa bits: bits(t + kRound) - bits(kRound) is that integer.
constexpr float kRound = 12582912.0f;

// e^x. x is reduced to k·ln2 + r, |r| <= ln2/2, then e^r = 1 + r + r²·q(r) with q a degree-4
// polynomial fitted (weighted least squares to minimax, max relative error 3.1e-9 in exact
// arithmetic), and 2^k applied as two factors 2^(k>>1)·2^(k - (k>>1)), each a normal float, so that
// results down into the subnormals (k = -150) and up to FLT_MAX (k = 128) come out right.
inline float exp_f32(float x) {
  constexpr float kHi = 88.72283935546875f;   // > ln(FLT_MAX): above, +inf
  constexpr float kLo = -103.97208404541016f;  // < ln(2^-150): below, 0
  // No clamping: outside [kLo, kHi] the integer arithmetic below wraps harmlessly and the
  // result is replaced at the end. (Clamping with the same comparisons lets GCC thread jumps
  // through the constant cases, and the loop no longer vectorises.)
  const float t = x * kLog2e + kRound;
  const float kf = t - kRound;
  const int32_t k = static_cast<int32_t>(f2u(t) - f2u(kRound));
  float r = x - kf * kLn2Hi;
  r = r - kf * kLn2Lo;
  float q = 1.381453942e-03f;
  q = q * r + 8.368745446e-03f;
  q = q * r + 4.166838899e-02f;
  q = q * r + 1.666652113e-01f;
  q = q * r + 4.999999404e-01f;
  const float p = 1.0f + (r + r * r * q);
  const int32_t k1 = k >> 1, k2 = k - k1;  // both in [-75, 64] for x in [kLo, kHi]
  const float s1 = u2f(static_cast<uint32_t>(k1 + 127) << 23);
  const float s2 = u2f(static_cast<uint32_t>(k2 + 127) << 23);
  float y = p * s1 * s2;
  y = select(x > kHi, std::numeric_limits<float>::infinity(), y);
  y = select(x < kLo, 0.0f, y);
  return y;
}

// ln x. x = 2^e · m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), and
// ln(1 + f) = 2·atanh(s), s = f/(2 + f), |s| <= 0.1716: 2s + s·R(s²) with R the atanh series
// 2z/3 + 2z²/5 + 2z³/7 + 2z⁴/9 (truncation error below 2e-9). Evaluated as
// f - (f²/2 - s·(f²/2 + R)), so that f, which is exact, carries the leading term.
inline float log_f32(float x) {
  constexpr float kMinNormal = 1.17549435082228750797e-38f;
  // Branch-free throughout (see select).
  const bool sub = x < kMinNormal;  // subnormals (and 0, negatives: replaced below)
  const uint32_t b = f2u(select(sub, x * 8388608.0f, x));
  const int32_t e0 = static_cast<int32_t>((b >> 23) & 0xffu) - 127 - 23 * static_cast<int32_t>(sub);
  const float m0 = u2f((b & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const bool big = m0 > 1.41421353816986083984375f;
  const float m = select(big, m0 * 0.5f, m0);
  const int32_t e = e0 + static_cast<int32_t>(big);
  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  float R = 0.2222222222f;  // 2/9
  R = R * z + 0.2857142857f;  // 2/7
  R = R * z + 0.4f;           // 2/5
  R = R * z + 0.6666666667f;  // 2/3
  R = R * z;
  const float hfsq = 0.5f * f * f;
  const float ef = static_cast<float>(e);
  float y = ef * kLn2Hi - ((hfsq - (s * (hfsq + R) + ef * kLn2Lo)) - f);
  y = select(x == std::numeric_limits<float>::infinity(), x, y);
  y = select(x < 0.0f, std::numeric_limits<float>::quiet_NaN(), y);
  y = select(x == 0.0f, -std::numeric_limits<float>::infinity(), y);
  y = select(x != x, x, y);  // NaN
  return y;
}

// e^(a - b) without the rounding error of the f32 difference (up to half an ulp of a - b, which
// e^ turns into a relative error of |a - b|·2^-24: 5e-6 for a difference of 80). The error of
// a - b comes from TwoSum, exactly, and e^(s + err) = e^s·(1 + err) to first order.
inline float exp_sub_f32(float a, float b) {
  const float s = a - b;
  const float bv = s - a;  // ≈ -b
  const float av = s - bv;
  const float err = (a - av) - (b + bv);
  const float e = exp_f32(s);
  const float y = e + e * err;
  return select(y == y, y, e);  // a = -inf (err NaN) or e = inf (inf·err): e itself
}

// ---- loops over arrays ----------------------------------------------------------------------

// Lanes of the partial sums below: fixed, so a sum is the same at every SIMD level.
constexpr int kLanes = 16;

inline void exp_array(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i]);
}

inline void log_array(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = log_f32(x[i]);
}

// max over x[0, n), n >= 1. NaN is skipped unless it is x[0] (as std::max in a serial loop would
// not promise either way; callers propagate NaN through their sums).
inline float max_array(const float* x, int64_t n) {
  float lanes[kLanes];
  for (int j = 0; j < kLanes; ++j) lanes[j] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
  float m = lanes[0];
  for (int j = 1; j < kLanes; ++j) m = lanes[j] > m ? lanes[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Σ x in double, kLanes partial sums then the tail, in a fixed order.
inline double sum_f64(const float* x, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(x[i + j]);
  double s = 0.0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

// Σ a·b in double (each product exact in double).
inline double dot_f64(const float* a, const float* b, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(a[i + j]) * static_cast<double>(b[i + j]);
  double s = 0.0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

}  // namespace
}  // namespace fastmath
}  // namespace dalle
