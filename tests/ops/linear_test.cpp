// Linear: the fp32 kernel (sgemm + bias) against the float64 reference with and without
// bias, the reference's backward against finite differences, accumulation, errors.
#include "adacc/ops/linear.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "adacc/core/context.h"
#include "reference/linear_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

enum class WithBias : bool { no, yes };

// Forward and backward of kernel vs reference for inp of shape `shape` (last dim IC).
// Gradients start nonzero so that overwriting instead of adding is caught.
void check_against_reference(const Shape& shape, int OC, WithBias with_bias, std::uint64_t seed) {
  const bool has_bias = with_bias == WithBias::yes;
  SCOPED_TRACE("inp " + shape_str(shape) + " OC=" + std::to_string(OC) +
               (has_bias ? " with bias" : " no bias"));
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(seed);
  const int IC = static_cast<int>(shape.back());
  const int N = static_cast<int>(shape_numel(shape) / IC);
  Shape out_shape = shape;
  out_shape.back() = OC;
  const Vec inp = test::round_to_float(test::random_vec(rng, std::size_t(N) * IC));
  const Vec w = test::round_to_float(test::random_vec(rng, std::size_t(OC) * IC));
  const Vec bias = test::round_to_float(test::random_vec(rng, OC));
  const Vec dout = test::round_to_float(test::random_vec(rng, std::size_t(N) * OC));
  const Vec dinp0 = test::round_to_float(test::random_vec(rng, inp.size()));
  const Vec dw0 = test::round_to_float(test::random_vec(rng, w.size()));
  const Vec db0 = test::round_to_float(test::random_vec(rng, OC));

  Tensor t_inp = test::to_tensor(alloc, inp, shape, "inp");
  Tensor t_w = test::to_tensor(alloc, w, {OC, IC}, "w", MemCategory::params);
  Tensor t_b = has_bias ? test::to_tensor(alloc, bias, {OC}, "b", MemCategory::params) : Tensor();
  Tensor t_out = Tensor::empty(alloc, out_shape, DType::f32, MemCategory::activations, "out");
  ops::linear_forward(ctx, t_inp, t_w, t_b, t_out);

  Vec out;
  ref::linear_forward(inp, w, has_bias ? &bias : nullptr, N, IC, OC, out);
  EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-5);

  Tensor t_dout = test::to_tensor(alloc, dout, out_shape, "dout");
  Tensor t_dinp = test::to_tensor(alloc, dinp0, shape, "dinp");
  Tensor t_dw = test::to_tensor(alloc, dw0, {OC, IC}, "dw", MemCategory::grads);
  Tensor t_db = has_bias ? test::to_tensor(alloc, db0, {OC}, "db", MemCategory::grads) : Tensor();
  ops::linear_backward(ctx, t_dout, t_inp, t_w, t_dinp, t_dw, t_db);

  Vec dinp(inp.size(), 0.0), dw(w.size(), 0.0), db(OC, 0.0);
  ref::linear_backward(dout, inp, w, N, IC, OC, dinp, dw, has_bias ? &db : nullptr);
  // Increments of the fp32 gradients against the reference's, then the sums.
  auto increment = [](const Tensor& t, const Vec& start) {
    Vec v = test::to_vec(t);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] -= start[i];
    return v;
  };
  auto plus = [](Vec a, const Vec& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  EXPECT_LT(test::rel_error(increment(t_dinp, dinp0), dinp), 1e-5);
  EXPECT_LT(test::rel_error(increment(t_dw, dw0), dw), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(t_dinp), plus(dinp, dinp0)), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(t_dw), plus(dw, dw0)), 1e-5);
  if (has_bias) {
    EXPECT_LT(test::rel_error(increment(t_db, db0), db), 1e-5);
    EXPECT_LT(test::rel_error(test::to_vec(t_db), plus(db, db0)), 1e-5);
  }
}

TEST(Linear, MatchesReferenceOnEdgeAndRealisticShapes) {
  for (WithBias wb : {WithBias::yes, WithBias::no}) {
    check_against_reference({1, 13}, 7, wb, 1);        // one row, odd IC and OC
    check_against_reference({1, 7, 13}, 20, wb, 2);    // B=1, odd T
    check_against_reference({37, 33}, 65, wb, 3);      // N not a multiple of 16
    check_against_reference({2, 64, 96}, 288, wb, 4);  // realistic: (B,T,C) -> 3C
    check_against_reference({3, 17, 301}, 77, wb, 5);  // IC a few hundred, odd
    check_against_reference({2, 9, 40}, 1031, wb, 6);  // OC spans several dbias bands
  }
}

TEST(LinearReference, BackwardMatchesFiniteDifferences) {
  const int N = 3, IC = 5, OC = 4;
  Rng rng(21);
  Vec inp = test::random_vec(rng, std::size_t(N) * IC);
  Vec w = test::random_vec(rng, std::size_t(OC) * IC);
  Vec bias = test::random_vec(rng, OC);
  const Vec lw = test::random_vec(rng, std::size_t(N) * OC);
  for (bool has_bias : {true, false}) {
    auto loss = [&] {
      Vec out;
      ref::linear_forward(inp, w, has_bias ? &bias : nullptr, N, IC, OC, out);
      return test::dot(lw, out);
    };
    Vec dinp(inp.size(), 0.0), dw(w.size(), 0.0), db(OC, 0.0);
    ref::linear_backward(lw, inp, w, N, IC, OC, dinp, dw, has_bias ? &db : nullptr);
    Vec fd_inp(inp.size()), fd_w(w.size()), fd_b(OC);
    for (std::size_t i = 0; i < inp.size(); ++i) fd_inp[i] = test::finite_difference(loss, inp, i);
    for (std::size_t i = 0; i < w.size(); ++i) fd_w[i] = test::finite_difference(loss, w, i);
    EXPECT_LT(test::rel_error(dinp, fd_inp), 1e-6);
    EXPECT_LT(test::rel_error(dw, fd_w), 1e-6);
    if (has_bias) {
      for (int o = 0; o < OC; ++o) fd_b[o] = test::finite_difference(loss, bias, o);
      EXPECT_LT(test::rel_error(db, fd_b), 1e-6);
    } else {
      for (int o = 0; o < OC; ++o) EXPECT_EQ(db[o], 0.0);
    }
  }
}

TEST(Linear, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 2, T = 3, IC = 8, OC = 12;
  auto f32 = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "x");
  };
  Tensor inp = f32({B, T, IC}), w = f32({OC, IC}), b = f32({OC}), out = f32({B, T, OC});
  Tensor bad_inp = f32({B, T, IC + 1}), bad_w = f32({OC * IC}), bad_b = f32({OC - 1});
  Tensor bad_out = f32({B * T, OC});
  test::expect_invalid([&] { ops::linear_forward(ctx, bad_inp, w, b, out); }, "linear_forward",
                       "inp");
  test::expect_invalid([&] { ops::linear_forward(ctx, inp, bad_w, b, out); }, "linear_forward",
                       "weight");
  test::expect_invalid([&] { ops::linear_forward(ctx, inp, w, bad_b, out); }, "linear_forward",
                       "bias");
  test::expect_invalid([&] { ops::linear_forward(ctx, inp, w, b, bad_out); }, "linear_forward",
                       "out");
  EXPECT_NO_THROW(ops::linear_forward(ctx, inp, w, b, out));
  EXPECT_NO_THROW(ops::linear_forward(ctx, inp, w, Tensor(), out));

  Tensor dinp = f32({B, T, IC}), dw = f32({OC, IC}), db = f32({OC});
  Tensor none;
  test::expect_invalid([&] { ops::linear_backward(ctx, bad_out, inp, w, dinp, dw, db); },
                       "linear_backward", "dout");
  test::expect_invalid([&] { ops::linear_backward(ctx, out, inp, w, bad_inp, dw, db); },
                       "linear_backward", "dinp");
  test::expect_invalid([&] { ops::linear_backward(ctx, out, inp, w, dinp, bad_w, db); },
                       "linear_backward", "dweight");
  test::expect_invalid([&] { ops::linear_backward(ctx, out, inp, w, dinp, dw, bad_b); },
                       "linear_backward", "dbias");
  EXPECT_NO_THROW(ops::linear_backward(ctx, out, inp, w, dinp, dw, none));
}

}  // namespace
}  // namespace adacc
