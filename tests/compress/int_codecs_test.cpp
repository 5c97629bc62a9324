// The integer codecs (int_codecs.cpp): encoded sizes against the formulas written out
// here, round-trip error within each codec's bound computed here from the data alone
// (per channel: scale/2; per group: scale/2 of the non-outlier range, widened by the fp16
// rounding of scale and zero), outliers (chosen here independently) restored
// bit-exactly, outlier extraction beating the naive int4 on heavy-tailed data with
// planted outliers, edge shapes, non-finite inputs rejected, unknown names rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "adacc/compress/codec.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

struct GroupSpec {
  const char* name;
  int bits, k;
  std::int64_t group = 64;
  bool stochastic = false;
};
constexpr GroupSpec kGroupCodecs[] = {
    {"int8-g64", 8, 0},       {"int8-g128", 8, 0, 128},        {"int4-g64", 4, 2},
    {"int4-g128", 4, 2, 128}, {"int4-g64-sr", 4, 2, 64, true}, {"int4-g64-naive", 4, 0},
    {"int2-g64", 2, 4},       {"int2-g128", 2, 4, 128},        {"int2-g64-sr", 2, 4, 64, true}};

const GroupSpec& spec(std::string_view name) {
  for (const GroupSpec& g : kGroupCodecs) {
    if (name == g.name) return g;
  }
  throw std::logic_error("no spec for " + std::string(name));
}

std::int64_t cols_of(const Shape& s) {
  return s.empty() ? 1 : s.back();
}
std::int64_t rows_of(const Shape& s) {
  const std::int64_t c = cols_of(s);
  return c == 0 ? 0 : shape_numel(s) / c;
}

std::size_t expected_bytes(const GroupSpec& g, const Shape& s) {
  const std::int64_t R = rows_of(s), C = cols_of(s);
  const std::int64_t ng = R * ((C + g.group - 1) / g.group);
  return static_cast<std::size_t>(16 + 4 * ng + 5 * g.k * ng + R * ((C * g.bits + 7) / 8));
}
std::size_t expected_channel_bytes(const Shape& s) {
  return static_cast<std::size_t>(16 + 4 * cols_of(s) + rows_of(s) * cols_of(s));
}

// Encodes and decodes x (checking the encoded size and category); returns the decoded
// values.
test::Vec round_trip(Context& ctx, const Codec& c, const Tensor& x, std::size_t want_bytes) {
  Tensor enc = c.encode(ctx, x);
  EXPECT_EQ(enc.nbytes(), want_bytes) << c.name() << " " << shape_str(x.shape());
  EXPECT_EQ(c.encoded_bytes(x.shape()), want_bytes) << c.name() << " " << shape_str(x.shape());
  EXPECT_EQ(enc.dtype(), DType::uint8);
  EXPECT_EQ(enc.category(), MemCategory::compressed);
  Tensor y = Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace, "y");
  c.decode(ctx, enc, y);
  return test::to_vec(y);
}

// Checks a per-group round trip of v (shape s) against the bound; returns nothing, fails
// on the first violation.
void check_group(const GroupSpec& g, const Shape& s, const test::Vec& v, const test::Vec& got) {
  const std::int64_t R = rows_of(s), C = cols_of(s);
  const double qmax = (1 << g.bits) - 1;
  for (std::int64_t r = 0; r < R; ++r) {
    for (std::int64_t j0 = 0; j0 < C; j0 += g.group) {
      const std::int64_t n = std::min<std::int64_t>(g.group, C - j0);
      const std::size_t base = static_cast<std::size_t>(r * C + j0);
      double mean = 0;
      for (std::int64_t j = 0; j < n; ++j) mean += v[base + j];
      mean /= static_cast<double>(n);
      // The k elements farthest from the mean (ties: lowest index).
      std::vector<std::int64_t> order(static_cast<std::size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return std::abs(v[base + a] - mean) > std::abs(v[base + b] - mean);
      });
      std::vector<bool> outlier(static_cast<std::size_t>(n), false);
      for (int i = 0; i < std::min<std::int64_t>(g.k, n); ++i) outlier[order[i]] = true;
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (std::int64_t j = 0; j < n; ++j) {
        if (outlier[j]) continue;
        lo = std::min(lo, v[base + j]);
        hi = std::max(hi, v[base + j]);
      }
      // scale/2 (stochastic rounding: scale), with the fp16 rounding of zero (down) and
      // scale (up) allowed for, plus f32 rounding of the decode.
      const double bound = (g.stochastic ? 1.0 : 0.5) *
                               (((hi - lo) + std::ldexp(std::abs(lo), -10) + std::ldexp(1.0, -24)) /
                                    qmax * (1 + std::ldexp(1.0, -10)) +
                                std::ldexp(1.0, -24)) +
                           1e-6 * std::max(std::abs(lo), std::abs(hi));
      for (std::int64_t j = 0; j < n; ++j) {
        const std::size_t i = base + static_cast<std::size_t>(j);
        if (outlier[j]) {
          const float a = static_cast<float>(v[i]), b = static_cast<float>(got[i]);
          ASSERT_EQ(std::memcmp(&a, &b, 4), 0)
              << g.name << " outlier " << i << ": " << v[i] << " decoded as " << got[i];
        } else {
          ASSERT_LE(std::abs(got[i] - v[i]), bound) << g.name << " " << shape_str(s) << " element "
                                                    << i << " range [" << lo << ", " << hi << "]";
        }
      }
    }
  }
}

void check_channel(const Shape& s, const test::Vec& v, const test::Vec& got) {
  const std::int64_t R = rows_of(s), C = cols_of(s);
  for (std::int64_t c = 0; c < C; ++c) {
    double m = 0;
    for (std::int64_t r = 0; r < R; ++r) m = std::max(m, std::abs(v[r * C + c]));
    const double bound = 0.5 * m / 127 * (1 + 1e-6) + 1e-7 * m;
    for (std::int64_t r = 0; r < R; ++r) {
      const std::size_t i = static_cast<std::size_t>(r * C + c);
      ASSERT_LE(std::abs(got[i] - v[i]), bound) << "int8-channel element " << i;
    }
  }
}

void check_all(Context& ctx, const Shape& s, const test::Vec& v) {
  Tensor x = test::to_tensor(ctx.allocator(), v, s);
  check_channel(s, v, round_trip(ctx, codec_by_name("int8-channel"), x, expected_channel_bytes(s)));
  for (const GroupSpec& g : kGroupCodecs) {
    check_group(g, s, v, round_trip(ctx, codec_by_name(g.name), x, expected_bytes(g, s)));
  }
}

TEST(IntCodecs, AreRegistered) {
  const std::vector<std::string> names = codec_names();
  for (const char* n : {"int8-channel", "int8-g64", "int8-g128", "int4-g64", "int4-g128",
                        "int4-g64-sr", "int4-g64-naive", "int2-g64", "int2-g128", "int2-g64-sr"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    EXPECT_EQ(codec_by_name(n).name(), n);
  }
  test::expect_invalid([] { codec_by_name("int3-g64"); }, "codec", "int3-g64");
  test::expect_invalid([] { codec_by_name("int4-g32"); }, "codec", "int4-g32");
}

TEST(IntCodecs, RoundTripNormalDataWithinBounds) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(3);
  for (const Shape& s : {Shape{4, 64, 96}, Shape{3, 130}, Shape{2, 3, 65}, Shape{1000}}) {
    const auto n = static_cast<std::size_t>(shape_numel(s));
    check_all(ctx, s, test::round_to_float(test::normal_vec(rng, n, 2.0)));
  }
}

// Heavy-tailed rows (normal times a log-normal scale) with three outlier channels (x40)
// and one spike per row.
test::Vec planted(Rng& rng, std::int64_t R, std::int64_t C) {
  test::Vec v(static_cast<std::size_t>(R * C));
  for (auto& x : v) x = rng.normal() * std::exp(0.5 * rng.normal());
  for (std::int64_t r = 0; r < R; ++r) {
    for (std::int64_t c : {5, 70, 200}) v[r * C + c] *= 40;
    v[r * C + static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(C))] =
        (rng.uniform() < 0.5 ? -1 : 1) * (30 + 20 * rng.uniform());
  }
  return test::round_to_float(v);
}

TEST(IntCodecs, HeavyTailedWithPlantedOutliers) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(9);
  const std::int64_t R = 96, C = 256;
  const test::Vec v = planted(rng, R, C);
  check_all(ctx, {R, C}, v);
  Tensor x = test::to_tensor(alloc, v, {R, C});
  const auto err = [&](const char* name, std::size_t bytes) {
    return test::rel_error(round_trip(ctx, codec_by_name(name), x, bytes), v);
  };
  const double with = err("int4-g64", expected_bytes(spec("int4-g64"), {R, C}));
  const double naive = err("int4-g64-naive", expected_bytes(spec("int4-g64-naive"), {R, C}));
  EXPECT_LT(3 * with, naive) << "int4-g64 " << with << " vs naive " << naive;
  const double int2 = err("int2-g64", expected_bytes(spec("int2-g64"), {R, C}));
  EXPECT_LT(int2, naive) << "int2-g64 " << int2 << " vs int4 naive " << naive;
  // Per-channel int8 absorbs outlier channels: small error.
  EXPECT_LT(err("int8-channel", expected_channel_bytes({R, C})), 3e-2);
}

// Stochastic rounding is unbiased: many copies of a value between two levels decode, on
// average, to the value (round-to-nearest decodes all of them to the nearer level), and
// encoding is deterministic.
TEST(IntCodecs, StochasticRoundingIsUnbiased) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  for (const auto& [sr, nearest] :
       {std::pair{"int4-g64-sr", "int4-g64"}, std::pair{"int2-g64-sr", "int2-g64"}}) {
    const GroupSpec& g = spec(sr);
    // Each row: levels spread over [0, 1] by two elements at 0 and 1 that are not outliers
    // (k copies of 1 and of 0 beyond them take the outlier slots), the rest 0.3 * scale
    // above a level.
    const std::int64_t R = 512, C = 64;
    const double scale = 1.0 / ((1 << g.bits) - 1);
    const double value = 0.3 * scale + scale;
    test::Vec v(static_cast<std::size_t>(R * C), value);
    for (std::int64_t r = 0; r < R; ++r) {
      for (int i = 0; i <= g.k; ++i) v[r * C + 2 * i] = 0.0, v[r * C + 2 * i + 1] = 1.0;
    }
    v = test::round_to_float(v);
    Tensor x = test::to_tensor(alloc, v, {R, C});
    const auto mean_of_values = [&](const char* name) {
      const test::Vec got =
          round_trip(ctx, codec_by_name(name), x, expected_bytes(spec(name), {R, C}));
      double sum = 0;
      std::int64_t n = 0;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != 0.0 && v[i] != 1.0) sum += got[i], ++n;
      }
      return sum / static_cast<double>(n);
    };
    const double mean_sr = mean_of_values(sr), mean_nearest = mean_of_values(nearest);
    EXPECT_NEAR(mean_nearest, scale, 1e-3 * scale) << nearest << " rounds 1.3 levels to 1";
    EXPECT_NEAR(mean_sr, value, 0.02 * scale) << sr << ": biased";
    const Codec& c = codec_by_name(sr);
    Tensor a = c.encode(ctx, x), b = c.encode(ctx, x);
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << sr;
  }
}

// Whole groups are encoded two at a time, an odd one alone: the bytes of a group do not
// depend on which way it went. Rows (one group each) are permuted so that every group is
// encoded both ways; its scale/zero, outliers and packed values must be the same.
TEST(IntCodecs, GroupBytesDoNotDependOnPairing) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(12);
  for (const GroupSpec& g : kGroupCodecs) {
    if (g.stochastic) continue;  // its rounding depends on the flat index by design
    const std::int64_t R = 3, C = g.group;
    const test::Vec v =
        test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(R * C)));
    test::Vec w(v.size());  // rows (2, 0, 1)
    for (std::int64_t r = 0; r < R; ++r) {
      std::copy_n(v.begin() + ((r + 2) % R) * C, C, w.begin() + r * C);
    }
    const Codec& c = codec_by_name(g.name);
    Tensor a = c.encode(ctx, test::to_tensor(alloc, v, {R, C}));
    Tensor b = c.encode(ctx, test::to_tensor(alloc, w, {R, C}));
    const auto* pa = static_cast<const std::uint8_t*>(a.raw());
    const auto* pb = static_cast<const std::uint8_t*>(b.raw());
    const std::size_t row_bytes = static_cast<std::size_t>(C * g.bits / 8);
    const std::size_t values = 16 + 4 * R, indices = values + 4 * g.k * R,
                      packed = indices + static_cast<std::size_t>(g.k * R);
    for (std::int64_t r = 0; r < R; ++r) {
      const std::int64_t rb = (r + 1) % R;  // row r of v is row rb of w
      SCOPED_TRACE(std::string(g.name) + " row " + std::to_string(r));
      EXPECT_EQ(std::memcmp(pa + 16 + 4 * r, pb + 16 + 4 * rb, 4), 0) << "scale/zero";
      EXPECT_EQ(std::memcmp(pa + values + 4 * g.k * r, pb + values + 4 * g.k * rb, 4 * g.k), 0);
      EXPECT_EQ(std::memcmp(pa + indices + g.k * r, pb + indices + g.k * rb, g.k), 0);
      EXPECT_EQ(std::memcmp(pa + packed + row_bytes * r, pb + packed + row_bytes * rb, row_bytes),
                0);
    }
  }
}

TEST(IntCodecs, EdgeShapes) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(4);
  for (const Shape& s : {Shape{1}, Shape{}, Shape{7}, Shape{5, 1}, Shape{3, 63}, Shape{2, 129},
                         Shape{1, 3}, Shape{0, 8}}) {
    const auto n = static_cast<std::size_t>(shape_numel(s));
    check_all(ctx, s, test::round_to_float(test::normal_vec(rng, n, 1.5)));
  }
}

TEST(IntCodecs, ConstantAndZeroInputs) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  for (double value : {0.0, 1.0, -3.25, 0.3, 1e-9}) {
    const Shape s{3, 100};
    const test::Vec v = test::round_to_float(test::Vec(300, value));
    check_all(ctx, s, v);
    Tensor x = test::to_tensor(alloc, v, s);
    // fp16-representable constants (and zero) come back exactly: scale 0, no division.
    if (value == 0.0 || value == 1.0 || value == -3.25) {
      for (const char* name : {"int8-channel", "int8-g64", "int4-g64", "int2-g64"}) {
        const Codec& c = codec_by_name(name);
        Tensor y = Tensor::empty(alloc, s, DType::f32, MemCategory::workspace, "y");
        c.decode(ctx, c.encode(ctx, x), y);
        EXPECT_EQ(test::to_vec(y), v) << name << " " << value;
      }
    }
  }
}

TEST(IntCodecs, OutliersBeyondFp16AreExactAndSameBytesForAnyThreadCount) {
  Allocator alloc;
  Context ctx1(alloc, 1, 1), ctx2(alloc, 2, 1);
  Rng rng(8);
  const Shape s{4, 200};
  test::Vec v = test::round_to_float(test::normal_vec(rng, 800));
  v[3] = 1e6;  // beyond fp16: only the outlier codecs can hold it
  v[517] = -3.5e7;
  Tensor x = test::to_tensor(alloc, v, s);
  for (const char* name : {"int4-g64", "int2-g64", "int4-g128", "int4-g64-sr", "int2-g64-sr"}) {
    const Codec& c = codec_by_name(name);
    Tensor e1 = c.encode(ctx1, x), e2 = c.encode(ctx2, x);
    ASSERT_EQ(std::memcmp(e1.raw(), e2.raw(), e1.nbytes()), 0) << name;
    Tensor y = Tensor::empty(alloc, s, DType::f32, MemCategory::workspace, "y");
    c.decode(ctx2, e1, y);
    EXPECT_EQ(y.data<float>()[3], 1e6f);
    EXPECT_EQ(y.data<float>()[517], -3.5e7f);
  }
  for (const char* name : {"int4-g64", "int4-g64-sr", "int2-g128"}) {
    const GroupSpec& g = spec(name);
    check_group(g, s, v, round_trip(ctx2, codec_by_name(name), x, expected_bytes(g, s)));
  }
  // Without outlier extraction the group's zero/scale overflow fp16: rejected.
  test::expect_invalid([&] { codec_by_name("int8-g64").encode(ctx2, x); }, "int8-g64",
                       "fp16 range");
  test::expect_invalid([&] { codec_by_name("int4-g64-naive").encode(ctx2, x); }, "int4-g64-naive",
                       "group 0");
  // int8-channel keeps an f32 scale: fine.
  check_channel(s, v,
                round_trip(ctx2, codec_by_name("int8-channel"), x, expected_channel_bytes(s)));
}

TEST(IntCodecs, NonFiniteInputsAreRejectedNamingTheFirst) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(2);
  const Shape s{3, 150};
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    Tensor x = test::to_tensor(alloc, test::normal_vec(rng, 450), s);
    x.data<float>()[301] = bad;
    x.data<float>()[437] = bad;
    x.data<float>()[2] = std::numeric_limits<float>::quiet_NaN();
    for (const std::string& name : codec_names()) {
      if (name.rfind("int", 0) != 0) continue;
      test::expect_invalid([&] { codec_by_name(name).encode(ctx, x); }, name,
                           "non-finite element 2 ");
    }
    x.data<float>()[2] = 0.0f;
    for (const std::string& name : codec_names()) {
      if (name.rfind("int", 0) != 0) continue;
      test::expect_invalid([&] { codec_by_name(name).encode(ctx, x); }, name,
                           "non-finite element 301 ");
    }
  }
}

TEST(IntCodecs, DecodeRejectsMismatches) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(6);
  Tensor x = test::to_tensor(alloc, test::normal_vec(rng, 256), {4, 64});
  const Codec& c = codec_by_name("int4-g64");
  Tensor enc = c.encode(ctx, x);
  Tensor wrong = Tensor::empty(alloc, {4, 65}, DType::f32, MemCategory::workspace, "y");
  test::expect_invalid([&] { c.decode(ctx, enc, wrong); }, "int4-g64", "cannot decode");
  // The right size but another codec's header.
  Tensor y = Tensor::empty(alloc, {4, 64}, DType::f32, MemCategory::workspace, "y");
  Tensor naive = codec_by_name("int4-g64-naive").encode(ctx, x);
  Tensor padded = Tensor::empty(alloc, {static_cast<std::int64_t>(enc.nbytes())}, DType::uint8,
                                MemCategory::compressed, "p");
  std::memset(padded.raw(), 0, padded.nbytes());
  std::memcpy(padded.raw(), naive.raw(), 16);  // the naive codec's header
  test::expect_invalid([&] { c.decode(ctx, padded, y); }, "int4-g64", "header");
}

}  // namespace
}  // namespace adacc::compress
