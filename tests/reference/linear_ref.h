// Float64 reference for the linear layer (see ops/linear.h): weight stored (OC,IC),
// out = inp @ w^T + bias.
#pragma once

#include <cstddef>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

// inp (N,IC), w (OC,IC), bias (OC) or nullptr -> out (N,OC)
inline void linear_forward(const Vec& inp, const Vec& w, const Vec* bias, int N, int IC, int OC,
                           Vec& out) {
  out.assign(static_cast<std::size_t>(N) * OC, 0.0);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double s = bias ? (*bias)[o] : 0.0;
      for (int i = 0; i < IC; ++i) {
        s += inp[static_cast<std::size_t>(n) * IC + i] * w[static_cast<std::size_t>(o) * IC + i];
      }
      out[static_cast<std::size_t>(n) * OC + o] = s;
    }
  }
}

// dout (N,OC), inp (N,IC), w (OC,IC) -> dinp (N,IC) +=, dw (OC,IC) +=, dbias (OC) += (if given)
inline void linear_backward(const Vec& dout, const Vec& inp, const Vec& w, int N, int IC, int OC,
                            Vec& dinp, Vec& dw, Vec* dbias) {
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      const double g = dout[static_cast<std::size_t>(n) * OC + o];
      for (int i = 0; i < IC; ++i) {
        dinp[static_cast<std::size_t>(n) * IC + i] += g * w[static_cast<std::size_t>(o) * IC + i];
        dw[static_cast<std::size_t>(o) * IC + i] += g * inp[static_cast<std::size_t>(n) * IC + i];
      }
      if (dbias) (*dbias)[o] += g;
    }
  }
}

}  // namespace adacc::ref
