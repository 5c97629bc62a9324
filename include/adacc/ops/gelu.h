// GELU with the tanh approximation (GPT-2):
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   inp (any shape) -> out (same shape)
// Backward needs inp; it accumulates (+=) into dinp.
#pragma once

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

void gelu_forward(Context& ctx, const Tensor& inp, Tensor& out);

void gelu_backward(Context& ctx, const Tensor& dout, const Tensor& inp, Tensor& dinp);

// The backward from a stored derivative (gelu_math::gelu_derivative of inp, possibly
// quantized by a codec) instead of inp: dinp += dout * deriv.
void gelu_backward_from_derivative(Context& ctx, const Tensor& dout, const Tensor& deriv,
                                   Tensor& dinp);

}  // namespace adacc::ops
