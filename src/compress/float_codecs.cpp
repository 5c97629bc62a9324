// Floating-point codecs. fp32 -> bf16 (round to nearest even; NaN stays NaN) and back: a near-lossless codec
// that halves a saved tensor (relative error <= 2^-8 per element: half a bf16 ulp).
#include <cstring>

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
  std::size_t encoded_bytes(const Shape& shape) const override {
    return static_cast<std::size_t>(shape_numel(shape)) * 2;
  }
  Tensor encode(Context& ctx, const Tensor& in) const override {
    ops::require(in.defined() && in.dtype() == DType::f32, "bf16",
                 "input must be f32 but is " + (in.defined() ? in.describe() : "missing"));
    Tensor out = Tensor::empty(ctx.allocator(), {static_cast<std::int64_t>(encoded_bytes(in.shape()))},
                               DType::uint8, MemCategory::compressed, in.name() + ".bf16");
    encode_bf16(in.data<float>(), static_cast<std::uint16_t*>(out.raw()), in.numel());
    return out;
  }
  void decode(Context& ctx, const Tensor& encoded, Tensor& out) const override {
    ops::require(out.defined() && out.dtype() == DType::f32 &&
                     encoded.nbytes() == encoded_bytes(out.shape()),
                 "bf16", "cannot decode " + encoded.describe() + " into " + out.describe());
    decode_bf16(static_cast<const std::uint16_t*>(encoded.raw()), out.data<float>(), out.numel());
  }
};

}  // namespace

std::vector<std::unique_ptr<Codec>> float_codecs() {
  std::vector<std::unique_ptr<Codec>> codecs;
  codecs.push_back(std::make_unique<Bf16Codec>());
  return codecs;
}

}  // namespace adacc::compress
