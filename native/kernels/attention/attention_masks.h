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
//           [W·floor(i'/W), i'] — one contiguous range per query. attn_allowed is that
//           transposed-layout rule; attn_allowed_raster is the raster-order one, for the KV-cache
//           decoder, whose cache holds the image in raster order for every layer
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

// ---- raster order (incremental decoding) ------------------------------------------------------
// A KV cache is filled one position at a time, so it holds the image part in raster order for
// every layer, column layers included: there the transposed-layout trick above does not apply
// and a column query's keys are every W-th cell. Everything else is the same as attn_allowed.

// Image key j for image query i, both raster indices.
DALLE_ATTN_HD bool attn_image_allowed_raster(const AttnPattern& p, int64_t i, int64_t j) {
  if (p.kind == kAttnColumn) return j >= 0 && j <= i && (i - j) % p.grid == 0;
  return attn_image_allowed(p, i, j);
}

// Key position k for query position q, image part in raster order.
DALLE_ATTN_HD bool attn_allowed_raster(const AttnPattern& p, int64_t q, int64_t k) {
  if (k < 0 || k > q) return false;
  if (k < p.text_len) return true;
  return attn_image_allowed_raster(p, q - p.text_len, k - p.text_len);
}

// Keys begin, begin + step, ... (< end): a column's keys are one strided run, which the
// contiguous AttnKeyRange cannot express.
struct AttnKeyRun {
  int64_t begin;
  int64_t end;
  int64_t step;
};

// Capacity attn_key_runs_raster needs; the same count as attn_max_key_ranges.
DALLE_ATTN_HD int64_t attn_max_key_runs(const AttnPattern& p) { return attn_max_key_ranges(p); }

// Appends a run; a contiguous run that touches the last contiguous one is merged into it (the
// conv rows overlap when 2h + 1 > W). Callers append in ascending order of begin.
DALLE_ATTN_HD void attn_push_run(AttnKeyRun* out, int64_t* n, int64_t begin, int64_t end, int64_t step) {
  if (begin >= end) return;
  if (step == 1 && *n > 0 && out[*n - 1].step == 1 && begin <= out[*n - 1].end) {
    if (end > out[*n - 1].end) out[*n - 1].end = end;
    return;
  }
  out[*n] = AttnKeyRun{begin, end, step};
  ++*n;
}

// The keys query q may see in raster order, as sorted disjoint runs (out needs
// attn_max_key_runs slots); returns how many. The union is exactly {k : attn_allowed_raster(p,
// q, k)}, and every key is <= q, so a decoder never touches cache rows past its last query.
DALLE_ATTN_HD int64_t attn_key_runs_raster(const AttnPattern& p, int64_t q, AttnKeyRun* out) {
  int64_t n = 0;
  const int64_t T = p.text_len;
  if (q < T) {
    attn_push_run(out, &n, 0, q + 1, 1);
    return n;
  }
  attn_push_run(out, &n, 0, T, 1);
  const int64_t i = q - T;
  switch (p.kind) {
    case kAttnRow:
      attn_push_run(out, &n, T + (i > p.grid ? i - p.grid : 0), q + 1, 1);
      break;
    case kAttnColumn:
      // i mod W, i mod W + W, ..., i: the cells above in its column, then itself.
      attn_push_run(out, &n, T + i % p.grid, q + 1, p.grid);
      break;
    case kAttnConv:
      // As attn_key_ranges: farthest kernel row first so begins ascend.
      for (int64_t dr = p.half; dr >= 1; --dr) {
        int64_t centre = i - p.grid * dr;
        int64_t lo = centre - p.half, hi = centre + p.half + 1;
        attn_push_run(out, &n, T + (lo > 0 ? lo : 0), T + hi, 1);
      }
      attn_push_run(out, &n, T + (i > p.half ? i - p.half : 0), q + 1, 1);
      break;
    default:
      attn_push_run(out, &n, T, q + 1, 1);
      break;
  }
  return n;
}

}  // namespace dalle
