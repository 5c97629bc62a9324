// Codec error measures: the bf16 round trip's relative error is within half a bf16 ulp
// (2^-8), an int8 codec's is larger, the weight-gradient error is 0 for a tensor that bf16
// represents exactly and, for random data, matches a float64 computation from the codec's
// round trip and stays within the bound 2^-8 ||dy|| ||x|| / ||dyᵀx||; shape errors throw.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/compress/codec_error.h"
#include "reference/test_util.h"

namespace adacc::compress {
namespace {

// x̂ = decode(encode(x)) through the codec, as float64.
test::Vec round_trip(Context& ctx, const Codec& codec, const Tensor& x) {
  Tensor y = Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace, "y");
  codec.decode(ctx, codec.encode(ctx, x), y);
  return test::to_vec(y);
}

// dy (N,OC), x (N,IC) -> dyᵀ x (OC,IC) in float64
test::Vec weight_grad(const test::Vec& dy, const test::Vec& x, int n, int oc, int ic) {
  test::Vec dw(static_cast<std::size_t>(oc) * ic, 0.0);
  for (int r = 0; r < n; ++r) {
    for (int o = 0; o < oc; ++o) {
      for (int i = 0; i < ic; ++i) dw[o * ic + i] += dy[r * oc + o] * x[r * ic + i];
    }
  }
  return dw;
}

double norm(const test::Vec& v) {
  double s = 0;
  for (double a : v) s += a * a;
  return std::sqrt(s);
}

TEST(CodecError, Bf16WithinHalfUlpAndInt8Larger) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(3);
  const test::Vec v = test::round_to_float(test::normal_vec(rng, 37 * 200, 2.0));
  Tensor x = test::to_tensor(alloc, v, {37, 200});
  const double bf16 = relative_l2_error(ctx, codec_by_name("bf16"), x);
  EXPECT_GT(bf16, 0.0);
  EXPECT_LE(bf16, std::ldexp(1.0, -8));
  // The same measure computed here in float64 from the codec's round trip.
  const test::Vec y = round_trip(ctx, codec_by_name("bf16"), x);
  EXPECT_NEAR(bf16, test::rel_error(y, v), 1e-6 * bf16);
  for (const char* name : {"int8-g64", "int8-channel"}) {
    const double e = relative_l2_error(ctx, codec_by_name(name), x);
    EXPECT_GT(e, bf16) << name;
    EXPECT_LT(e, 0.05) << name;
  }
  // The round trip's buffers are returned to the allocator.
  EXPECT_EQ(alloc.stats().current[static_cast<int>(MemCategory::workspace)], 0u);
  EXPECT_EQ(alloc.stats().current[static_cast<int>(MemCategory::compressed)], 0u);
}

TEST(CodecError, ZeroForExactTensors) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(4);
  test::Vec ints(24 * 17);
  for (auto& a : ints) a = static_cast<double>(static_cast<int>(rng.next_u64() % 33) - 16);
  Tensor x = test::to_tensor(alloc, ints, {4, 6, 17});
  const Codec& bf16 = codec_by_name("bf16");
  EXPECT_EQ(relative_l2_error(ctx, bf16, x), 0.0);
  Tensor zeros = Tensor::zeros(alloc, {5, 3}, DType::f32, MemCategory::activations, "z");
  EXPECT_EQ(relative_l2_error(ctx, bf16, zeros), 0.0);
  const test::Vec g = test::round_to_float(test::normal_vec(rng, 24 * 9));
  Tensor dy = test::to_tensor(alloc, g, {4, 6, 9}, "dy");
  EXPECT_EQ(linear_weight_grad_error(ctx, bf16, x, dy), 0.0);
  // All-zero x: dW is zero with or without the codec.
  Tensor zx = Tensor::zeros(alloc, {24, 17}, DType::f32, MemCategory::activations, "zx");
  EXPECT_EQ(linear_weight_grad_error(ctx, bf16, zx, dy.reshape({24, 9})), 0.0);
}

TEST(CodecError, Bf16WeightGradientWithinItsBound) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(5);
  // N deliberately not a multiple of any tile, IC and OC not of the vector width.
  const int n = 203, ic = 45, oc = 19;
  const test::Vec xv = test::round_to_float(test::normal_vec(rng, n * ic, 1.5));
  const test::Vec dyv = test::round_to_float(test::normal_vec(rng, n * oc, 0.1));
  Tensor x = test::to_tensor(alloc, xv, {n, ic});
  Tensor dy = test::to_tensor(alloc, dyv, {n, oc}, "dy");
  const Codec& bf16 = codec_by_name("bf16");
  const double err = linear_weight_grad_error(ctx, bf16, x, dy);
  // |x̂ - x| <= 2^-8 |x| elementwise, so ||dyᵀ(x̂ - x)|| <= ||dy|| ||x̂ - x|| <= 2^-8 ||dy|| ||x||
  // (Frobenius norms, Cauchy-Schwarz per entry); relative to ||dyᵀx||.
  const test::Vec dw = weight_grad(dyv, xv, n, oc, ic);
  const double bound = std::ldexp(1.0, -8) * norm(dyv) * norm(xv) / norm(dw);
  EXPECT_GT(err, 0.0);
  EXPECT_LE(err, bound);
  // And it is the float64 error of dW computed from the codec's x̂.
  const test::Vec dw_hat = weight_grad(dyv, round_trip(ctx, bf16, x), n, oc, ic);
  EXPECT_NEAR(err, test::rel_error(dw_hat, dw), 1e-4 * err);
  // A coarser codec disturbs the gradient more.
  EXPECT_GT(linear_weight_grad_error(ctx, codec_by_name("int8-g64"), x, dy), err);
}

TEST(CodecError, ShapeMismatchesThrow) {
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  const Codec& bf16 = codec_by_name("bf16");
  Tensor x = Tensor::zeros(alloc, {6, 8}, DType::f32, MemCategory::activations, "x");
  Tensor dy_rows = Tensor::zeros(alloc, {5, 3}, DType::f32, MemCategory::activations, "dy");
  Tensor dy_lead = Tensor::zeros(alloc, {2, 3, 3}, DType::f32, MemCategory::activations, "dy3");
  Tensor dy_int = Tensor::zeros(alloc, {6, 3}, DType::int32, MemCategory::activations, "dyi");
  for (const Tensor* dy : {&dy_rows, &dy_lead, &dy_int}) {
    try {
      linear_weight_grad_error(ctx, bf16, x, *dy);
      ADD_FAILURE() << dy->describe();
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("linear_weight_grad_error"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(linear_weight_grad_error(ctx, bf16, dy_int, x), InvalidArgument);
  EXPECT_THROW(relative_l2_error(ctx, bf16, dy_int), InvalidArgument);
  EXPECT_THROW(linear_weight_grad_error(ctx, bf16, x, Tensor()), InvalidArgument);
}

}  // namespace
}  // namespace adacc::compress
