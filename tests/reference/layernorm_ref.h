// Float64 reference for LayerNorm over the last dimension (see ops/layernorm.h):
// eps 1e-5, biased variance, out = (x - mean) / sqrt(var + eps) * w + b.
#pragma once

#include <cmath>
#include <cstddef>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

// inp (N,C), w (C), b (C) -> out (N,C), mean (N), rstd (N)
inline void layernorm_forward(const Vec& inp, const Vec& w, const Vec& b, int N, int C, Vec& out,
                              Vec& mean, Vec& rstd) {
  const double eps = 1e-5;
  out.assign(static_cast<std::size_t>(N) * C, 0.0);
  mean.assign(N, 0.0);
  rstd.assign(N, 0.0);
  for (int n = 0; n < N; ++n) {
    const double* x = &inp[static_cast<std::size_t>(n) * C];
    double m = 0;
    for (int c = 0; c < C; ++c) m += x[c];
    m /= C;
    double var = 0;
    for (int c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
    var /= C;
    const double s = 1.0 / std::sqrt(var + eps);
    for (int c = 0; c < C; ++c) {
      out[static_cast<std::size_t>(n) * C + c] = (x[c] - m) * s * w[c] + b[c];
    }
    mean[n] = m;
    rstd[n] = s;
  }
}

// dout (N,C), inp (N,C), w (C), mean (N), rstd (N) -> dinp (N,C) +=, dw (C) +=, db (C) +=
// With xhat = (x - mean) * rstd and g = dout * w:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
inline void layernorm_backward(const Vec& dout, const Vec& inp, const Vec& w, const Vec& mean,
                               const Vec& rstd, int N, int C, Vec& dinp, Vec& dw, Vec& db) {
  for (int n = 0; n < N; ++n) {
    const std::size_t row = static_cast<std::size_t>(n) * C;
    double mean_g = 0, mean_gx = 0;
    for (int c = 0; c < C; ++c) {
      const double xhat = (inp[row + c] - mean[n]) * rstd[n];
      const double g = dout[row + c] * w[c];
      mean_g += g;
      mean_gx += g * xhat;
    }
    mean_g /= C;
    mean_gx /= C;
    for (int c = 0; c < C; ++c) {
      const double xhat = (inp[row + c] - mean[n]) * rstd[n];
      const double g = dout[row + c] * w[c];
      dinp[row + c] += rstd[n] * (g - mean_g - xhat * mean_gx);
      dw[c] += dout[row + c] * xhat;
      db[c] += dout[row + c];
    }
  }
}

}  // namespace adacc::ref
