// The scalar formulas of GELU (tanh approximation, as GPT-2), shared by the CPU kernels
// (ops/cpu/gelu.cpp) and the GELU-derivative codec (compress/gelu_codec.cpp), so that
// the derivative a codec stores is exactly the one the backward would compute.
//
// 0.5 (1 + tanh(u)) = sigmoid(2u), so with u = sqrt(2/pi) (x + 0.044715 x^3) and
// e = exp(-2|u|) in (0,1]:
//   gelu(x)  = x s,            s = 1/(1+e) for u >= 0, e/(1+e) for u < 0
//   gelu'(x) = s + x * 2 du/dx * e/(1+e)^2
// Every term is a ratio of positive numbers, so unlike 1 - tanh^2 (which cancels once
// |u| > ~4) each result keeps full relative precision over the whole range. libm's expf
// is a scalar call the compiler cannot vectorize (glibc declares vector variants only
// under -ffast-math), so exp is computed inline: Cody-Waite range reduction, a degree-7
// Taylor polynomial on |r| <= ln2/2 (error < 1e-8) and an exponent-bit scale. All of it
// vectorizes inside `omp simd` loops.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

// The same formulas compile for CUDA devices too (compress/cuda/codec_kernels.cu).
#ifdef __CUDACC__
#define ADACC_GELU_HD __host__ __device__
#else
#define ADACC_GELU_HD
#endif

namespace adacc::ops::gelu_math {

inline constexpr float kSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kCubic = 0.044715f;

// exp(x) for x <= 0. Below -87 (exp < 1.7e-38, the normal float range) it returns
// exp(-87), which is as good as 0 to every caller here. NaN stays NaN.
ADACC_GELU_HD inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // few bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer; unlike std::floor
  // (which must not raise "inexact") it vectorizes without -ffast-math.
  constexpr float kRound = 12582912.0f;
  x = x < -87.0f ? -87.0f : x;                     // (NaN stays NaN)
  const float n = (x * kLog2e + kRound) - kRound;  // nearest integer, in [-126, 0]
  float r = fmaf(n, -kLn2Hi, x);
  r = fmaf(n, -kLn2Lo, r);  // x - n ln2, |r| <= ln2/2
  float p = 1.0f / 5040.0f;
  p = fmaf(p, r, 1.0f / 720.0f);
  p = fmaf(p, r, 1.0f / 120.0f);
  p = fmaf(p, r, 1.0f / 24.0f);
  p = fmaf(p, r, 1.0f / 6.0f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
#ifdef __CUDA_ARCH__
  const float scale = __int_as_float(bits);  // 2^n
#else
  const float scale = std::bit_cast<float>(bits);  // 2^n
#endif
  return p * scale;
}

ADACC_GELU_HD inline float gelu(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const float e = exp_nonpositive(-2.0f * fabsf(u));
  const float r = 1.0f / (1.0f + e);
  const float s = u >= 0.0f ? r : e * r;  // sigmoid(2u)
  return x * s;
}

// gelu'(x). Its range over all finite floats is [kDerivativeMin, kDerivativeMax] (about
// [-0.1290, 1.1290], at x ~ -+1.41; tests/compress/gelu_codec_test.cpp checks the bounds).
// x is first clamped to [-20, 20] (beyond, gelu' is 0 or 1 to float precision), so that
// x^3 cannot overflow; NaN stays NaN.
ADACC_GELU_HD inline float gelu_derivative(float x) {
  x = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);  // NaN stays NaN
  const float x2 = x * x;
  const float u = kSqrt2OverPi * (x + kCubic * x2 * x);
  const float du_dx = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x2);
  const float e = exp_nonpositive(-2.0f * fabsf(u));
  const float r = 1.0f / (1.0f + e);
  const float s = u >= 0.0f ? r : e * r;  // sigmoid(2u)
  return s + 2.0f * x * du_dx * (e * r * r);
}

// Bounds of gelu'(x), a little outside the true extremes.
inline constexpr float kDerivativeMin = -0.1298828125f;  // -133/1024
inline constexpr float kDerivativeMax = 1.1298828125f;   // 1 + 133/1024

}  // namespace adacc::ops::gelu_math
