// Causal attention, both CPU forms (naive, flash), against the float64 reference
// (tests/reference/attention_ref.h), which is itself checked against finite differences
// and values known in closed form. Shapes cover T=1, T inside one tile and across ragged
// tiles, hs not a multiple of the vector width, and a realistic size.
#include "adacc/ops/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "adacc/core/context.h"
#include "reference/attention_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

struct Case {
  int B, T, C, H;
  double amp;  // std of the qkv entries; large values make peaked softmaxes
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::ostringstream name;
  name << "B" << c.B << "_T" << c.T << "_C" << c.C << "_H" << c.H << (c.amp > 1 ? "_peaked" : "");
  return name.str();
}

Vec plus(const Vec& a, const Vec& b) {
  Vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

class AttentionCase : public testing::TestWithParam<Case> {};

TEST_P(AttentionCase, BothFormsMatchFloat64Reference) {
  const auto [B, T, C, H, amp] = GetParam();
  const std::size_t n_out = static_cast<std::size_t>(B) * T * C;
  Allocator alloc;
  Context ctx(alloc);
  Rng rng(1000 + T + C);
  const Vec qkv = test::round_to_float(test::normal_vec(rng, 3 * n_out, amp));
  const Vec dout = test::round_to_float(test::normal_vec(rng, n_out));
  const Vec g0 = test::round_to_float(test::normal_vec(rng, 3 * n_out));

  Vec ref_out, ref_probs, ref_lse, ref_dqkv(3 * n_out, 0.0);
  ref::attention_forward(qkv, B, T, C, H, ref_out, ref_probs);
  ref::attention_lse(qkv, B, T, C, H, ref_lse);
  ref::attention_backward(dout, qkv, ref_probs, B, T, C, H, ref_dqkv);

  const Tensor tqkv = test::to_tensor(alloc, qkv, {B, T, 3 * C}, "qkv");
  const Tensor tdout = test::to_tensor(alloc, dout, {B, T, C}, "dout");
  auto act = [&](Shape s, const char* name) {
    return Tensor::empty(alloc, std::move(s), DType::f32, MemCategory::activations, name);
  };

  // naive
  Tensor out_n = act({B, T, C}, "out_n"), probs = act({B, H, T, T}, "probs");
  ops::attention_naive_forward(ctx, tqkv, H, out_n, probs);
  EXPECT_LT(test::rel_error(test::to_vec(out_n), ref_out), 1e-5);
  const Vec got_probs = test::to_vec(probs);
  EXPECT_LT(test::rel_error(got_probs, ref_probs), 1e-5);
  for (std::size_t row = 0; row < static_cast<std::size_t>(B) * H * T; ++row) {
    const int t = static_cast<int>(row % T);
    for (int t2 = t + 1; t2 < T; ++t2) ASSERT_EQ(got_probs[row * T + t2], 0.0) << row << " " << t2;
  }
  Tensor dqkv_n = Tensor::zeros(alloc, {B, T, 3 * C}, DType::f32, MemCategory::grads, "dqkv_n");
  ops::attention_naive_backward(ctx, tdout, tqkv, probs, H, dqkv_n);
  EXPECT_LT(test::rel_error(test::to_vec(dqkv_n), ref_dqkv), 1e-5);

  // flash
  Tensor out_f = act({B, T, C}, "out_f"), lse = act({B, H, T}, "lse");
  ops::attention_flash_forward(ctx, tqkv, H, out_f, lse);
  EXPECT_LT(test::rel_error(test::to_vec(out_f), ref_out), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(lse), ref_lse), 1e-5);
  Tensor dqkv_f = Tensor::zeros(alloc, {B, T, 3 * C}, DType::f32, MemCategory::grads, "dqkv_f");
  ops::attention_flash_backward(ctx, tdout, tqkv, out_f, lse, H, dqkv_f);
  EXPECT_LT(test::rel_error(test::to_vec(dqkv_f), ref_dqkv), 1e-5);

  // The two forms agree with each other.
  EXPECT_LT(test::rel_error(test::to_vec(out_f), test::to_vec(out_n)), 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(dqkv_f), test::to_vec(dqkv_n)), 1e-5);

  // Backwards add into dqkv: starting from g0 gives g0 + (the result from zero).
  Tensor acc_n = test::to_tensor(alloc, g0, {B, T, 3 * C}, "acc_n", MemCategory::grads);
  ops::attention_naive_backward(ctx, tdout, tqkv, probs, H, acc_n);
  EXPECT_LT(test::rel_error(test::to_vec(acc_n), plus(g0, test::to_vec(dqkv_n))), 1e-6);
  Tensor acc_f = test::to_tensor(alloc, g0, {B, T, 3 * C}, "acc_f", MemCategory::grads);
  ops::attention_flash_backward(ctx, tdout, tqkv, out_f, lse, H, acc_f);
  EXPECT_LT(test::rel_error(test::to_vec(acc_f), plus(g0, test::to_vec(dqkv_f))), 1e-6);

  // Workspace came from the allocator and went back to it.
  EXPECT_GT(alloc.stats().peak_of(MemCategory::workspace), 0u);
  EXPECT_EQ(alloc.stats().current_of(MemCategory::workspace), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionCase,
    testing::Values(Case{1, 1, 12, 2, 1.0},      // T=1: one key, P = 1
                    Case{1, 37, 36, 3, 1.0},     // one ragged tile, hs=12 (< one vector)
                    Case{2, 70, 40, 2, 1.0},     // two tiles, the last of 6 rows; hs=20
                    Case{2, 64, 96, 2, 1.0},     // exactly one tile, hs=48
                    Case{1, 130, 64, 1, 4.0},    // three tiles, peaked rows (online rescaling)
                    Case{2, 128, 128, 2, 1.0}),  // realistic
    case_name);

// Each head is computed by one thread start to end, so the results do not depend on
// the number of threads.
TEST(Attention, ResultsDoNotDependOnThreadCount) {
  const int B = 2, T = 100, C = 64, H = 4;
  Allocator alloc;
  Rng rng(7);
  const Vec qkv = test::normal_vec(rng, static_cast<std::size_t>(B) * T * 3 * C);
  const Vec dout = test::normal_vec(rng, static_cast<std::size_t>(B) * T * C);
  const Tensor tqkv = test::to_tensor(alloc, qkv, {B, T, 3 * C}, "qkv");
  const Tensor tdout = test::to_tensor(alloc, dout, {B, T, C}, "dout");
  auto run = [&](int threads) {
    Context ctx(alloc, threads);
    Tensor out = Tensor::empty(alloc, {B, T, C}, DType::f32, MemCategory::activations, "out");
    Tensor probs = Tensor::empty(alloc, {B, H, T, T}, DType::f32, MemCategory::activations, "p");
    Tensor lse = Tensor::empty(alloc, {B, H, T}, DType::f32, MemCategory::activations, "lse");
    Tensor dn = Tensor::zeros(alloc, {B, T, 3 * C}, DType::f32, MemCategory::grads, "dn");
    Tensor df = Tensor::zeros(alloc, {B, T, 3 * C}, DType::f32, MemCategory::grads, "df");
    ops::attention_naive_forward(ctx, tqkv, H, out, probs);
    ops::attention_naive_backward(ctx, tdout, tqkv, probs, H, dn);
    ops::attention_flash_forward(ctx, tqkv, H, out, lse);
    ops::attention_flash_backward(ctx, tdout, tqkv, out, lse, H, df);
    Vec all = test::to_vec(probs);
    for (const Tensor* t : {&out, &lse, &dn, &df}) {
      const Vec v = test::to_vec(*t);
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const Vec one = run(1);
  const Vec two = run(2);
  EXPECT_EQ(one, two);
}

// The reference's backward against central finite differences of its forward, for
// loss = dot(w, out).
TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  for (const Case& c : {Case{2, 5, 6, 2, 1.0}, Case{1, 7, 12, 3, 2.0}}) {
    const auto [B, T, C, H, amp] = c;
    Rng rng(11);
    Vec qkv = test::normal_vec(rng, static_cast<std::size_t>(B) * T * 3 * C, amp);
    const Vec w = test::normal_vec(rng, static_cast<std::size_t>(B) * T * C);
    Vec out, probs;
    ref::attention_forward(qkv, B, T, C, H, out, probs);
    Vec grad(qkv.size(), 0.0);
    ref::attention_backward(w, qkv, probs, B, T, C, H, grad);
    Vec fd(qkv.size());
    auto loss = [&] {
      Vec o, p;
      ref::attention_forward(qkv, B, T, C, H, o, p);
      return test::dot(w, o);
    };
    for (std::size_t i = 0; i < qkv.size(); ++i) fd[i] = test::finite_difference(loss, qkv, i);
    EXPECT_LT(test::rel_error(grad, fd), 1e-6) << "B=" << B << " T=" << T << " C=" << C;
  }
}

// Values known in closed form: with q = 0 every visible key gets the same probability,
// so out[t] is the mean of v[0..t]; and the lse is log(t+1).
TEST(AttentionReference, ZeroQueriesAverageThePrefix) {
  const int B = 1, T = 4, C = 4, H = 2;
  Rng rng(3);
  Vec qkv = test::normal_vec(rng, static_cast<std::size_t>(B) * T * 3 * C);
  for (int t = 0; t < T; ++t) {
    for (int c = 0; c < C; ++c) qkv[t * 3 * C + c] = 0.0;
  }
  Vec out, probs, lse;
  ref::attention_forward(qkv, B, T, C, H, out, probs);
  ref::attention_lse(qkv, B, T, C, H, lse);
  for (int t = 0; t < T; ++t) {
    for (int c = 0; c < C; ++c) {
      double mean = 0;
      for (int t2 = 0; t2 <= t; ++t2) mean += qkv[t2 * 3 * C + 2 * C + c] / (t + 1);
      EXPECT_NEAR(out[t * C + c], mean, 1e-14);
    }
    for (int h = 0; h < H; ++h) EXPECT_NEAR(lse[h * T + t], std::log(t + 1.0), 1e-14);
  }
}

using test::expect_invalid;

TEST(Attention, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc);
  const int B = 2, T = 5, C = 12, H = 3;
  auto make = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "t");
  };
  Tensor qkv = make({B, T, 3 * C}), out = make({B, T, C}), probs = make({B, H, T, T});
  Tensor lse = make({B, H, T}), dout = make({B, T, C}), dqkv = make({B, T, 3 * C});
  const std::string nf = "attention_naive_forward", nb = "attention_naive_backward";
  const std::string ff = "attention_flash_forward", fb = "attention_flash_backward";

  // C=12 is not divisible by 5 heads; heads must be positive.
  expect_invalid([&] { ops::attention_naive_forward(ctx, qkv, 5, out, probs); }, nf);
  expect_invalid([&] { ops::attention_flash_forward(ctx, qkv, 0, out, lse); }, ff);
  expect_invalid([&] { ops::attention_naive_backward(ctx, dout, qkv, probs, 5, dqkv); }, nb);
  expect_invalid([&] { ops::attention_flash_backward(ctx, dout, qkv, out, lse, 5, dqkv); }, fb);
  // qkv's last dimension must be 3C.
  Tensor bad_qkv = make({B, T, 3 * C + 1});
  expect_invalid([&] { ops::attention_naive_forward(ctx, bad_qkv, H, out, probs); }, nf);
  // probs / lse / out / dqkv of the wrong shape.
  Tensor bad_probs = make({B, H, T, T + 1});
  expect_invalid([&] { ops::attention_naive_forward(ctx, qkv, H, out, bad_probs); }, nf);
  expect_invalid([&] { ops::attention_naive_backward(ctx, dout, qkv, bad_probs, H, dqkv); }, nb);
  Tensor bad_lse = make({B, T, H});
  expect_invalid([&] { ops::attention_flash_forward(ctx, qkv, H, out, bad_lse); }, ff);
  expect_invalid([&] { ops::attention_flash_backward(ctx, dout, qkv, out, bad_lse, H, dqkv); }, fb);
  Tensor bad_out = make({B, T, 3 * C});
  expect_invalid([&] { ops::attention_flash_forward(ctx, qkv, H, bad_out, lse); }, ff);
  expect_invalid([&] { ops::attention_flash_backward(ctx, dout, qkv, bad_out, lse, H, dqkv); }, fb);
  Tensor bad_dqkv = make({B, T, C});
  expect_invalid([&] { ops::attention_naive_backward(ctx, dout, qkv, probs, H, bad_dqkv); }, nb);
  expect_invalid([&] { ops::attention_naive_backward(ctx, bad_out, qkv, probs, H, dqkv); }, nb);
  // A missing tensor.
  Tensor missing;
  expect_invalid([&] { ops::attention_flash_forward(ctx, missing, H, out, lse); }, ff);
}

TEST(Attention, KindNames) {
  EXPECT_EQ(ops::attention_kind_name(ops::AttentionKind::naive), "naive");
  EXPECT_EQ(ops::attention_kind_name(ops::AttentionKind::flash), "flash");
}

}  // namespace
}  // namespace adacc
