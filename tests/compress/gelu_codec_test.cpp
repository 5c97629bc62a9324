// The GELU-derivative codecs (gelu_codec.cpp): the fixed interval they quantize over holds
// gelu'(x) for every x and is not much wider than its true range; decode gives gelu'(x)
// (the very function the GELU backward uses) within half a quantization step; encoded
// sizes equal the formula; edge shapes (empty, one element, odd counts for 4 bits);
// non-finite inputs rejected naming the first; the registry gives these codecs to the
// GELU input role only, and they declare that they decode to a derivative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "adacc/compress/codec.h"
#include "adacc/ops/gelu_math.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

namespace gm = ops::gelu_math;

TEST(GeluCodec, DerivativeBoundsHoldEverywhereAndAreTight) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (double x = -30.0; x <= 30.0; x += 1e-4) {
    const float d = gm::gelu_derivative(static_cast<float>(x));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  for (float x : {-3e38f, -1e10f, -100.0f, 100.0f, 1e10f, 3e38f, 0.0f, -0.0f}) {
    const float d = gm::gelu_derivative(x);
    ASSERT_TRUE(std::isfinite(d)) << x;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, gm::kDerivativeMin);
  EXPECT_LE(hi, gm::kDerivativeMax);
  EXPECT_LT(lo, gm::kDerivativeMin + 0.005f) << "lower bound looser than needed";
  EXPECT_GT(hi, gm::kDerivativeMax - 0.005f) << "upper bound looser than needed";
}

struct Spec {
  const char* name;
  int bits;
};
constexpr Spec kSpecs[] = {{"gelu-deriv-u8", 8}, {"gelu-deriv-u4", 4}};

TEST(GeluCodec, RoundTripGivesTheDerivativeWithinHalfAStep) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(5);
  for (const Spec& sp : kSpecs) {
    const Codec& c = codec_by_name(sp.name);
    EXPECT_EQ(c.decodes_to(), model::SavedForm::gelu_derivative);
    const double step = (gm::kDerivativeMax - gm::kDerivativeMin) / ((1 << sp.bits) - 1);
    for (const Shape& s : std::vector<Shape>{{}, {1}, {0}, {7}, {3, 5}, {4, 64, 96}, {1, 100003}}) {
      const auto n = static_cast<std::size_t>(shape_numel(s));
      test::Vec v = test::round_to_float(test::normal_vec(rng, n, 2.0));
      if (n > 3) v[0] = -1.5, v[1] = 1.5, v[2] = 0.0, v[3] = -40.0;  // the extremes, 0, flat
      Tensor x = test::to_tensor(alloc, v, s);
      Tensor enc = c.encode(ctx, x);
      const std::size_t want = 16 + (n * static_cast<std::size_t>(sp.bits) + 7) / 8;
      EXPECT_EQ(enc.nbytes(), want) << sp.name << " " << shape_str(s);
      EXPECT_EQ(c.encoded_bytes(s), want);
      EXPECT_EQ(enc.category(), MemCategory::compressed);
      Tensor y = Tensor::empty(alloc, s, DType::f32, MemCategory::workspace, "y");
      c.decode(ctx, enc, y);
      const float* got = y.data<float>();
      for (std::size_t i = 0; i < n; ++i) {
        const double d = gm::gelu_derivative(static_cast<float>(v[i]));
        ASSERT_LE(std::abs(got[i] - d), step / 2 * (1 + 1e-5) + 1e-6)
            << sp.name << " x=" << v[i] << " at " << i;
      }
    }
  }
}

TEST(GeluCodec, NonFiniteInputsAreRejectedNamingTheFirst) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  for (const Spec& sp : kSpecs) {
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      test::Vec v(40000, 0.5);
      Tensor x = test::to_tensor(alloc, v, {200, 200});
      x.data<float>()[33333] = bad;
      x.data<float>()[39999] = bad;
      test::expect_invalid([&] { codec_by_name(sp.name).encode(ctx, x); }, sp.name, "33333");
    }
  }
}

TEST(GeluCodec, AppliesToTheGeluInputOnly) {
  for (const Spec& sp : kSpecs) {
    const Codec& c = codec_by_name(sp.name);
    for (int r = 0; r < model::kNumTensorRoles; ++r) {
      const auto role = static_cast<model::TensorRole>(r);
      EXPECT_EQ(c.applies_to(role), role == model::TensorRole::gelu_in)
          << sp.name << " " << model::tensor_role_name(role);
    }
  }
  const std::vector<std::string> for_gelu = codecs_for_role(model::TensorRole::gelu_in);
  EXPECT_NE(std::find(for_gelu.begin(), for_gelu.end(), "gelu-deriv-u8"), for_gelu.end());
  EXPECT_NE(std::find(for_gelu.begin(), for_gelu.end(), "int4-g64"), for_gelu.end());
  const std::vector<std::string> for_norm = codecs_for_role(model::TensorRole::norm_out);
  EXPECT_EQ(std::find(for_norm.begin(), for_norm.end(), "gelu-deriv-u8"), for_norm.end());
  EXPECT_TRUE(codecs_for_role(model::TensorRole::norm_stats).empty());
  EXPECT_EQ(codecs_for_role(model::TensorRole::attn_probs).back(), "softmax-u8");
}

}  // namespace
}  // namespace adacc::compress
