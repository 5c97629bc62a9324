// Floating-point codecs. fp32 -> bf16 (round to nearest even; NaN stays NaN) and back: a
// near-lossless codec that halves a saved tensor (relative error <= 2^-8 per element: half
// a bf16 ulp).
//
// fp8-e4m3: fp32 -> one byte of OCP FP8 E4M3 (sign, 4 exponent bits with bias 7, 3 mantissa
// bits; no infinities, max finite 448, NaN = S.1111.111), a quarter of the tensor.
// Format (little-endian): header = 8 bytes (u32 magic "ADF8", f32 scale) | u8 code[numel]
//   -> 8 + numel bytes.
//   scale = max|x| / 448 (1 when that is 0: all zero, or max|x| < 448 * the smallest
//   float), code = E4M3(x / scale) rounded to nearest even (clamped to +-448), x' = code *
//   scale. Relative error <= 2^-4 (half an E4M3 ulp) where |x / scale| >= 2^-6 (normal);
//   below that (subnormal, step 2^-9) the absolute error is <= 2^-10 * scale. 0 stays 0.
// Non-finite inputs: encode throws InvalidArgument naming the first (lowest flat index)
// NaN or inf element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/ops/op_checks.h"
#include "codec_families.h"

namespace adacc::compress {

namespace {

// x (n) f32 -> out (n) bf16 bits
void encode_bf16(const float* x, std::uint16_t* out, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, &x[i], 4);
    const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    const std::uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
    out[i] = static_cast<std::uint16_t>(nan ? (u >> 16) | 0x40u : rounded >> 16);
  }
}

// in (n) bf16 bits -> y (n) f32
void decode_bf16(const std::uint16_t* in, float* y, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint32_t u = static_cast<std::uint32_t>(in[i]) << 16;
    std::memcpy(&y[i], &u, 4);
  }
}

class Bf16Codec final : public Codec {
 public:
  std::string_view name() const override { return "bf16"; }
  std::string description() const override {
    return "fp32 -> bf16, round to nearest even (relative error <= 2^-8)";
  }
  std::size_t encoded_bytes(const Shape& shape) const override {
    return static_cast<std::size_t>(shape_numel(shape)) * 2;
  }
  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, "bf16",
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + ".bf16");
    encode_bf16(in.data<float>(), static_cast<std::uint16_t*>(out.raw()), in.numel());
    return out;
  }
  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    decode_bf16(static_cast<const std::uint16_t*>(encoded.raw()), out.data<float>(), out.numel());
  }
};

// ---------------------------------------------------------------- fp8 e4m3

constexpr std::uint32_t kFp8Magic = 0x38464441u;  // "ADF8"
constexpr std::size_t kFp8HeaderBytes = 8;
constexpr float kFp8Max = 448.0f;

// x (n) f32, scale -> out (n) E4M3 codes of x / scale (finite x).
void encode_fp8(const float* x, float scale, std::uint8_t* out, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float y = std::min(std::abs(x[i] / scale), kFp8Max);
    std::uint32_t u, s;
    std::memcpy(&u, &y, 4);
    std::memcpy(&s, &x[i], 4);
    // Normal (y >= 2^-6): round the f32 mantissa to 3 bits (nearest even, a carry bumps the
    // exponent), then rebias the exponent from 127 to 7. Subnormal: y / 2^-9 rounded to
    // nearest even (8 = 2^-6 is the smallest normal's code).
    const std::uint32_t normal = ((u + 0x7FFFFu + ((u >> 20) & 1u)) >> 20) - (120u << 3);
    const auto sub = static_cast<std::uint32_t>(std::nearbyint(y * 512.0f));
    const std::uint32_t code = std::min(y >= 0.015625f ? normal : sub, 0x7Eu);
    out[i] = static_cast<std::uint8_t>(code | ((s >> 24) & 0x80u));
  }
}

// E4M3 code c -> its value times scale (c = 0x7F, 0xFF: NaN).
float fp8_value(std::uint32_t c, float scale) {
  const std::uint32_t e = (c >> 3) & 15u, m = c & 7u;
  if (e == 15u && m == 7u) return std::numeric_limits<float>::quiet_NaN();
  const float v = e == 0u
                      ? std::ldexp(static_cast<float>(m), -9)
                      : std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
  return ((c & 0x80u) ? -v : v) * scale;
}

// in (n) E4M3 codes, scale -> y (n) f32. Through a table of the 256 scaled values (the
// loop vectorizes as a gather; bit arithmetic on the codes does not).
void decode_fp8(const std::uint8_t* in, float scale, float* y, std::int64_t n) {
  float table[256];
  for (std::uint32_t c = 0; c < 256; ++c) table[c] = fp8_value(c, scale);
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) y[i] = table[in[i]];
}

class Fp8E4m3Codec final : public Codec {
 public:
  std::string_view name() const override { return "fp8-e4m3"; }
  std::string description() const override {
    return "fp32 -> fp8 E4M3 with one f32 scale per tensor (max |x| -> 448)";
  }
  std::size_t encoded_bytes(const Shape& shape) const override {
    return kFp8HeaderBytes + static_cast<std::size_t>(shape_numel(shape));
  }
  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    const float* x = in.data<float>();
    const std::int64_t n = in.numel();
    // max |x|; x * 0 is NaN exactly for NaN and inf, so `poison` flags non-finite input.
    float amax = 0.0f, poison = 0.0f;
#pragma omp parallel for simd schedule(static) reduction(max : amax) reduction(+ : poison)
    for (std::int64_t i = 0; i < n; ++i) {
      amax = std::max(amax, std::abs(x[i]));
      poison += x[i] * 0.0f;
    }
    if (std::isnan(poison)) {
      std::int64_t i = 0;
      while (std::isfinite(x[i])) ++i;
      ops::fail(name(), "cannot encode non-finite element " + std::to_string(i) +
                            " (= " + std::to_string(x[i]) + ") of " + in.describe());
    }
    float scale = amax / kFp8Max;
    if (!(scale > 0.0f)) scale = 1.0f;
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + ".fp8-e4m3");
    auto* base = static_cast<std::uint8_t*>(out.raw());
    std::memcpy(base, &kFp8Magic, 4);
    std::memcpy(base + 4, &scale, 4);
    encode_fp8(x, scale, base + kFp8HeaderBytes, n);
    return out;
  }
  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    std::uint32_t magic;
    float scale;
    std::memcpy(&magic, base, 4);
    std::memcpy(&scale, base + 4, 4);
    ops::require(magic == kFp8Magic, name(), "encoded header does not match this codec");
    decode_fp8(base + kFp8HeaderBytes, scale, out.data<float>(), out.numel());
  }
};

}  // namespace

std::vector<std::unique_ptr<Codec>> float_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<Bf16Codec>());
  codecs.push_back(std::make_unique<Fp8E4m3Codec>());
  return codecs;
}

}  // namespace adacc::compress
