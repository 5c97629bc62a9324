// Float64 reference of the lm-head + softmax cross-entropy (see ops/lm_head_loss.h):
// plain loops over the textbook formula, one row at a time.
//   inp (N,C), wte (Vp,C), targets (N) in [0,V) -> losses (N), mean returned
//   logits[n,v] = sum_c inp[n,c] wte[v,c] for v < V; loss[n] = logsumexp(logits[n]) - logits[n,t]
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

namespace detail {
// The V logits of row n.
inline Vec lm_head_logits(const Vec& inp, const Vec& wte, int n, int C, int V) {
  Vec logits(V, 0.0);
  for (int v = 0; v < V; ++v) {
    double s = 0;
    for (int c = 0; c < C; ++c) s += inp[n * C + c] * wte[v * C + c];
    logits[v] = s;
  }
  return logits;
}

inline double log_sum_exp(const Vec& x) {
  double mx = x[0];
  for (double xi : x) mx = std::max(mx, xi);
  double sum = 0;
  for (double xi : x) sum += std::exp(xi - mx);
  return mx + std::log(sum);
}
}  // namespace detail

inline double lm_head_loss_forward(const Vec& inp, const Vec& wte, const std::vector<int>& targets,
                                   int N, int C, int V, int Vp, Vec& losses) {
  assert(static_cast<int>(inp.size()) == N * C && static_cast<int>(wte.size()) == Vp * C);
  assert(static_cast<int>(targets.size()) == N && V <= Vp);
  losses.assign(N, 0.0);
  double total = 0;
  for (int n = 0; n < N; ++n) {
    const Vec logits = detail::lm_head_logits(inp, wte, n, C, V);
    losses[n] = detail::log_sum_exp(logits) - logits[targets[n]];
    total += losses[n];
  }
  return total / N;
}

// Gradient of dloss_scale * sum_n losses[n]: += into dinp (N,C) and dwte (Vp,C).
inline void lm_head_loss_backward(const Vec& inp, const Vec& wte, const std::vector<int>& targets,
                                  int N, int C, int V, int Vp, double dloss_scale, Vec& dinp,
                                  Vec& dwte) {
  assert(static_cast<int>(dinp.size()) == N * C && static_cast<int>(dwte.size()) == Vp * C);
  for (int n = 0; n < N; ++n) {
    const Vec logits = detail::lm_head_logits(inp, wte, n, C, V);
    const double lse = detail::log_sum_exp(logits);
    for (int v = 0; v < V; ++v) {
      const double dlogit =
          (std::exp(logits[v] - lse) - (v == targets[n] ? 1.0 : 0.0)) * dloss_scale;
      for (int c = 0; c < C; ++c) {
        dinp[n * C + c] += dlogit * wte[v * C + c];
        dwte[v * C + c] += dlogit * inp[n * C + c];
      }
    }
  }
}

}  // namespace adacc::ref
