// Float64 reference of the AdamW update (see ops/adamw.h): the textbook formula with bias
// correction and decoupled weight decay, element by element. step counts from 1.
#pragma once

#include <cmath>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

inline void adamw_update(Vec& p, const Vec& g, Vec& m, Vec& v, long step, double lr, double beta1,
                         double beta2, double eps, double weight_decay) {
  const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  for (std::size_t i = 0; i < p.size(); ++i) {
    m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
    const double m_hat = m[i] / bias1;
    const double v_hat = v[i] / bias2;
    p[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + weight_decay * p[i]);
  }
}

}  // namespace adacc::ref
