#include "matmul.h"

#include "../common.h"
#include "gemm.h"

namespace dalle {

// Row strides: a is [M, K] or [K, M]; b is [K, N] or [N, K]; c and dc are [M, N].
void matmul_forward_cpu(float* c, const float* a, const float* b, int64_t batch, int64_t M,
                        int64_t N, int64_t K, bool trans_a, bool trans_b, bool shared_b) {
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  if (shared_b && !trans_a) {  // the batch folds into M: one large product
    sgemm(false, trans_b, batch * M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
    return;
  }
  sgemm_batched(trans_a, trans_b, batch, M, N, K, 1.0f, a, lda, M * K, b, ldb,
                shared_b ? 0 : K * N, 0.0f, c, N, M * N);
}

void matmul_backward_cpu(float* da, float* db, const float* a, const float* b, const float* dc,
                         int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b,
                         bool shared_b) {
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  const int64_t sa = M * K, sb = shared_b ? 0 : K * N, sc = M * N;

  // d op(a) = dc·op(b)ᵀ [M, K]; stored transposed (op(b)·dcᵀ, [K, M]) when trans_a.
  if (!trans_a && (shared_b || batch == 1))
    sgemm(false, !trans_b, batch * M, K, N, 1.0f, dc, N, b, ldb, 0.0f, da, K);
  else if (!trans_a)
    sgemm_batched(false, !trans_b, batch, M, K, N, 1.0f, dc, N, sc, b, ldb, sb, 0.0f, da, K, sa);
  else
    sgemm_batched(trans_b, true, batch, K, M, N, 1.0f, b, ldb, sb, dc, N, sc, 0.0f, da, M, sa);

  // d op(b) = op(a)ᵀ·dc [K, N]; stored transposed (dcᵀ·op(a), [N, K]) when trans_b.
  if (!shared_b || batch == 1) {
    if (!trans_b)
      sgemm_batched(!trans_a, false, batch, K, N, M, 1.0f, a, lda, sa, dc, N, sc, 0.0f, db, N, sb);
    else
      sgemm_batched(true, trans_a, batch, N, K, M, 1.0f, dc, N, sc, a, lda, sa, 0.0f, db, K, sb);
    return;
  }
  // Shared b: the sum over the batch. Without trans_a, a and dc are [batch·M, ·] matrices and
  // the sum is one product over batch·M; otherwise accumulate batch by batch (beta = 1).
  if (!trans_a) {
    if (!trans_b)
      sgemm(true, false, K, N, batch * M, 1.0f, a, K, dc, N, 0.0f, db, N);
    else
      sgemm(true, false, N, K, batch * M, 1.0f, dc, N, a, K, 0.0f, db, K);
    return;
  }
  for (int64_t i = 0; i < batch; ++i) {
    const float beta = i == 0 ? 0.0f : 1.0f;
    if (!trans_b)
      sgemm(false, false, K, N, M, 1.0f, a + i * sa, M, dc + i * sc, N, beta, db, N);
    else
      sgemm(true, true, N, K, M, 1.0f, dc + i * sc, N, a + i * sa, M, beta, db, K);
  }
}

namespace {

struct MatmulDims {
  int64_t batch, M, N, K;
  bool trans_a, trans_b, shared_b;
};

Status get_flag(const OpArgs& a, const char* name, bool* out) {
  int64_t v = 0;
  if (a.attrs.has(name)) DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, name, 0, 1, &v));
  *out = v != 0;
  return Status::Ok();
}

// Checks a and b (inputs 0 and 1) and the attributes; fills the product's dimensions.
Status parse(const OpArgs& a, MatmulDims* d) {
  const TensorView& x = a.in[0];
  const TensorView& y = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "a", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "b", y, DType::kF32));
  DALLE_RETURN_IF_ERROR(get_flag(a, "trans_a", &d->trans_a));
  DALLE_RETURN_IF_ERROR(get_flag(a, "trans_b", &d->trans_b));
  DALLE_CHECK_ARG(x.ndim == 2 || x.ndim == 3, "%s: a must be [M, K] or [batch, M, K], got %s", a.op,
                  x.shape_string().c_str());
  DALLE_CHECK_ARG(y.ndim == 2 || (y.ndim == 3 && x.ndim == 3),
                  "%s: b must be [K, N], or [batch, K, N] when a is batched; got a %s, b %s", a.op,
                  x.shape_string().c_str(), y.shape_string().c_str());
  d->batch = x.ndim == 3 ? x.shape[0] : 1;
  d->shared_b = x.ndim == 3 && y.ndim == 2;
  if (y.ndim == 3)
    DALLE_CHECK_ARG(y.shape[0] == d->batch, "%s: batch sizes differ: a %s, b %s", a.op,
                    x.shape_string().c_str(), y.shape_string().c_str());
  const int64_t x0 = x.dim(-2), x1 = x.dim(-1), y0 = y.dim(-2), y1 = y.dim(-1);
  d->M = d->trans_a ? x1 : x0;
  d->K = d->trans_a ? x0 : x1;
  d->N = d->trans_b ? y0 : y1;
  const int64_t kb = d->trans_b ? y1 : y0;
  DALLE_CHECK_ARG(kb == d->K,
                  "%s: inner dimensions differ: op(a) is [%lld, %lld] (a %s, trans_a %d), op(b) is "
                  "[%lld, %lld] (b %s, trans_b %d)",
                  a.op, static_cast<long long>(d->M), static_cast<long long>(d->K),
                  x.shape_string().c_str(), d->trans_a ? 1 : 0, static_cast<long long>(kb),
                  static_cast<long long>(d->N), y.shape_string().c_str(), d->trans_b ? 1 : 0);
  return Status::Ok();
}

TensorView product_spec(const OpArgs& a, const MatmulDims& d) {
  if (a.in[0].ndim == 3) return out_spec(DType::kF32, {d.batch, d.M, d.N});
  return out_spec(DType::kF32, {d.M, d.N});
}

Status infer_forward(OpArgs& a) {
  MatmulDims d;
  DALLE_RETURN_IF_ERROR(parse(a, &d));
  a.out = {product_spec(a, d)};
  return Status::Ok();
}

Status infer_backward(OpArgs& a) {
  MatmulDims d;
  DALLE_RETURN_IF_ERROR(parse(a, &d));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dc", a.in[2], DType::kF32));
  const TensorView c = product_spec(a, d);
  DALLE_CHECK_ARG(a.in[2].ndim == c.ndim && a.in[2].numel() == c.numel() &&
                      a.in[2].dim(-1) == d.N && a.in[2].dim(-2) == d.M,
                  "%s: dc must have the product's shape %s, got %s", a.op, c.shape_string().c_str(),
                  a.in[2].shape_string().c_str());
  a.out = {out_like(a.in[0]), out_like(a.in[1])};
  return Status::Ok();
}

Status forward(OpArgs& a) {
  MatmulDims d;
  DALLE_RETURN_IF_ERROR(parse(a, &d));
  matmul_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), d.batch, d.M, d.N, d.K,
                     d.trans_a, d.trans_b, d.shared_b);
  return Status::Ok();
}

Status backward(OpArgs& a) {
  MatmulDims d;
  DALLE_RETURN_IF_ERROR(parse(a, &d));
  matmul_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.in[0].f32(), a.in[1].f32(), a.in[2].f32(),
                      d.batch, d.M, d.N, d.K, d.trans_a, d.trans_b, d.shared_b);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(matmul_forward,
                  {"matmul_forward", {"a", "b"}, {"c"}, {}, infer_forward, forward});
DALLE_REGISTER_OP(matmul_backward, {"matmul_backward", {"a", "b", "dc"}, {"da", "db"}, {},
                                    infer_backward, backward});

}  // namespace dalle
