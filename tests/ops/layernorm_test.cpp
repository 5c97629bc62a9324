// LayerNorm: the fp32 kernel against the float64 reference (and its forward alone under a
// large offset, where a one-pass variance loses every digit), the reference's backward
// against finite differences, accumulation, workspace accounting, errors.
#include "adacc/ops/layernorm.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "adacc/core/context.h"
#include "reference/layernorm_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

// Inputs with a large common offset, so a one-pass variance would lose digits.
Vec offset_inputs(Rng& rng, std::size_t n) {
  Vec v = test::normal_vec(rng, n, 2.0);
  for (auto& x : v) x += 5.0;
  return test::round_to_float(v);
}

// Forward and backward of kernel vs reference; inp has shape `shape` (last dim C).
// Gradients start nonzero (g0) so that overwriting instead of adding is caught.
void check_against_reference(const Shape& shape, int threads, std::uint64_t seed) {
  SCOPED_TRACE("inp " + shape_str(shape) + " threads=" + std::to_string(threads));
  Allocator alloc;
  Context ctx(alloc, threads);
  Rng rng(seed);
  const int C = static_cast<int>(shape.back());
  const int N = static_cast<int>(shape_numel(shape) / C);
  const Shape rows(shape.begin(), shape.end() - 1);
  const Vec inp = offset_inputs(rng, std::size_t(N) * C);
  const Vec w = test::round_to_float(test::random_vec(rng, C, 0.5, 1.5));
  const Vec b = test::round_to_float(test::random_vec(rng, C));
  const Vec dout = test::round_to_float(test::random_vec(rng, inp.size()));
  const Vec dinp0 = test::round_to_float(test::random_vec(rng, inp.size(), -0.1, 0.1));
  const Vec dw0 = test::round_to_float(test::random_vec(rng, C));
  const Vec db0 = test::round_to_float(test::random_vec(rng, C));

  Tensor t_inp = test::to_tensor(alloc, inp, shape, "inp");
  Tensor t_w = test::to_tensor(alloc, w, {C}, "w");
  Tensor t_b = test::to_tensor(alloc, b, {C}, "b");
  Tensor t_out = Tensor::empty(alloc, shape, DType::f32, MemCategory::activations, "out");
  Tensor t_mean = Tensor::empty(alloc, rows, DType::f32, MemCategory::activations, "mean");
  Tensor t_rstd = Tensor::empty(alloc, {N}, DType::f32, MemCategory::activations, "rstd");
  ops::layernorm_forward(ctx, t_inp, t_w, t_b, t_out, t_mean, t_rstd);

  Vec out, mean, rstd;
  ref::layernorm_forward(inp, w, b, N, C, out, mean, rstd);
  EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(t_mean), mean), 1e-6);
  EXPECT_LT(test::rel_error(test::to_vec(t_rstd), rstd), 1e-5);

  // Backward against the reference's gradients, with the reference's mean and rstd
  // being its own (float64) ones.
  Tensor t_dout = test::to_tensor(alloc, dout, shape, "dout");
  Tensor t_dinp = test::to_tensor(alloc, dinp0, shape, "dinp");
  Tensor t_dw = test::to_tensor(alloc, dw0, {C}, "dw");
  Tensor t_db = test::to_tensor(alloc, db0, {C}, "db");
  ops::layernorm_backward(ctx, t_dout, t_inp, t_w, t_mean, t_rstd, t_dinp, t_dw, t_db);

  Vec dinp(inp.size(), 0.0), dw(C, 0.0), db(C, 0.0);
  ref::layernorm_backward(dout, inp, w, mean, rstd, N, C, dinp, dw, db);
  // Compare the increments, measured against the size of the reference's increment.
  auto increment = [](const Tensor& t, const Vec& start) {
    Vec v = test::to_vec(t);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] -= start[i];
    return v;
  };
  EXPECT_LT(test::rel_error(increment(t_dinp, dinp0), dinp), 1e-5);
  EXPECT_LT(test::rel_error(increment(t_dw, dw0), dw), 1e-5);
  EXPECT_LT(test::rel_error(increment(t_db, db0), db), 1e-5);
  // And the sums themselves.
  for (std::size_t i = 0; i < dinp.size(); ++i) dinp[i] += dinp0[i];
  for (int c = 0; c < C; ++c) dw[c] += dw0[c], db[c] += db0[c];
  EXPECT_LT(test::rel_error(test::to_vec(t_dinp), dinp), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(t_dw), dw), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(t_db), db), 1e-5);

  // The workspace went through the allocator and came back.
  EXPECT_GT(alloc.stats().peak_of(MemCategory::workspace), 0u);
  EXPECT_EQ(alloc.stats().current_of(MemCategory::workspace), 0u);
}

TEST(LayerNorm, MatchesReferenceOnEdgeAndRealisticShapes) {
  check_against_reference({1, 13}, 2, 1);       // one row, C not a vector multiple
  check_against_reference({1, 7, 20}, 2, 2);    // B=1, odd T
  check_against_reference({2, 64, 96}, 2, 3);   // realistic small
  check_against_reference({3, 37, 768}, 3, 4);  // GPT-2 C, uneven rows per thread
  check_against_reference({5, 3}, 1, 5);        // tiny C, one thread
  check_against_reference({17, 33}, 4, 6);      // more threads than work per thread
}

// The forward alone on rows with a large common offset (mean 1e4, unit spread): the
// variance must be taken around the mean (two passes), not as E[x^2] - E[x]^2, which in
// fp32 cancels ~1e8 against ~1e8 with an ulp of 8 and leaves nothing of a variance of 1.
// The kernel's own error here is set by the float rounding of the inputs' mean: values
// near 1e4 have an ulp of 2^-10 ~ 1e-3, against outputs of unit size; so the output is
// held to 1e-2 (ten such ulps), the mean to 1e-6 of itself and rstd (a variance of 1
// that a shifted mean changes by its square, ~1e-6) to 1e-4.
TEST(LayerNorm, ForwardTakesTheVarianceAroundTheMeanUnderALargeOffset) {
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(17);
  for (const int C : {13, 64, 768}) {
    SCOPED_TRACE("C=" + std::to_string(C));
    const int N = 20;
    Vec inp = test::normal_vec(rng, std::size_t(N) * C, 1.0);
    for (auto& x : inp) x += 1e4;
    inp = test::round_to_float(inp);
    const Vec w = test::round_to_float(test::random_vec(rng, C, 0.5, 1.5));
    const Vec b = test::round_to_float(test::random_vec(rng, C));
    Tensor t_inp = test::to_tensor(alloc, inp, {N, C}, "inp");
    Tensor t_w = test::to_tensor(alloc, w, {C}, "w");
    Tensor t_b = test::to_tensor(alloc, b, {C}, "b");
    Tensor t_out = Tensor::empty(alloc, {N, C}, DType::f32, MemCategory::activations, "out");
    Tensor t_mean = Tensor::empty(alloc, {N}, DType::f32, MemCategory::activations, "mean");
    Tensor t_rstd = Tensor::empty(alloc, {N}, DType::f32, MemCategory::activations, "rstd");
    ops::layernorm_forward(ctx, t_inp, t_w, t_b, t_out, t_mean, t_rstd);

    Vec out, mean, rstd;
    ref::layernorm_forward(inp, w, b, N, C, out, mean, rstd);
    EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-2);
    EXPECT_LT(test::rel_error(test::to_vec(t_mean), mean), 1e-6);
    EXPECT_LT(test::rel_error(test::to_vec(t_rstd), rstd), 1e-4);
  }
}

TEST(LayerNormReference, BackwardMatchesFiniteDifferences) {
  const int N = 3, C = 7;
  Rng rng(9);
  Vec inp = test::normal_vec(rng, std::size_t(N) * C);
  Vec w = test::random_vec(rng, C, 0.5, 1.5);
  Vec b = test::random_vec(rng, C);
  const Vec lw = test::random_vec(rng, inp.size());
  auto loss = [&] {
    Vec out, mean, rstd;
    ref::layernorm_forward(inp, w, b, N, C, out, mean, rstd);
    return test::dot(lw, out);
  };
  Vec out, mean, rstd;
  ref::layernorm_forward(inp, w, b, N, C, out, mean, rstd);
  Vec dinp(inp.size(), 0.0), dw(C, 0.0), db(C, 0.0);
  ref::layernorm_backward(lw, inp, w, mean, rstd, N, C, dinp, dw, db);
  Vec fd_inp(inp.size()), fd_w(C), fd_b(C);
  for (std::size_t i = 0; i < inp.size(); ++i) fd_inp[i] = test::finite_difference(loss, inp, i);
  for (int c = 0; c < C; ++c) fd_w[c] = test::finite_difference(loss, w, c);
  for (int c = 0; c < C; ++c) fd_b[c] = test::finite_difference(loss, b, c);
  EXPECT_LT(test::rel_error(dinp, fd_inp), 1e-6);
  EXPECT_LT(test::rel_error(dw, fd_w), 1e-6);
  EXPECT_LT(test::rel_error(db, fd_b), 1e-6);
}

TEST(LayerNormReference, NormalisesToZeroMeanUnitVariance) {
  // With w=1, b=0 each output row has mean 0 and (biased) variance var/(var+eps).
  const int N = 2, C = 9;
  Rng rng(3);
  const Vec inp = test::normal_vec(rng, std::size_t(N) * C, 3.0);
  Vec out, mean, rstd;
  ref::layernorm_forward(inp, Vec(C, 1.0), Vec(C, 0.0), N, C, out, mean, rstd);
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0, s2 = 0;
    for (int c = 0; c < C; ++c) m += out[n * C + c] / C;
    for (int c = 0; c < C; ++c) v += out[n * C + c] * out[n * C + c] / C;
    for (int c = 0; c < C; ++c) s2 += (inp[n * C + c] - mean[n]) * (inp[n * C + c] - mean[n]) / C;
    EXPECT_NEAR(m, 0.0, 1e-12);
    EXPECT_NEAR(v, s2 / (s2 + 1e-5), 1e-12);
    EXPECT_NEAR(rstd[n], 1.0 / std::sqrt(s2 + 1e-5), 1e-12);
  }
}

TEST(LayerNorm, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 2, T = 3, C = 8;
  auto f32 = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "x");
  };
  Tensor inp = f32({B, T, C}), w = f32({C}), b = f32({C}), out = f32({B, T, C});
  Tensor mean = f32({B, T}), rstd = f32({B * T});
  Tensor bad_w = f32({C + 1}), bad_out = f32({B, T, C - 1}), bad_mean = f32({B, T + 1});
  test::expect_invalid([&] { ops::layernorm_forward(ctx, inp, bad_w, b, out, mean, rstd); },
                       "layernorm_forward", "weight");
  test::expect_invalid([&] { ops::layernorm_forward(ctx, inp, w, bad_w, out, mean, rstd); },
                       "layernorm_forward", "bias");
  test::expect_invalid([&] { ops::layernorm_forward(ctx, inp, w, b, bad_out, mean, rstd); },
                       "layernorm_forward", "out");
  test::expect_invalid([&] { ops::layernorm_forward(ctx, inp, w, b, out, bad_mean, rstd); },
                       "layernorm_forward", "mean");
  EXPECT_NO_THROW(ops::layernorm_forward(ctx, inp, w, b, out, mean, rstd));

  Tensor dinp = f32({B, T, C}), dw = f32({C}), db = f32({C});
  test::expect_invalid(
      [&] { ops::layernorm_backward(ctx, bad_out, inp, w, mean, rstd, dinp, dw, db); },
      "layernorm_backward", "dout");
  test::expect_invalid(
      [&] { ops::layernorm_backward(ctx, out, inp, w, mean, bad_mean, dinp, dw, db); },
      "layernorm_backward", "rstd");
  test::expect_invalid(
      [&] { ops::layernorm_backward(ctx, out, inp, w, mean, rstd, bad_out, dw, db); },
      "layernorm_backward", "dinp");
  test::expect_invalid(
      [&] { ops::layernorm_backward(ctx, out, inp, w, mean, rstd, dinp, bad_w, db); },
      "layernorm_backward", "dweight");
  test::expect_invalid(
      [&] { ops::layernorm_backward(ctx, out, inp, w, mean, rstd, dinp, dw, bad_w); },
      "layernorm_backward", "dbias");
}

}  // namespace
}  // namespace adacc
