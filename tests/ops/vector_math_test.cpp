// sum_of_squares and scale_inplace against float64 loops; NaN and inf propagate.
#include "adacc/ops/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "reference/test_util.h"

namespace adacc {
namespace {

TEST(VectorMath, SumOfSquaresMatchesFloat64) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(4);
  for (std::int64_t n : {1, 13, 4096, 4097, 100003}) {
    const test::Vec v = test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(n)));
    Tensor t = test::to_tensor(alloc, v, {n});
    double ref = 0;
    for (double x : v) ref += x * x;
    EXPECT_NEAR(ops::sum_of_squares(ctx, t), ref, 1e-6 * ref) << n;
  }
}

TEST(VectorMath, NonFiniteValuesPropagate) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Tensor t = Tensor::zeros(alloc, {10000}, DType::f32, MemCategory::grads, "g");
  t.data<float>()[7777] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ops::sum_of_squares(ctx, t)));
  t.data<float>()[7777] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(ops::sum_of_squares(ctx, t)));
}

TEST(VectorMath, ScaleMultipliesEveryElement) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  Rng rng(2);
  const test::Vec v = test::round_to_float(test::normal_vec(rng, 1001));
  Tensor t = test::to_tensor(alloc, v, {1001});
  ops::scale_inplace(ctx, t, 0.25f);
  const test::Vec got = test::to_vec(t);
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(got[i], static_cast<float>(v[i] * 0.25));
  Tensor i32 = Tensor::zeros(alloc, {3}, DType::int32, MemCategory::workspace, "i");
  EXPECT_THROW(ops::scale_inplace(ctx, i32, 2.0f), InvalidArgument);
}

}  // namespace
}  // namespace adacc
