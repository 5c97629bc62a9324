// Residual add: the fp32 kernel against the float64 reference, the reference's backward
// against finite differences, accumulation, in-place and aliased use, errors.
#include "adacc/ops/residual.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "adacc/core/context.h"
#include "reference/residual_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

void check_against_reference(const Shape& shape, std::uint64_t seed) {
  SCOPED_TRACE("shape " + shape_str(shape));
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(seed);
  const std::size_t n = static_cast<std::size_t>(shape_numel(shape));
  const Vec a = test::round_to_float(test::random_vec(rng, n));
  const Vec b = test::round_to_float(test::random_vec(rng, n));
  const Vec dout = test::round_to_float(test::random_vec(rng, n));
  const Vec da0 = test::round_to_float(test::random_vec(rng, n));
  const Vec db0 = test::round_to_float(test::random_vec(rng, n));

  Tensor t_a = test::to_tensor(alloc, a, shape, "a");
  Tensor t_b = test::to_tensor(alloc, b, shape, "b");
  Tensor t_out = Tensor::empty(alloc, shape, DType::f32, MemCategory::activations, "out");
  ops::residual_forward(ctx, t_a, t_b, t_out);
  Vec out;
  ref::residual_forward(a, b, out);
  EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-7);

  Tensor t_dout = test::to_tensor(alloc, dout, shape, "dout");
  Tensor t_da = test::to_tensor(alloc, da0, shape, "da");
  Tensor t_db = test::to_tensor(alloc, db0, shape, "db");
  ops::residual_backward(ctx, t_dout, t_da, t_db);
  Vec da = da0, db = db0;
  ref::residual_backward(dout, da, db);
  EXPECT_LT(test::rel_error(test::to_vec(t_da), da), 1e-7);
  EXPECT_LT(test::rel_error(test::to_vec(t_db), db), 1e-7);
}

TEST(Residual, MatchesReferenceOnEdgeAndRealisticShapes) {
  check_against_reference({13}, 1);
  check_against_reference({1, 7, 20}, 2);
  check_against_reference({2, 64, 96}, 3);
  check_against_reference({3, 37, 771}, 4);  // large enough to be threaded, odd length
}

TEST(Residual, WorksInPlaceAndWithOneGradientForBothInputs) {
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(6);
  const std::size_t n = 40001;  // threaded, not a multiple of the vector width
  const Vec a = test::round_to_float(test::random_vec(rng, n));
  const Vec b = test::round_to_float(test::random_vec(rng, n));
  Vec sum;
  ref::residual_forward(a, b, sum);
  Tensor t_a = test::to_tensor(alloc, a, {std::int64_t(n)}, "a");
  Tensor t_b = test::to_tensor(alloc, b, {std::int64_t(n)}, "b");
  ops::residual_forward(ctx, t_a, t_b, t_a);  // a += b
  EXPECT_LT(test::rel_error(test::to_vec(t_a), sum), 1e-7);

  // y = x + x: one gradient tensor passed as da and db receives dout twice.
  const Vec dout = test::round_to_float(test::random_vec(rng, n));
  const Vec g0 = test::round_to_float(test::random_vec(rng, n));
  Tensor t_dout = test::to_tensor(alloc, dout, {std::int64_t(n)}, "dout");
  Tensor t_g = test::to_tensor(alloc, g0, {std::int64_t(n)}, "g");
  ops::residual_backward(ctx, t_dout, t_g, t_g);
  Vec g = g0;
  ref::residual_backward(dout, g, g);
  EXPECT_LT(test::rel_error(test::to_vec(t_g), g), 1e-7);
}

TEST(ResidualReference, BackwardMatchesFiniteDifferences) {
  Rng rng(4);
  Vec a = test::random_vec(rng, 11);
  Vec b = test::random_vec(rng, 11);
  const Vec w = test::random_vec(rng, 11);
  auto loss = [&] {
    Vec out;
    ref::residual_forward(a, b, out);
    return test::dot(w, out);
  };
  Vec da(11, 0.0), db(11, 0.0);
  ref::residual_backward(w, da, db);
  Vec fd_a(11), fd_b(11);
  for (std::size_t i = 0; i < 11; ++i) fd_a[i] = test::finite_difference(loss, a, i);
  for (std::size_t i = 0; i < 11; ++i) fd_b[i] = test::finite_difference(loss, b, i);
  EXPECT_LT(test::rel_error(da, fd_a), 1e-6);
  EXPECT_LT(test::rel_error(db, fd_b), 1e-6);
}

TEST(Residual, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  auto f32 = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "x");
  };
  Tensor a = f32({2, 3, 8}), b = f32({2, 3, 8}), out = f32({2, 3, 8}), bad = f32({2, 24});
  test::expect_invalid([&] { ops::residual_forward(ctx, a, bad, out); }, "residual_forward", "b");
  test::expect_invalid([&] { ops::residual_forward(ctx, a, b, bad); }, "residual_forward", "out");
  test::expect_invalid([&] { ops::residual_backward(ctx, out, bad, b); }, "residual_backward",
                       "da");
  test::expect_invalid([&] { ops::residual_backward(ctx, out, a, bad); }, "residual_backward",
                       "db");
  Tensor missing;
  test::expect_invalid([&] { ops::residual_forward(ctx, missing, b, out); }, "residual_forward",
                       "a");
}

}  // namespace
}  // namespace adacc
