// The bf16 codec: size formula, round trip within 2^-8 relative per element (half a bf16 ulp),
// round to nearest even, NaN and inf preserved, unknown codec names rejected.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "adacc/compress/codec.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

TEST(Bf16Codec, RoundTripsWithinItsBound) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(1);
  const Codec& c = codec_by_name("bf16");
  for (std::int64_t n : {1, 17, 100003}) {
    const test::Vec v =
        test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(n), 3.0));
    Tensor x = test::to_tensor(alloc, v, {n});
    Tensor enc = c.encode(ctx, x);
    EXPECT_EQ(enc.nbytes(), c.encoded_bytes({n}));
    EXPECT_EQ(enc.nbytes(), static_cast<std::size_t>(2 * n));
    EXPECT_EQ(enc.category(), MemCategory::compressed);
    Tensor y = Tensor::empty(alloc, {n}, DType::f32, MemCategory::workspace, "y");
    c.decode(ctx, enc, y);
    const test::Vec got = test::to_vec(y);
    for (std::size_t i = 0; i < v.size(); ++i) {
      ASSERT_LE(std::abs(got[i] - v[i]), std::ldexp(std::abs(v[i]), -8)) << i;
    }
  }
}

TEST(Bf16Codec, RoundsToNearestEvenAndKeepsSpecials) {
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  const float inf = std::numeric_limits<float>::infinity();
  // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties go to the even one (1).
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
  const test::Vec v = {
      1.0 + std::ldexp(1.0, -8), 1.0 + 3 * std::ldexp(1.0, -8), -2.5, 0.0, inf, -inf};
  Tensor x = test::to_tensor(alloc, v, {6});
  x.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  const Codec& c = codec_by_name("bf16");
  Tensor y = Tensor::empty(alloc, {6}, DType::f32, MemCategory::workspace, "y");
  c.decode(ctx, c.encode(ctx, x), y);
  const float* r = y.data<float>();
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[1], 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(r[2], -2.5f);
  EXPECT_TRUE(std::isnan(r[3]));
  EXPECT_EQ(r[4], inf);
  EXPECT_EQ(r[5], -inf);
  EXPECT_THROW(codec_by_name("int3"), InvalidArgument);
}

}  // namespace
}  // namespace adacc::compress
