// The fp8-e4m3 codec: size formula (8 + numel), every finite E4M3 value (listed here from
// the format's definition) round-trips exactly at scale 1, round to nearest even, the
// relative error bound 2^-4 for normal values after scaling and the absolute bound
// 2^-10 * scale for subnormal ones, exact zeros, non-finite inputs rejected naming the
// first, mismatched decodes rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "adacc/compress/codec.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

Tensor round_trip(Context& ctx, const Tensor& x) {
  const Codec& c = codec_by_name("fp8-e4m3");
  Tensor enc = c.encode(ctx, x);
  EXPECT_EQ(enc.nbytes(), c.encoded_bytes(x.shape()));
  EXPECT_EQ(enc.nbytes(), static_cast<std::size_t>(8 + x.numel())) << shape_str(x.shape());
  EXPECT_EQ(enc.category(), MemCategory::compressed);
  Tensor y = Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace, "y");
  c.decode(ctx, enc, y);
  return y;
}

// Every finite E4M3 value: (-1)^s * 2^(e-7) * (1 + m/8) for e = 1..15 (not e=15, m=7: NaN)
// and (-1)^s * 2^-6 * m/8 for e = 0.
test::Vec all_e4m3_values() {
  test::Vec v;
  for (int s : {1, -1}) {
    for (int e = 0; e < 16; ++e) {
      for (int m = 0; m < 8; ++m) {
        if (e == 15 && m == 7) continue;
        v.push_back(s * (e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7)));
      }
    }
  }
  return v;
}

TEST(Fp8Codec, IsRegistered) {
  const std::vector<std::string> names = codec_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "fp8-e4m3"), names.end());
  EXPECT_EQ(codec_by_name("fp8-e4m3").name(), "fp8-e4m3");
}

TEST(Fp8Codec, EveryE4m3ValueRoundTripsExactlyAtScaleOne) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  const test::Vec v = all_e4m3_values();  // max |v| = 448, so scale = 1
  ASSERT_EQ(v.size(), 254u);
  ASSERT_EQ(*std::max_element(v.begin(), v.end()), 448.0);
  const auto n = static_cast<std::int64_t>(v.size());
  const test::Vec got = test::to_vec(round_trip(ctx, test::to_tensor(alloc, v, {n})));
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(got[i], v[i]) << i;
}

TEST(Fp8Codec, RoundsToNearestEven) {
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  const double u = std::ldexp(1.0, -9);  // the subnormal step
  // 448 fixes scale = 1. Ties: 1 + 2^-4 between 1 and 1.125 -> 1; 1 + 3*2^-4 between
  // 1.125 and 1.25 -> 1.25; 2^-10 between 0 and 2^-9 -> 0; 3*2^-10 between 2^-9 and 2^-8
  // -> 2^-8; 232 between 224 and 240 -> 224; 2^-6 - 2^-10 between 7*2^-9 and 2^-6 -> 2^-6.
  // Not ties: 1.07 -> 1.125, -300 -> -288, 100.1 -> 104.
  const test::Vec v = {448.0, 1.0625, 1.1875, u / 2, 1.5 * u, 232.0, std::ldexp(1.0, -6) - u / 2,
                       1.07,  -300.0, 100.1,  0.0,   -0.5};
  const test::Vec want = {448.0, 1.0,    1.25,  0.0, 2 * u, 224.0, std::ldexp(1.0, -6),
                          1.125, -288.0, 104.0, 0.0, -0.5};
  const test::Vec got = test::to_vec(round_trip(ctx, test::to_tensor(alloc, v, {12})));
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(got[i], want[i]) << i << ": " << v[i];
}

TEST(Fp8Codec, RoundTripsWithinItsBounds) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(4);
  for (const Shape& s : std::vector<Shape>{{1}, {17}, {3, 5, 7}, {2, 64, 96}, {100003}, {}}) {
    const auto n = static_cast<std::size_t>(shape_numel(s));
    // Wide dynamic range (2^-24 .. 2^16 times normal data) so that scaled values land in
    // the subnormal range too; a few exact zeros.
    test::Vec v = test::normal_vec(rng, n, 1.0);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = i % 11 == 3 ? 0.0 : std::ldexp(v[i], static_cast<int>(rng.uniform() * 40) - 24);
    }
    v = test::round_to_float(v);
    double amax = 0.0;
    for (double x : v) amax = std::max(amax, std::abs(x));
    const float scale_f = static_cast<float>(amax) / 448.0f;
    const double scale = scale_f > 0.0f ? scale_f : 1.0;
    const test::Vec got = test::to_vec(round_trip(ctx, test::to_tensor(alloc, v, s)));
    int normals = 0, subnormals = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (v[i] == 0.0) {
        ASSERT_EQ(got[i], 0.0) << i;
      } else if (std::abs(v[i]) / scale >= std::ldexp(1.0, -6)) {
        ++normals;
        ASSERT_LE(std::abs(got[i] - v[i]), std::ldexp(std::abs(v[i]), -4)) << i << " " << v[i];
      } else {
        ++subnormals;
        ASSERT_LE(std::abs(got[i] - v[i]), std::ldexp(scale, -10) * (1 + 1e-6)) << i << " " << v[i];
      }
    }
    if (n > 1000) {
      EXPECT_GT(subnormals, 100);
      EXPECT_GT(normals, 100);
    }
  }
}

TEST(Fp8Codec, AllZerosAndTinyValues) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  test::Vec zeros(37, 0.0);
  for (double g : test::to_vec(round_trip(ctx, test::to_tensor(alloc, zeros, {37})))) {
    EXPECT_EQ(g, 0.0);
  }
  // max |x| / 448 underflows to 0: scale 1, everything decodes to 0 (error < 1e-44).
  const float tiny = std::numeric_limits<float>::denorm_min();
  const test::Vec t = {tiny, -tiny, 0.0};
  for (double g : test::to_vec(round_trip(ctx, test::to_tensor(alloc, t, {3})))) {
    EXPECT_EQ(g, 0.0);
  }
}

TEST(Fp8Codec, NonFiniteInputsAreRejectedNamingTheFirst) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(2);
  const Codec& c = codec_by_name("fp8-e4m3");
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    Tensor x = test::to_tensor(alloc, test::normal_vec(rng, 450), {3, 150});
    x.data<float>()[301] = bad;
    x.data<float>()[437] = bad;
    test::expect_invalid([&] { c.encode(ctx, x); }, "fp8-e4m3", "non-finite element 301 ");
    x.data<float>()[2] = bad;
    test::expect_invalid([&] { c.encode(ctx, x); }, "fp8-e4m3", "non-finite element 2 ");
  }
}

TEST(Fp8Codec, DecodeRejectsMismatches) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(6);
  const Codec& c = codec_by_name("fp8-e4m3");
  Tensor x = test::to_tensor(alloc, test::normal_vec(rng, 256), {4, 64});
  Tensor enc = c.encode(ctx, x);
  Tensor wrong = Tensor::empty(alloc, {4, 65}, DType::f32, MemCategory::workspace, "y");
  test::expect_invalid([&] { c.decode(ctx, enc, wrong); }, "fp8-e4m3", "cannot decode");
  Tensor y = Tensor::empty(alloc, {4, 64}, DType::f32, MemCategory::workspace, "y");
  static_cast<std::uint8_t*>(enc.raw())[0] ^= 1;  // corrupt the magic
  test::expect_invalid([&] { c.decode(ctx, enc, y); }, "fp8-e4m3", "header");
}

}  // namespace
}  // namespace adacc::compress
