// The codec sample: its error is the codec's on the sampled slices (compared with a full
// encode/decode of those slices), outliers are counted, and the sample is bounded.
#include "adacc/evolve/codec_sample.h"

#include <gtest/gtest.h>

#include <cmath>

#include "adacc/core/rng.h"

namespace adacc::evolve {
namespace {

Tensor gaussian(Allocator& a, Shape shape, std::uint64_t seed) {
  Tensor t = Tensor::empty(a, std::move(shape), DType::f32, MemCategory::activations, "x");
  Rng rng(seed);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = rng.normal();
  return t;
}

// The relative error of a full encode/decode of `x`, computed directly.
double full_error(Context& ctx, const compress::Codec& codec, const Tensor& x) {
  const Tensor enc = codec.encode(ctx, x);
  Tensor dec = Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace, "d");
  codec.decode(ctx, enc, dec);
  double diff = 0, ref = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double d = dec.data<float>()[i] - x.data<float>()[i];
    diff += d * d;
    ref += static_cast<double>(x.data<float>()[i]) * x.data<float>()[i];
  }
  return std::sqrt(diff / ref);
}

TEST(CodecSample, ErrorIsTheCodecsOnTheSampledRows) {
  Allocator a;
  Context ctx(a, 1);
  const Tensor x = gaussian(a, {4, 32, 128}, 1);  // 16,384 elements: sampled whole
  for (const char* name : {"bf16", "int8-g64", "int4-g64", "int2-g128"}) {
    const compress::Codec& codec = compress::codec_by_name(name);
    const CodecSample s = sample_codec(ctx, codec, x);
    EXPECT_EQ(s.elements, x.numel()) << name;
    EXPECT_NEAR(s.full_error, full_error(ctx, codec, x), 1e-9 * s.full_error) << name;
    EXPECT_EQ(s.tensor_error, s.full_error) << name;  // no outliers: the same
    EXPECT_GT(s.tensor_error, 0) << name;
  }
  // A larger tensor: only the first rows, at most the bound.
  const Tensor big = gaussian(a, {8, 256, 128}, 2);
  const CodecSample s = sample_codec(ctx, compress::codec_by_name("int4-g64"), big, 4096);
  EXPECT_EQ(s.elements, 4096);
  EXPECT_NEAR(s.full_error,
              full_error(ctx, compress::codec_by_name("int4-g64"), big.view(0, {32, 128})),
              1e-9 * s.full_error);
}

TEST(CodecSample, PlantedOutliersRaiseTheErrorAndAreCounted) {
  Allocator a;
  Context ctx(a, 1);
  Tensor x = gaussian(a, {64, 128}, 3);
  const compress::Codec& naive = compress::codec_by_name("int4-g64-naive");
  const CodecSample before = sample_codec(ctx, naive, x);
  EXPECT_EQ(before.outlier_share, 0);
  EXPECT_LT(before.max_over_sigma, 6);
  for (std::int64_t r = 0; r < 64; ++r) x.data<float>()[r * 128 + 5] = 200;  // one channel
  const CodecSample after = sample_codec(ctx, naive, x);
  EXPECT_NEAR(after.outlier_share, 1.0 / 128, 1e-12);
  EXPECT_GT(after.max_over_sigma, 7);
  // The other values of the outliers' groups lose their resolution: the bulk's error
  // grows many times, while the plain relative error (outliers dominate ||x||) does not.
  EXPECT_GT(after.tensor_error, 10 * before.tensor_error);
  EXPECT_LT(after.full_error, after.tensor_error);
}

TEST(CodecSample, AttentionProbabilitiesAreSampledAsWholeMatrices) {
  Allocator a;
  Context ctx(a, 1);
  const int T = 16;
  Tensor p = Tensor::zeros(a, {2, 2, T, T}, DType::f32, MemCategory::activations, "p");
  for (int m = 0; m < 4; ++m) {  // causal rows that sum to 1
    for (int i = 0; i < T; ++i) {
      for (int j = 0; j <= i; ++j) p.data<float>()[(m * T + i) * T + j] = 1.0f / (i + 1);
    }
  }
  const CodecSample s = sample_codec(ctx, compress::codec_by_name("softmax-u8"), p, T * T);
  EXPECT_EQ(s.elements, T * T);
  EXPECT_LT(s.tensor_error, 0.01);
}

TEST(CodecSample, GeluDerivativeCodecsAreComparedWithTheDerivative) {
  Allocator a;
  Context ctx(a, 1);
  const Tensor x = gaussian(a, {16, 64}, 4);
  const CodecSample s = sample_codec(ctx, compress::codec_by_name("gelu-deriv-u8"), x);
  EXPECT_LT(s.tensor_error, 0.01);  // against gelu'(x); against x it would be about 1
}

}  // namespace
}  // namespace adacc::evolve
