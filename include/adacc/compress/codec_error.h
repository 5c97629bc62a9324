// How much a codec perturbs what training computes from a tensor: the relative error of
// the round trip itself, and of the weight gradient of a linear layer whose saved input
// went through the codec (the quantity that ActNN / GACT-style compression disturbs).
// Planners and reports use these to rank codecs per tensor.
#pragma once

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::compress {

// x (f32, any shape): ||decode(encode(x)) - x|| / ||x||, accumulated in double. 0 when x
// is all zeros and round-trips exactly (infinity when it is all zeros and does not).
double relative_l2_error(Context& ctx, const Codec& codec, const Tensor& x);

// x (N,IC) (any leading dims; the input a linear layer saves), dy (N,OC) (its output
// gradient, the same leading dims): ||dyᵀ x̂ - dyᵀ x|| / ||dyᵀ x|| with x̂ = decode(encode(x)),
// i.e. the relative L2 error of the weight gradient dW (OC,IC). 0 when both dW are exactly
// zero. Throws InvalidArgument when x and dy do not agree on N or are not f32.
double linear_weight_grad_error(Context& ctx, const Codec& codec, const Tensor& x,
                                const Tensor& dy);

}  // namespace adacc::compress
