// The DALL·E attention masks (DALLE-SPEC.md §2 and "Decisions for this project") as pure
// functions of (query position, key position), shared by the CPU kernels, the CUDA kernels and
// the mask-materialising reference op.
//
// Sequence layout: positions [0, text_len) are text (BOS counted among them), then n_img image
// positions; image index i = position - text_len, i = W·r + c in raster order. Every query sees
// keys at positions <= its own. Text queries see text keys only (causally). Image queries see
// every text key plus the image keys their mask allows, all under one softmax:
//   causal  every earlier image key
//   row     j in [i-W, i]
//   column  (i-j) mod W == 0 in raster order; the kernels work in the transposed layout
//           (image part stored column-major, i' = W·c + r), where that set is the block
//           [W·floor(i'/W), i'] — one contiguous range per query
//   conv    i-j in {0..h} ∪ {W·dr + dc : 1 <= dr <= h, |dc| <= h}, wrapping on flat indices,
//           h = max(1, floor(5W/32 + 1/2))
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define DALLE_ATTN_HD __host__ __device__ __forceinline__
#else
#define DALLE_ATTN_HD inline
#endif

namespace dalle {

enum AttnMaskKind : int { kAttnCausal = 0, kAttnRow = 1, kAttnColumn = 2, kAttnConv = 3 };

// floor(5W/32 + 1/2) in integers: 11×11 at W = 32, 7×7 at 16, 3×3 at 8 and below.
DALLE_ATTN_HD int64_t attn_conv_half_width(int64_t grid) {
  int64_t h = (5 * grid + 16) / 32;
  return h < 1 ? 1 : h;
}

struct AttnPattern {
  int kind;
  int64_t text_len;
  int64_t grid;
  int64_t half;  // conv half-width h
};

DALLE_ATTN_HD AttnPattern make_attn_pattern(int kind, int64_t text_len, int64_t grid) {
  return AttnPattern{kind, text_len, grid, attn_conv_half_width(grid)};
}

// Image key j for image query i (both image indices).
DALLE_ATTN_HD bool attn_image_allowed(const AttnPattern& p, int64_t i, int64_t j) {
  if (j < 0 || j > i) return false;
  int64_t d = i - j;
  switch (p.kind) {
    case kAttnRow:
      return d <= p.grid;
    case kAttnColumn:  // transposed layout: block-diagonal causal, blocks of W
      return i / p.grid == j / p.grid;
    case kAttnConv:
      if (d <= p.half) return true;
      for (int64_t dr = 1; dr <= p.half; ++dr) {
        int64_t dc = d - p.grid * dr;
        if (dc >= -p.half && dc <= p.half) return true;
      }
      return false;
    default:
      return true;
  }
}

// Key position k for query position q.
DALLE_ATTN_HD bool attn_allowed(const AttnPattern& p, int64_t q, int64_t k) {
  if (k < 0 || k > q) return false;
  if (k < p.text_len) return true;
  return attn_image_allowed(p, q - p.text_len, k - p.text_len);
}

// Half-open [begin, end) of key positions.
struct AttnKeyRange {
  int64_t begin;
  int64_t end;
};

// Capacity attn_key_ranges needs: the text range plus, for conv, one range per kernel row.
DALLE_ATTN_HD int64_t attn_max_key_ranges(const AttnPattern& p) {
  return p.kind == kAttnConv ? p.half + 2 : 2;
}

// Appends [begin, end), merging with the last range when they touch. Callers append in
// ascending order of begin, so the result is sorted and disjoint.
DALLE_ATTN_HD void attn_push_range(AttnKeyRange* out, int64_t* n, int64_t begin, int64_t end) {
  if (begin >= end) return;
  if (*n > 0 && begin <= out[*n - 1].end) {
    if (end > out[*n - 1].end) out[*n - 1].end = end;
    return;
  }
  out[*n] = AttnKeyRange{begin, end};
  ++*n;
}

// The keys query q may see, as sorted disjoint ranges (out needs attn_max_key_ranges slots);
// returns how many. The union is exactly {k : attn_allowed(p, q, k)}.
DALLE_ATTN_HD int64_t attn_key_ranges(const AttnPattern& p, int64_t q, AttnKeyRange* out) {
  int64_t n = 0;
  const int64_t T = p.text_len;
  if (q < T) {
    attn_push_range(out, &n, 0, q + 1);
    return n;
  }
  attn_push_range(out, &n, 0, T);
  const int64_t i = q - T;
  switch (p.kind) {
    case kAttnRow:
      attn_push_range(out, &n, T + (i > p.grid ? i - p.grid : 0), q + 1);
      break;
    case kAttnColumn:
      attn_push_range(out, &n, T + (i / p.grid) * p.grid, q + 1);
      break;
    case kAttnConv:
      // Farthest kernel row first so begins ascend; h <= W keeps each row's keys below i.
      for (int64_t dr = p.half; dr >= 1; --dr) {
        int64_t centre = i - p.grid * dr;
        int64_t lo = centre - p.half, hi = centre + p.half + 1;
        attn_push_range(out, &n, T + (lo > 0 ? lo : 0), T + hi);
      }
      attn_push_range(out, &n, T + (i > p.half ? i - p.half : 0), q + 1);
      break;
    default:
      attn_push_range(out, &n, T, q + 1);
      break;
  }
  return n;
}

}  // namespace dalle
