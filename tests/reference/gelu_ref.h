// Float64 reference for GELU, tanh approximation (see ops/gelu.h):
//   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

// inp (n) -> out (n)
inline void gelu_forward(const Vec& inp, Vec& out) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  out.resize(inp.size());
  for (std::size_t i = 0; i < inp.size(); ++i) {
    const double x = inp[i];
    out[i] = 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
  }
}

// dout (n), inp (n) -> dinp (n) +=
//   d gelu/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
inline void gelu_backward(const Vec& dout, const Vec& inp, Vec& dinp) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  for (std::size_t i = 0; i < inp.size(); ++i) {
    const double x = inp[i];
    const double th = std::tanh(k * (x + 0.044715 * x * x * x));
    const double d =
        0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3 * 0.044715 * x * x);
    dinp[i] += d * dout[i];
  }
}

}  // namespace adacc::ref
