// The softmax-u8 codec: size 16 + 4 bytes per row + (number of j <= i positions, counted
// here), round trip within rowmax/510 per stored probability (plus f32 rounding), so
// rows of small probabilities keep their precision; exact zeros above the
// diagonal whatever the input held there, exact 0 and 1, T = 1, non-square or rank < 2
// shapes and probabilities outside [0,1] rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "adacc/compress/codec.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

// Causal softmax rows of random logits over (M,T,T); `above` fills j > i.
test::Vec causal_probs(Rng& rng, std::int64_t m, std::int64_t t, double above) {
  test::Vec p(static_cast<std::size_t>(m * t * t), above);
  for (std::int64_t r = 0; r < m * t; ++r) {
    const std::int64_t i = r % t;
    double sum = 0.0;
    for (std::int64_t j = 0; j <= i; ++j) {
      p[r * t + j] = std::exp(3.0 * rng.normal());
      sum += p[r * t + j];
    }
    for (std::int64_t j = 0; j <= i; ++j) p[r * t + j] /= sum;
  }
  return test::round_to_float(p);
}

TEST(SoftmaxCodec, IsRegistered) {
  const std::vector<std::string> names = codec_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "softmax-u8"), names.end());
  EXPECT_EQ(codec_by_name("softmax-u8").name(), "softmax-u8");
}

TEST(SoftmaxCodec, RoundTripsTheLowerTriangleWithinItsBound) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(7);
  const Codec& c = codec_by_name("softmax-u8");
  for (const Shape& s : std::vector<Shape>{
           {1, 1, 1, 1}, {2, 3, 5, 5}, {1, 12, 64, 64}, {2, 2, 37, 37}, {3, 1, 1}, {9, 9}}) {
    const std::int64_t t = s.back(), m = shape_numel(s) / (t * t);
    test::Vec p = causal_probs(rng, m, t, 0.5);  // 0.5 above the diagonal: not stored
    p[0] = 1.0;                                  // row 0 of a causal softmax is (1, 0, ...)
    if (p.size() > 10) p[p.size() - 1] = 0.0;    // the last row's last element
    Tensor x = test::to_tensor(alloc, p, s);
    Tensor enc = c.encode(ctx, x);
    std::size_t stored = 0;
    for (std::int64_t i = 0; i < t; ++i) {
      for (std::int64_t j = 0; j < t; ++j) stored += j <= i ? 1 : 0;
    }
    EXPECT_EQ(enc.nbytes(), 16 + static_cast<std::size_t>(m) * (4 * t + stored)) << shape_str(s);
    EXPECT_EQ(c.encoded_bytes(s), enc.nbytes());
    EXPECT_EQ(enc.category(), MemCategory::compressed);
    Tensor y = Tensor::empty(alloc, s, DType::f32, MemCategory::workspace, "y");
    std::fill(y.data<float>(), y.data<float>() + y.numel(), 7.0f);  // decode overwrites all
    c.decode(ctx, enc, y);
    const test::Vec got = test::to_vec(y);
    EXPECT_EQ(got[0], 1.0);
    if (p.size() > 10) {
      EXPECT_EQ(got.back(), 0.0);
    }
    for (std::int64_t r = 0; r < m * t; ++r) {
      const std::int64_t i = r % t;
      double rowmax = 0;
      for (std::int64_t j = 0; j <= i; ++j) rowmax = std::max(rowmax, p[r * t + j]);
      const double bound = rowmax / 510.0 * (1 + 1e-6) + std::ldexp(rowmax, -22);
      for (std::int64_t j = 0; j < t; ++j) {
        const std::size_t k = static_cast<std::size_t>(r * t + j);
        if (j <= i) {
          ASSERT_LE(std::abs(got[k] - p[k]), bound) << shape_str(s) << " " << k;
        } else {
          ASSERT_EQ(got[k], 0.0) << shape_str(s) << " " << k;
        }
      }
    }
  }
}

TEST(SoftmaxCodec, RejectsShapesThatAreNotSquareMatrices) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  const Codec& c = codec_by_name("softmax-u8");
  for (const Shape& s : std::vector<Shape>{{2, 3, 4, 5}, {4, 5}, {7}, {}}) {
    test::expect_invalid([&] { c.encoded_bytes(s); }, "softmax-u8", "last two dimensions equal");
    Tensor x = test::to_tensor(alloc, test::Vec(static_cast<std::size_t>(shape_numel(s)), 0.0), s);
    test::expect_invalid([&] { c.encode(ctx, x); }, "softmax-u8", "last two dimensions equal");
  }
}

TEST(SoftmaxCodec, RejectsValuesOutsideTheUnitIntervalNamingTheFirst) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(8);
  const Codec& c = codec_by_name("softmax-u8");
  const Shape s{2, 2, 9, 9};
  for (const float bad : {-0.01f, 1.0001f, std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity()}) {
    Tensor x = test::to_tensor(alloc, causal_probs(rng, 4, 9, 0.0), s);
    // Flat 250 = matrix 3, row 0, column 7: above the diagonal, not stored, not checked.
    x.data<float>()[250] = bad;
    EXPECT_NO_THROW(c.encode(ctx, x));
    x.data<float>()[300] = bad;  // matrix 3, row 6, column 3
    x.data<float>()[310] = bad;  // matrix 3, row 7, column 4
    test::expect_invalid([&] { c.encode(ctx, x); }, "softmax-u8", "element 300 ");
    x.data<float>()[90] = bad;  // matrix 1, row 1, column 0
    test::expect_invalid([&] { c.encode(ctx, x); }, "softmax-u8", "element 90 ");
  }
}

TEST(SoftmaxCodec, DecodeRejectsMismatches) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(9);
  const Codec& c = codec_by_name("softmax-u8");
  Tensor x = test::to_tensor(alloc, causal_probs(rng, 2, 8, 0.0), {1, 2, 8, 8});
  Tensor enc = c.encode(ctx, x);
  Tensor wrong = Tensor::empty(alloc, {1, 2, 9, 9}, DType::f32, MemCategory::workspace, "y");
  test::expect_invalid([&] { c.decode(ctx, enc, wrong); }, "softmax-u8", "cannot decode");
  Tensor y = Tensor::empty(alloc, {1, 2, 8, 8}, DType::f32, MemCategory::workspace, "y");
  static_cast<std::uint8_t*>(enc.raw())[0] ^= 1;  // corrupt the magic
  test::expect_invalid([&] { c.decode(ctx, enc, y); }, "softmax-u8", "header");
}

}  // namespace
}  // namespace adacc::compress
