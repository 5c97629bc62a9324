// GELU (tanh approximation, as GPT-2) on the CPU, forward and backward.
//
// The formulas (and why they are written this way) are in adacc/ops/gelu_math.h. The
// loops vectorize at full AVX-512 width and stream the data once, threaded over
// contiguous chunks. out may be inp and dinp may be dout (element-wise, read before
// written).
#include "adacc/ops/gelu.h"

#include <cstdint>

#include "adacc/ops/gelu_math.h"
#include "adacc/ops/op_checks.h"

namespace adacc::ops {
namespace cpu {
namespace {

constexpr std::int64_t kParallelMin = 1 << 14;

// inp (n) -> out (n)
void gelu_forward(const float* inp, float* out, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) out[i] = gelu_math::gelu(inp[i]);
}

// dout (n), inp (n) -> dinp (n) +=
void gelu_backward(const float* dout, const float* inp, float* dinp, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) dinp[i] += gelu_math::gelu_derivative(inp[i]) * dout[i];
}

// dout (n), deriv (n) -> dinp (n) +=
void gelu_backward_from_derivative(const float* dout, const float* deriv, float* dinp,
                                   std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) dinp[i] += deriv[i] * dout[i];
}

}  // namespace
}  // namespace cpu

void gelu_forward(Context& ctx, const Tensor& inp, Tensor& out) {
  constexpr const char* op = "gelu_forward";
  require(inp.defined(), op, "inp is missing");
  require_tensor(op, "inp", inp, inp.shape());
  require_tensor(op, "out", out, inp.shape());
  require_cpu(op, {&inp, &out});
  cpu::gelu_forward(inp.data<float>(), out.data<float>(), inp.numel());
}

void gelu_backward(Context& ctx, const Tensor& dout, const Tensor& inp, Tensor& dinp) {
  constexpr const char* op = "gelu_backward";
  require(inp.defined(), op, "inp is missing");
  require_tensor(op, "inp", inp, inp.shape());
  require_tensor(op, "dout", dout, inp.shape());
  require_tensor(op, "dinp", dinp, inp.shape());
  require_cpu(op, {&dout, &inp, &dinp});
  cpu::gelu_backward(dout.data<float>(), inp.data<float>(), dinp.data<float>(), inp.numel());
}

void gelu_backward_from_derivative(Context& ctx, const Tensor& dout, const Tensor& deriv,
                                   Tensor& dinp) {
  constexpr const char* op = "gelu_backward_from_derivative";
  require(deriv.defined(), op, "deriv is missing");
  require_tensor(op, "deriv", deriv, deriv.shape());
  require_tensor(op, "dout", dout, deriv.shape());
  require_tensor(op, "dinp", dinp, deriv.shape());
  require_cpu(op, {&dout, &deriv, &dinp});
  cpu::gelu_backward_from_derivative(dout.data<float>(), deriv.data<float>(), dinp.data<float>(),
                                     deriv.numel());
}

}  // namespace adacc::ops
