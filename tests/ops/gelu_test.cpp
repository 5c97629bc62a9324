// GELU: the fp32 kernel (exp-based, see gelu.cpp) against the float64 reference over the whole
// input range, the reference's backward against finite differences, accumulation,
// in-place use, errors.
#include "adacc/ops/gelu.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "adacc/core/context.h"
#include "adacc/core/error.h"
#include "adacc/ops/gelu_math.h"
#include "reference/gelu_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

// Normal inputs widened to reach the tails, plus zero, tiny, saturating and huge values.
Vec gelu_inputs(Rng& rng, std::size_t n) {
  Vec v = test::normal_vec(rng, n, 3.0);
  const double special[] = {0.0,  1e-30, -1e-30, 1e-4, -1e-4, 0.5,  -0.5,  3.0, -3.0, 5.0,
                            -5.0, 7.9,   -7.9,   10.0, -10.0, 40.0, -40.0, 1e6, -1e6};
  for (std::size_t i = 0; i < std::size(special) && i < n; ++i) v[i] = special[i];
  return test::round_to_float(v);
}

void check_against_reference(const Shape& shape, std::uint64_t seed) {
  SCOPED_TRACE("inp " + shape_str(shape));
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(seed);
  const std::size_t n = static_cast<std::size_t>(shape_numel(shape));
  const Vec inp = gelu_inputs(rng, n);
  const Vec dout = test::round_to_float(test::random_vec(rng, n));
  const Vec dinp0 = test::round_to_float(test::random_vec(rng, n));

  Tensor t_inp = test::to_tensor(alloc, inp, shape, "inp");
  Tensor t_out = Tensor::empty(alloc, shape, DType::f32, MemCategory::activations, "out");
  ops::gelu_forward(ctx, t_inp, t_out);
  Vec out;
  ref::gelu_forward(inp, out);
  EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-6);
  // Elementwise too: an error on a few elements hides in an L2 norm.
  const Vec got = test::to_vec(t_out);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(got[i], out[i], 1e-6 * std::abs(out[i]) + 1e-7) << "x=" << inp[i];
  }

  Tensor t_dout = test::to_tensor(alloc, dout, shape, "dout");
  Tensor t_dinp = test::to_tensor(alloc, dinp0, shape, "dinp");
  ops::gelu_backward(ctx, t_dout, t_inp, t_dinp);
  Vec grad(n, 0.0);
  ref::gelu_backward(dout, inp, grad);
  const Vec dinp = test::to_vec(t_dinp);
  Vec increment(n), sum(n);
  for (std::size_t i = 0; i < n; ++i) {
    increment[i] = dinp[i] - dinp0[i];
    sum[i] = dinp0[i] + grad[i];
    ASSERT_NEAR(increment[i], grad[i], 1e-6 * std::abs(dinp[i]) + 1e-6) << "x=" << inp[i];
  }
  EXPECT_LT(test::rel_error(increment, grad), 1e-5);
  EXPECT_LT(test::rel_error(dinp, sum), 1e-5);
}

TEST(Gelu, MatchesReferenceOnEdgeAndRealisticShapes) {
  check_against_reference({13}, 1);
  check_against_reference({1, 7, 20}, 2);
  check_against_reference({2, 64, 96 * 4}, 3);  // (B,T,4C), the MLP's hidden layer
  check_against_reference({3, 5, 1001}, 4);
}

// The backward from a stored derivative, given gelu_math's exact derivative, equals the
// backward from the input bit for bit (the GELU-derivative codecs rely on this).
TEST(Gelu, BackwardFromTheDerivativeEqualsTheBackwardFromTheInput) {
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(6);
  const std::size_t n = 40000;
  const Vec inp = gelu_inputs(rng, n);
  Vec deriv(n);
  for (std::size_t i = 0; i < n; ++i) {
    deriv[i] = ops::gelu_math::gelu_derivative(static_cast<float>(inp[i]));
  }
  const Vec dout = test::round_to_float(test::random_vec(rng, n));
  const Vec dinp0 = test::round_to_float(test::random_vec(rng, n));
  const Shape shape{40, 1000};
  Tensor t_dout = test::to_tensor(alloc, dout, shape, "dout");
  Tensor a = test::to_tensor(alloc, dinp0, shape, "a"),
         b = test::to_tensor(alloc, dinp0, shape, "b");
  ops::gelu_backward(ctx, t_dout, test::to_tensor(alloc, inp, shape, "inp"), a);
  ops::gelu_backward_from_derivative(ctx, t_dout, test::to_tensor(alloc, deriv, shape, "d"), b);
  EXPECT_EQ(test::to_vec(a), test::to_vec(b));
  Tensor wrong = Tensor::empty(alloc, {40, 999}, DType::f32, MemCategory::workspace, "w");
  EXPECT_THROW(ops::gelu_backward_from_derivative(ctx, t_dout, wrong, b), InvalidArgument);
}

TEST(Gelu, WorksInPlace) {
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(5);
  const Vec inp = gelu_inputs(rng, 5000);
  Tensor t = test::to_tensor(alloc, inp, {5000}, "x");
  ops::gelu_forward(ctx, t, t);
  Vec out;
  ref::gelu_forward(inp, out);
  EXPECT_LT(test::rel_error(test::to_vec(t), out), 1e-6);
}

TEST(GeluReference, BackwardMatchesFiniteDifferences) {
  Rng rng(8);
  Vec inp = test::normal_vec(rng, 50, 2.0);
  const Vec w = test::random_vec(rng, inp.size());
  auto loss = [&] {
    Vec out;
    ref::gelu_forward(inp, out);
    return test::dot(w, out);
  };
  Vec grad(inp.size(), 0.0);
  ref::gelu_backward(w, inp, grad);
  Vec fd(inp.size());
  for (std::size_t i = 0; i < inp.size(); ++i) fd[i] = test::finite_difference(loss, inp, i);
  EXPECT_LT(test::rel_error(grad, fd), 1e-6);
}

TEST(GeluReference, KnownValues) {
  // gelu(0) = 0, gelu(x) -> x for large x and -> 0 for very negative x, and at x = 1
  // 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.8411919906082768 (tanh approximation).
  Vec out;
  ref::gelu_forward({0.0, 1.0, 20.0, -20.0}, out);
  EXPECT_EQ(out[0], 0.0);
  EXPECT_NEAR(out[1], 0.8411919906082768, 1e-15);
  EXPECT_NEAR(out[2], 20.0, 1e-12);
  EXPECT_NEAR(out[3], 0.0, 1e-12);
}

TEST(Gelu, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  auto f32 = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "x");
  };
  Tensor inp = f32({4, 6}), out = f32({4, 6}), bad = f32({6, 4});
  test::expect_invalid([&] { ops::gelu_forward(ctx, inp, bad); }, "gelu_forward", "out");
  test::expect_invalid([&] { ops::gelu_backward(ctx, bad, inp, out); }, "gelu_backward", "dout");
  test::expect_invalid([&] { ops::gelu_backward(ctx, out, inp, bad); }, "gelu_backward", "dinp");
  Tensor ints = Tensor::zeros(alloc, {4, 6}, DType::int32, MemCategory::activations, "i");
  test::expect_invalid([&] { ops::gelu_forward(ctx, ints, out); }, "gelu_forward", "inp");
}

}  // namespace
}  // namespace adacc
