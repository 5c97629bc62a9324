// Whole-tensor arithmetic the trainer needs between backward and optimizer: the squared
// L2 norm (for gradient clipping and NaN/inf detection) and in-place scaling.
#pragma once

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

// sum(x^2) over an f32 tensor, accumulated in double; NaN or inf if any element is.
double sum_of_squares(Context& ctx, const Tensor& x);

// x *= factor.
void scale_inplace(Context& ctx, Tensor& x, float factor);

}  // namespace adacc::ops
