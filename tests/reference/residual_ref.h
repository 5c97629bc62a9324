// Float64 reference for the residual add (see ops/residual.h): out = a + b.
#pragma once

#include <cstddef>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

// a (n), b (n) -> out (n)
inline void residual_forward(const Vec& a, const Vec& b, Vec& out) {
  out.resize(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = a[i] + b[i];
}

// dout (n) -> da (n) +=, db (n) +=
inline void residual_backward(const Vec& dout, Vec& da, Vec& db) {
  for (std::size_t i = 0; i < dout.size(); ++i) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

}  // namespace adacc::ref
