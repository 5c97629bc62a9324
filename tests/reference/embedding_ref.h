// Float64 reference for the token + position embedding (see ops/embedding.h).
#pragma once

#include <cstddef>
#include <vector>

#include "reference/test_util.h"

namespace adacc::ref {

using test::Vec;

// tokens (B,T), wte (Vp,C), wpe (>=T,C) -> out (B,T,C)
inline void embedding_forward(const std::vector<int>& tokens, const Vec& wte, const Vec& wpe, int B,
                              int T, int C, Vec& out) {
  out.assign(static_cast<std::size_t>(B) * T * C, 0.0);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const std::size_t n = static_cast<std::size_t>(b) * T + t;
      const std::size_t tok = static_cast<std::size_t>(tokens[n]);
      for (int c = 0; c < C; ++c) {
        out[n * C + c] = wte[tok * C + c] + wpe[static_cast<std::size_t>(t) * C + c];
      }
    }
  }
}

// tokens (B,T), dout (B,T,C) -> dwte (Vp,C) +=, dwpe (>=T,C) +=
inline void embedding_backward(const std::vector<int>& tokens, const Vec& dout, int B, int T, int C,
                               Vec& dwte, Vec& dwpe) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const std::size_t n = static_cast<std::size_t>(b) * T + t;
      const std::size_t tok = static_cast<std::size_t>(tokens[n]);
      for (int c = 0; c < C; ++c) {
        dwte[tok * C + c] += dout[n * C + c];
        dwpe[static_cast<std::size_t>(t) * C + c] += dout[n * C + c];
      }
    }
  }
}

}  // namespace adacc::ref
