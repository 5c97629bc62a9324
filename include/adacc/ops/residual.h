// Residual add: out = a + b (same shape). Backward saves nothing and accumulates
// (+=) dout into both da and db.
#pragma once

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

void residual_forward(Context& ctx, const Tensor& a, const Tensor& b, Tensor& out);

void residual_backward(Context& ctx, const Tensor& dout, Tensor& da, Tensor& db);

}  // namespace adacc::ops
