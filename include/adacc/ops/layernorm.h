// LayerNorm over the last dimension, eps 1e-5 (GPT-2).
//   inp (N,C) (any leading dims, N = their product), weight (C), bias (C)
//   -> out like inp, mean (N), rstd (N)
// Backward needs inp, weight, mean, rstd; it accumulates (+=) into dinp, dweight, dbias.
#pragma once

#include <cstddef>
#include <cstdint>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

inline constexpr float kLayerNormEps = 1e-5f;

void layernorm_forward(Context& ctx, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                       Tensor& out, Tensor& mean, Tensor& rstd);

void layernorm_backward(Context& ctx, const Tensor& dout, const Tensor& inp, const Tensor& weight,
                        const Tensor& mean, const Tensor& rstd, Tensor& dinp, Tensor& dweight,
                        Tensor& dbias);

// Bytes the allocator accounts as workspace during one layernorm_backward with C channels
// on a context of `threads` threads (its (threads,2,C) f32 partial sums; any N). The
// forward takes none.
std::size_t layernorm_backward_workspace_bytes(std::int64_t C, int threads);

}  // namespace adacc::ops
