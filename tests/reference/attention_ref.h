// Float64 reference of causal multi-head self-attention over a fused qkv (B,T,3C):
// the textbook formulas in plain loops, written independently of the CPU kernels.
//   q, k, v = qkv[..., 0:C], qkv[..., C:2C], qkv[..., 2C:3C]; head h uses channels
//   h*hs .. h*hs+hs-1 of each, hs = C/H.
//   S = q k^T / sqrt(hs), masked to keys t2 <= t; P = softmax(S) per row; out = P v.
// Backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)),
//   dQ = dS K / sqrt(hs), dK = dS^T Q / sqrt(hs).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace adacc::ref {

using Vec = std::vector<double>;

namespace attention_detail {
// Index of channel c of q (part 0), k (1) or v (2) at (b,t) in qkv (B,T,3C).
inline std::size_t qkv_at(int b, int t, int part, int c, int T, int C) {
  return (static_cast<std::size_t>(b) * T + t) * 3 * C + static_cast<std::size_t>(part) * C + c;
}
// The scaled score of query t and key t2 of head h.
inline double score(const Vec& qkv, int b, int h, int t, int t2, int T, int C, int H) {
  const int hs = C / H;
  double s = 0;
  for (int i = 0; i < hs; ++i) {
    s += qkv[qkv_at(b, t, 0, h * hs + i, T, C)] * qkv[qkv_at(b, t2, 1, h * hs + i, T, C)];
  }
  return s / std::sqrt(static_cast<double>(hs));
}
}  // namespace attention_detail

// qkv (B,T,3C) -> out (B,T,C), probs (B,H,T,T) (zero above the diagonal); both assigned.
inline void attention_forward(const Vec& qkv, int B, int T, int C, int H, Vec& out, Vec& probs) {
  using attention_detail::qkv_at;
  const int hs = C / H;
  out.assign(static_cast<std::size_t>(B) * T * C, 0.0);
  probs.assign(static_cast<std::size_t>(B) * H * T * T, 0.0);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      for (int t = 0; t < T; ++t) {
        double* p = &probs[((static_cast<std::size_t>(b) * H + h) * T + t) * T];
        double mx = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          p[t2] = attention_detail::score(qkv, b, h, t, t2, T, C, H);
          mx = std::max(mx, p[t2]);
        }
        double sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          p[t2] = std::exp(p[t2] - mx);
          sum += p[t2];
        }
        for (int t2 = 0; t2 <= t; ++t2) p[t2] /= sum;
        for (int i = 0; i < hs; ++i) {
          double o = 0;
          for (int t2 = 0; t2 <= t; ++t2) o += p[t2] * qkv[qkv_at(b, t2, 2, h * hs + i, T, C)];
          out[(static_cast<std::size_t>(b) * T + t) * C + h * hs + i] = o;
        }
      }
    }
  }
}

// dout (B,T,C), qkv (B,T,3C), probs (B,H,T,T) -> dqkv (B,T,3C) += (sized by the caller).
inline void attention_backward(const Vec& dout, const Vec& qkv, const Vec& probs, int B, int T,
                               int C, int H, Vec& dqkv) {
  using attention_detail::qkv_at;
  const int hs = C / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  Vec dp(T), ds(T);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      for (int t = 0; t < T; ++t) {
        const double* p = &probs[((static_cast<std::size_t>(b) * H + h) * T + t) * T];
        const double* dO = &dout[(static_cast<std::size_t>(b) * T + t) * C + h * hs];
        double rowdot = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          double s = 0;
          for (int i = 0; i < hs; ++i) s += dO[i] * qkv[qkv_at(b, t2, 2, h * hs + i, T, C)];
          dp[t2] = s;
          rowdot += s * p[t2];
          for (int i = 0; i < hs; ++i) dqkv[qkv_at(b, t2, 2, h * hs + i, T, C)] += p[t2] * dO[i];
        }
        for (int t2 = 0; t2 <= t; ++t2) ds[t2] = p[t2] * (dp[t2] - rowdot);
        for (int t2 = 0; t2 <= t; ++t2) {
          for (int i = 0; i < hs; ++i) {
            dqkv[qkv_at(b, t, 0, h * hs + i, T, C)] +=
                ds[t2] * qkv[qkv_at(b, t2, 1, h * hs + i, T, C)] * scale;
            dqkv[qkv_at(b, t2, 1, h * hs + i, T, C)] +=
                ds[t2] * qkv[qkv_at(b, t, 0, h * hs + i, T, C)] * scale;
          }
        }
      }
    }
  }
}

// qkv (B,T,3C) -> lse (B,H,T) assigned: the natural log of the sum of e^score over the
// visible keys of each query row (what the flash form saves).
inline void attention_lse(const Vec& qkv, int B, int T, int C, int H, Vec& lse) {
  lse.assign(static_cast<std::size_t>(B) * H * T, 0.0);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      for (int t = 0; t < T; ++t) {
        double mx = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          mx = std::max(mx, attention_detail::score(qkv, b, h, t, t2, T, C, H));
        }
        double sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          sum += std::exp(attention_detail::score(qkv, b, h, t, t2, T, C, H) - mx);
        }
        lse[(static_cast<std::size_t>(b) * H + h) * T + t] = mx + std::log(sum);
      }
    }
  }
}

}  // namespace adacc::ref
