// e^x for float, vectorizable (libm's expf is a scalar call the compiler cannot vectorize
// without -ffast-math; glibc's is ~3 ns per element here against ~0.35 ns for this one).
// Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in two parts), a degree-6
// polynomial for e^r, and 2^n built in the exponent bits; max relative error 8.5e-8
// (1.4 ulp). n = round(x log2(e)) comes from adding 1.5 * 2^23, which leaves the integer
// in the low mantissa bits (std::floor and float->int conversions keep GCC 12 from
// vectorizing). Shared by the attention softmaxes (attention_tile.h) and the fused loss
// (lm_head_loss.cpp), which clamp or mask the input range each their own way.
#pragma once

#include <bit>
#include <cstdint>

namespace adacc::ops::cpu {

// e^x for x in [-87.3, 88] (outside, the exponent bits wrap: callers clamp first).
inline float exp_cephes(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr std::int32_t kRoundBits = 0x4B400000;
  const float t = x * kLog2e + kRound;
  const float n = t - kRound;  // round(x / ln2)
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n through the exponent bits; n is in [-126, 127].
  const std::int32_t n_int = std::bit_cast<std::int32_t>(t) - kRoundBits;
  return p * std::bit_cast<float>((n_int + 127) << 23);
}

}  // namespace adacc::ops::cpu
