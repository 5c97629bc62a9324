// The softmax codec: attention probabilities (B,H,T,T) after a causal softmax are zero
// above the diagonal and lie in [0,1] below it, so softmax-u8 stores only the lower
// triangle (j <= i) of each (T,T) matrix, each probability as one byte scaled by its
// row's maximum (rows of a long causal softmax rarely come near 1: a fixed [0,1] scale
// would spend most of the 256 levels on values that never occur): about 4*T/(T+9) times
// smaller than the f32 tensor (7.5x at T=128).
//
// Format (little-endian): header = 16 bytes (u32 magic "ADSM", u32 8 (bits) | 1 << 8
// (row scales), u32 T (low 32 bits), u32 0) | f32 rowmax[M*T] | u8 q[M * T*(T+1)/2]
// -> 16 + 4*M*T + M*T*(T+1)/2 bytes, where M is the product of the leading dimensions
// (B*H for (B,H,T,T)); matrix m's row i starts at m*T*(T+1)/2 + i*(i+1)/2 and holds its
// i+1 elements j = 0..i.
//   s = max_{j<=i} p_ij, q = round(p * (255 / s)) (nearest even; q = 0 where s = 0),
//   p' = q * s / 255, so |p - p'| <= s/510 <= 1/510 (up to f32 rounding); 0 and a row
//   (1, 0, ..., 0) come back exactly.
//   Decode writes exact zeros above the diagonal.
// Errors (InvalidArgument): a shape of rank < 2 or whose last two dimensions differ; a
// stored element (j <= i) that is NaN or outside [0,1] (the first, lowest flat index, is
// named). The upper triangle is not read (the causal softmax writes zeros there).
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

constexpr std::uint32_t kMagic = 0x4D534441u;  // "ADSM"
constexpr std::size_t kHeaderBytes = 16;
constexpr std::uint32_t kParams = 8u | 1u << 8;  // 8 bits, per-row scales

// (M matrices, T) of a (..., T, T) shape; throws unless it has that form.
struct Matrices {
  std::int64_t count, t;
};
Matrices matrices(std::string_view name, const Shape& shape) {
  ops::require(shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2], name,
               "expects (B,H,T,T) attention probabilities (last two dimensions equal) but got " +
                   shape_str(shape));
  const std::int64_t t = shape.back();
  return {t == 0 ? 0 : shape_numel(shape) / (t * t), t};
}

std::int64_t triangle(std::int64_t t) {
  return t * (t + 1) / 2;
}

class SoftmaxU8Codec final : public Codec {
 public:
  std::string_view name() const override { return "softmax-u8"; }
  std::string description() const override {
    return "causal attention probabilities: lower triangle only, 8 bits scaled by each row's "
           "maximum";
  }
  bool applies_to(model::TensorRole role) const override {
    return role == model::TensorRole::attn_probs;
  }
  std::size_t encoded_bytes(const Shape& shape) const override {
    const Matrices mt = matrices(name(), shape);
    return kHeaderBytes + static_cast<std::size_t>(mt.count * (4 * mt.t + triangle(mt.t)));
  }

  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, name(),
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    // (Not a structured binding: clang 14 cannot name one inside an OpenMP region.)
    const Matrices mt = matrices(name(), in.shape());
    const std::int64_t count = mt.count, t = mt.t;
    Tensor out =
        Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                      DType::uint8, MemCategory::compressed, in.name() + ".softmax-u8");
    auto* base = static_cast<std::uint8_t*>(out.raw());
    const std::uint32_t h[4] = {kMagic, kParams, static_cast<std::uint32_t>(t), 0};
    std::memcpy(base, h, kHeaderBytes);
    // p (M,T,T) -> rowmax (M*T), q (M, T*(T+1)/2): row (m,i) keeps p[m,i,0..i]
    const float* p = in.data<float>();
    auto* rowmax = reinterpret_cast<float*>(base + kHeaderBytes);
    std::uint8_t* q = base + kHeaderBytes + 4 * count * t;
    constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
    std::int64_t first_bad = none;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
    for (std::int64_t r = 0; r < count * t; ++r) {
      const std::int64_t m = r / t, i = r % t;
      const float* pr = p + r * t;
      std::uint8_t* qr = q + m * triangle(t) + triangle(i);
      int bad = 0;
      float mx = 0.0f;
#pragma omp simd reduction(+ : bad) reduction(max : mx)
      for (std::int64_t j = 0; j <= i; ++j) {
        const float v = pr[j];
        bad += (v >= 0.0f && v <= 1.0f) ? 0 : 1;  // NaN fails both comparisons
        mx = std::max(mx, v);
      }
      rowmax[r] = mx;
      const float mul = mx > 0.0f ? 255.0f / mx : 0.0f;
#pragma omp simd
      for (std::int64_t j = 0; j <= i; ++j) {
        const float s = std::nearbyint(pr[j] * mul);
        qr[j] = static_cast<std::uint8_t>(s > 0.0f ? (s < 255.0f ? s : 255.0f) : 0.0f);
      }
      if (bad > 0) {
        std::int64_t j = 0;
        while (pr[j] >= 0.0f && pr[j] <= 1.0f) ++j;
        first_bad = std::min(first_bad, r * t + j);
      }
    }
    if (first_bad != none) {
      ops::fail(name(), "cannot encode element " + std::to_string(first_bad) +
                            " (= " + std::to_string(p[first_bad]) + ") of " + in.describe() +
                            ": probabilities must lie in [0,1]");
    }
    return out;
  }

  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    require_decodable(*this, encoded, out);
    const Matrices mt = matrices(name(), out.shape());
    const std::int64_t count = mt.count, t = mt.t;
    const auto* base = static_cast<const std::uint8_t*>(encoded.raw());
    std::uint32_t h[4];
    std::memcpy(h, base, kHeaderBytes);
    ops::require(h[0] == kMagic && h[1] == kParams && h[2] == static_cast<std::uint32_t>(t), name(),
                 "encoded header does not match this codec and shape");
    // rowmax (M*T), q (M, T*(T+1)/2) -> y (M,T,T), zeros above the diagonal
    const auto* rowmax = reinterpret_cast<const float*>(base + kHeaderBytes);
    const std::uint8_t* q = base + kHeaderBytes + 4 * count * t;
    float* y = out.data<float>();
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < count * t; ++r) {
      const std::int64_t m = r / t, i = r % t;
      const std::uint8_t* qr = q + m * triangle(t) + triangle(i);
      float* yr = y + r * t;
      const float mx = rowmax[r];
#pragma omp simd
      for (std::int64_t j = 0; j <= i; ++j) yr[j] = static_cast<float>(qr[j]) * mx / 255.0f;
#pragma omp simd
      for (std::int64_t j = i + 1; j < t; ++j) yr[j] = 0.0f;
    }
  }
};

}  // namespace

std::vector<std::unique_ptr<Codec>> softmax_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<SoftmaxU8Codec>());
  return codecs;
}

}  // namespace adacc::compress
