// Linear layer (matmul + bias), weights stored (OC, IC) as in llm.c / PyTorch.
//   inp (N,IC) (any leading dims), weight (OC,IC), bias (OC) or undefined -> out (N,OC)
//   out = inp @ weight^T + bias
// Backward needs inp and weight; it accumulates (+=) into dinp, dweight and dbias
// (dbias may be undefined when there is no bias).
#pragma once

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

void linear_forward(Context& ctx, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                    Tensor& out);

void linear_backward(Context& ctx, const Tensor& dout, const Tensor& inp, const Tensor& weight,
                     Tensor& dinp, Tensor& dweight, Tensor& dbias);

}  // namespace adacc::ops
