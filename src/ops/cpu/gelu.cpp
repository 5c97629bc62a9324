// GELU (tanh approximation, as GPT-2) on the CPU, forward and backward.
//
// 0.5 (1 + tanh(u)) = sigmoid(2u), so with u = sqrt(2/pi) (x + 0.044715 x^3) and
// e = exp(-2|u|) in (0,1]:
//   gelu(x)  = x s,            s = 1/(1+e) for u >= 0, e/(1+e) for u < 0
//   gelu'(x) = s + x * 2 du/dx * e/(1+e)^2
// Every term is a ratio of positive numbers, so unlike 1 - tanh^2 (which cancels once
// |u| > ~4) each result keeps full relative precision over the whole range. libm's expf
// is a scalar call the compiler cannot vectorize (glibc declares vector variants only
// under -ffast-math), so exp is computed inline: Cody-Waite range reduction, a degree-7
// Taylor polynomial on |r| <= ln2/2 (error < 1e-8) and an exponent-bit scale. The loops
// vectorize at full AVX-512 width and stream the data once, threaded over contiguous
// chunks. out may be inp and dinp may be dout (element-wise, read before written).
#include "adacc/ops/gelu.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "adacc/ops/op_checks.h"

namespace adacc::ops {
namespace cpu {
namespace {

constexpr std::int64_t kParallelMin = 1 << 14;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

// exp(x) for x <= 0. Below -87 (exp < 1.7e-38, the normal float range) it returns
// exp(-87), which is as good as 0 to every caller here. NaN stays NaN.
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // few bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer; unlike std::floor
  // (which must not raise "inexact") it vectorizes without -ffast-math.
  constexpr float kRound = 12582912.0f;
  x = std::max(x, -87.0f);
  const float n = (x * kLog2e + kRound) - kRound;  // nearest integer, in [-126, 0]
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);  // x - n ln2, |r| <= ln2/2
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const float scale = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);  // 2^n
  return p * scale;
}

// inp (n) -> out (n)
void gelu_forward(const float* inp, float* out, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
    const float e = exp_nonpositive(-2.0f * std::abs(u));
    const float r = 1.0f / (1.0f + e);
    const float s = u >= 0.0f ? r : e * r;  // sigmoid(2u)
    out[i] = x * s;
  }
}

// dout (n), inp (n) -> dinp (n) +=
void gelu_backward(const float* dout, const float* inp, float* dinp, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float x2 = x * x;
    const float u = kSqrt2OverPi * (x + kCubic * x2 * x);
    const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x2);
    const float e = exp_nonpositive(-2.0f * std::abs(u));
    const float r = 1.0f / (1.0f + e);
    const float s = u >= 0.0f ? r : e * r;  // sigmoid(2u)
    const float grad = s + 2.0f * x * du_dx * (e * r * r);
    dinp[i] += grad * dout[i];
  }
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

}  // namespace adacc::ops
