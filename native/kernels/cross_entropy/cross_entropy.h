// Masked, weighted cross-entropy for DALL·E's single output head over text + image ids.
//
// Position n may only emit ids in [ranges[n, 0], ranges[n, 1]) (the logit mask: text positions
// text ids, image positions image ids); logits outside that range count as −inf, so they get
// neither probability nor gradient. Each position's CE is weighted by weights[n], which is how the
// 1/8·CE_text + 7/8·CE_image objective (each averaged over its own tokens) is expressed; a weight
// of 0 ignores the position. The target must still lie in its range even when its weight is 0.
#pragma once
#include <cstdint>

#include "../../core/status.h"

namespace dalle {

// Fails with kInvalidArgument naming the first position whose range is empty or leaves [0, V), or
// whose target is outside its range. Both kernels run it before writing anything.
Status cross_entropy_check(const char* op, const int32_t* targets, const int32_t* ranges, int64_t N,
                           int64_t V);

// per_position[n] = logsumexp(logits[n, lo:hi]) − logits[n, targets[n]] (unweighted),
// loss[0] = Σ_n weights[n] · per_position[n]. logits [N, V], targets [N], weights [N], ranges [N, 2].
Status cross_entropy_forward_cpu(const char* op, float* loss, float* per_position, const float* logits,
                                 const int32_t* targets, const float* weights, const int32_t* ranges,
                                 int64_t N, int64_t V);
// dlogits[n, j] = dloss · weights[n] · (softmax_{lo:hi}(logits[n])_j − [j = targets[n]]) inside the
// range, 0 outside. dlogits [N, V]; the softmax is recomputed rather than stored.
Status cross_entropy_backward_cpu(const char* op, float* dlogits, const float* logits,
                                  const int32_t* targets, const float* weights, const int32_t* ranges,
                                  float dloss, int64_t N, int64_t V);

}  // namespace dalle
