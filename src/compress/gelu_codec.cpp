// GELU-derivative codecs: the GELU backward needs only gelu'(x), not x, and gelu'(x)
// lies in a fixed, known interval, so gelu-deriv-u8 / gelu-deriv-u4 store gelu'(x)
// quantized uniformly over [kDerivativeMin, kDerivativeMax] (ops/gelu_math.h) with
// 8 / 4 bits per element and no scales at all. decode gives back the derivative, not the
// input (decodes_to() == SavedForm::gelu_derivative): the GELU node's backward then
// computes dinp += dout * deriv. Only the GELU input role takes these codecs, and a
// tensor stored this way cannot feed a recomputation (runtime::validate checks both).
//
// Format (little-endian): header = 16 bytes (u32 magic "ADGD", u32 bits, u32 numel (low 32
// bits), u32 0) | packed q, ceil(numel * bits / 8) bytes (element i at bit bits*i, LSB
// first) -> 16 + ceil(numel * bits / 8).
//   step = (kDerivativeMax - kDerivativeMin) / (2^bits - 1),
//   q = round((gelu'(x) - kDerivativeMin) / step), d' = kDerivativeMin + q * step, so
//   |gelu'(x) - d'| <= step / 2 (0.0026 for u8, 0.044 for u4) up to f32 rounding, where
//   gelu'(x) is bit-for-bit the value ops::gelu_backward would use.
// Non-finite inputs: encode throws InvalidArgument naming the first (lowest flat index)
// NaN or inf element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/ops/gelu_math.h"
#include "adacc/ops/op_checks.h"
#include "codec_families.h"

namespace adacc::compress {

namespace {

constexpr std::uint32_t kMagic = 0x44474441u;  // "ADGD"
constexpr std::size_t kHeaderBytes = 16;
// Elements per parallel chunk: a multiple of every packing factor.
constexpr std::int64_t kChunk = 1 << 14;

template <int Bits>
class GeluDerivativeCodec final : public Codec {
 public:
  static constexpr int kPerByte = 8 / Bits;
  static constexpr int kQmax = (1 << Bits) - 1;
  static constexpr float kLo = ops::gelu_math::kDerivativeMin;
  static constexpr float kStep = (ops::gelu_math::kDerivativeMax - kLo) / kQmax;

  std::string_view name() const override { return Bits == 8 ? "gelu-deriv-u8" : "gelu-deriv-u4"; }
  std::string description() const override {
    return "the GELU input stored as gelu'(x) in " + std::to_string(Bits) +
           " bits over its fixed range [-0.130, 1.130]; decodes to the derivative";
  }
  bool applies_to(model::TensorRole role) const override {
    return role == model::TensorRole::gelu_in;
  }
  model::SavedForm decodes_to() const override { return model::SavedForm::gelu_derivative; }

  std::size_t encoded_bytes(const Shape& shape) const override {
    return kHeaderBytes + static_cast<std::size_t>((shape_numel(shape) * Bits + 7) / 8);
  }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    const std::int64_t n = in.numel();
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + "." + std::string(name()));
    auto* base = static_cast<std::uint8_t*>(out.raw());
    const std::uint32_t h[4] = {kMagic, Bits, static_cast<std::uint32_t>(n), 0};
    std::memcpy(base, h, kHeaderBytes);
    // x (n) -> q (ceil(n*Bits/8))
    const float* x = in.data<float>();
    std::uint8_t* pk = base + kHeaderBytes;
    constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
    std::int64_t first_bad = none;
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t i0 = c * kChunk, m = std::min(kChunk, n - i0);
      std::uint8_t q[kChunk];
      float poison = 0.0f;  // x * 0 is NaN exactly for NaN and inf
#pragma omp simd reduction(+ : poison)
      for (std::int64_t j = 0; j < m; ++j) {
        const float v = x[i0 + j];
        poison += v * 0.0f;
        const float d = ops::gelu_math::gelu_derivative(v);
        const float t = std::nearbyint((d - kLo) / kStep);
        q[j] = static_cast<std::uint8_t>(t < 0.0f ? 0.0f : (t > kQmax ? kQmax : t));
      }
      if (std::isnan(poison)) {
        std::int64_t j = 0;
        while (std::isfinite(x[i0 + j])) ++j;
        first_bad = std::min(first_bad, i0 + j);
      }
      pack(q, m, pk + i0 / kPerByte);
    }
    if (first_bad != none) {
      ops::fail(name(), "cannot encode non-finite element " + std::to_string(first_bad) +
                            " (= " + std::to_string(x[first_bad]) + ") of " + in.describe());
    }
    return out;
  }

  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    const std::int64_t n = out.numel();
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    std::uint32_t h[4];
    std::memcpy(h, base, kHeaderBytes);
    ops::require(h[0] == kMagic && h[1] == Bits && h[2] == static_cast<std::uint32_t>(n), name(),
                 "encoded header does not match this codec and shape");
    // q (ceil(n*Bits/8)) -> d (n)
    const std::uint8_t* pk = base + kHeaderBytes;
    float* y = out.data<float>();
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t i0 = c * kChunk, m = std::min(kChunk, n - i0);
      const std::uint8_t* pc = pk + i0 / kPerByte;
      float* yc = y + i0;
      if constexpr (Bits == 8) {
#pragma omp simd
        for (std::int64_t j = 0; j < m; ++j) yc[j] = kLo + static_cast<float>(pc[j]) * kStep;
      } else {
        // Two levels per byte, low nibble first; a byte-wise loop with two stores
        // vectorizes where an index-divided one does not.
        const std::int64_t pairs = m / 2;
#pragma omp simd
        for (std::int64_t b = 0; b < pairs; ++b) {
          yc[2 * b] = kLo + static_cast<float>(pc[b] & 15u) * kStep;
          yc[2 * b + 1] = kLo + static_cast<float>(pc[b] >> 4) * kStep;
        }
        if (m % 2 != 0) yc[m - 1] = kLo + static_cast<float>(pc[pairs] & 15u) * kStep;
      }
    }
  }

 private:
  // q (m) -> out (ceil(m*Bits/8))
  static void pack(const std::uint8_t* q, std::int64_t m, std::uint8_t* out) {
    if constexpr (Bits == 8) {
      std::memcpy(out, q, static_cast<std::size_t>(m));
    } else {
      const std::int64_t full = m / kPerByte;
#pragma omp simd
      for (std::int64_t b = 0; b < full; ++b) {
        unsigned byte = 0;
        for (int e = 0; e < kPerByte; ++e)
          byte |= static_cast<unsigned>(q[b * kPerByte + e]) << (Bits * e);
        out[b] = static_cast<std::uint8_t>(byte);
      }
      if (full * kPerByte < m) {
        unsigned byte = 0;
        for (std::int64_t e = 0; full * kPerByte + e < m; ++e) {
          byte |= static_cast<unsigned>(q[full * kPerByte + e]) << (Bits * e);
        }
        out[full] = static_cast<std::uint8_t>(byte);
      }
    }
  }
};

}  // namespace

std::vector<std::unique_ptr<Codec>> gelu_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<GeluDerivativeCodec<8>>());
  codecs.push_back(std::make_unique<GeluDerivativeCodec<4>>());
  return codecs;
}

}  // namespace adacc::compress
