// adamw_update: several steps of the fp32 kernel against the float64 reference, the first
// step by hand, decoupled weight decay, gradient zeroing, odd sizes and argument errors.
#include "adacc/ops/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "reference/adamw_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

// Runs `steps` updates of kernel and reference side by side with fresh random gradients.
void check_against_reference(std::int64_t n, const ops::AdamWConfig& cfg, int steps) {
  Allocator alloc;
  Context ctx(alloc, 2);
  Rng rng(static_cast<std::uint64_t>(n) + 11);
  Vec p = test::round_to_float(test::normal_vec(rng, n, 0.02));
  Vec m(n, 0.0), v(n, 0.0);
  Tensor tp = test::to_tensor(alloc, p, {n}, "p", MemCategory::params);
  Tensor tm = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "m");
  Tensor tv = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "v");
  for (int step = 1; step <= steps; ++step) {
    // Gradients of mixed scale, including some exactly zero.
    Vec g = test::round_to_float(test::normal_vec(rng, n, step % 2 ? 1e-2 : 3.0));
    if (n > 1) g[0] = 0.0;
    Tensor tg = test::to_tensor(alloc, g, {n}, "g", MemCategory::grads);
    // One reference step from the kernel's current parameters, to check the step itself
    // (p is much larger than one update, which would hide the update's errors).
    Vec p_step = test::to_vec(tp), m_step = m, v_step = v;
    const Vec p_before = p_step;
    ref::adamw_update(p_step, g, m_step, v_step, step, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
                      cfg.weight_decay);
    ops::adamw_update(ctx, tp, tg, tm, tv, step, cfg, ops::ZeroGrad::no);
    ref::adamw_update(p, g, m, v, step, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    const Vec p_after = test::to_vec(tp);
    Vec got_delta(n), ref_delta(n);
    for (std::int64_t i = 0; i < n; ++i) {
      got_delta[i] = p_after[i] - p_before[i];
      ref_delta[i] = p_step[i] - p_before[i];
    }
    EXPECT_LT(test::rel_error(got_delta, ref_delta), 1e-5) << "n=" << n << " step " << step;
    EXPECT_EQ(test::to_vec(tg), g) << "ZeroGrad::no must leave grad alone";
    EXPECT_LT(test::rel_error(test::to_vec(tm), m), 1e-5) << "n=" << n << " step " << step;
    EXPECT_LT(test::rel_error(test::to_vec(tv), v), 1e-5) << "n=" << n << " step " << step;
    EXPECT_LT(test::rel_error(test::to_vec(tp), p), 1e-5) << "n=" << n << " step " << step;
  }
}

TEST(AdamW, MatchesFloat64ReferenceOverSeveralSteps) {
  ops::AdamWConfig cfg;
  cfg.lr = 1e-3f;
  cfg.weight_decay = 0.1f;
  // Sizes below, at and around the vector width, and a larger one.
  for (std::int64_t n : {1, 15, 16, 17, 1003, 100000}) check_against_reference(n, cfg, 6);
  // Default config (no weight decay), and a large learning rate that moves p a lot.
  check_against_reference(1003, ops::AdamWConfig{}, 6);
  cfg.lr = 0.05f;
  check_against_reference(257, cfg, 6);
}

// Step 1 by hand: m_hat = g and v_hat = g^2, so p -= lr * (g / (|g| + eps) + wd * p).
TEST(AdamW, FirstStepMovesByLearningRateTimesSign) {
  Allocator alloc;
  Context ctx(alloc, 2);
  ops::AdamWConfig cfg;
  cfg.lr = 0.01f;
  cfg.weight_decay = 0.5f;
  Tensor p = test::to_tensor(alloc, {1.0, -2.0, 0.5}, {3}, "p");
  Tensor g = test::to_tensor(alloc, {3.0, -0.25, 0.0}, {3}, "g");
  Tensor m = Tensor::zeros(alloc, {3}, DType::f32, MemCategory::optimizer, "m");
  Tensor v = Tensor::zeros(alloc, {3}, DType::f32, MemCategory::optimizer, "v");
  ops::adamw_update(ctx, p, g, m, v, 1, cfg, ops::ZeroGrad::no);
  const float* pp = p.data<float>();
  EXPECT_NEAR(pp[0], 1.0 - 0.01 * (1.0 + 0.5 * 1.0), 1e-6);
  EXPECT_NEAR(pp[1], -2.0 - 0.01 * (-1.0 + 0.5 * -2.0), 1e-6);
  EXPECT_NEAR(pp[2], 0.5 - 0.01 * (0.0 + 0.5 * 0.5), 1e-6);
  // (1 - beta) of the float betas: 0.9f and 0.999f are not exactly 0.9 and 0.999.
  EXPECT_NEAR(m.data<float>()[0], (1.0 - static_cast<double>(cfg.beta1)) * 3.0, 1e-7);
  EXPECT_NEAR(v.data<float>()[0], (1.0 - static_cast<double>(cfg.beta2)) * 9.0, 1e-9);
}

// Weight decay is decoupled: it shrinks p directly and never enters the moments.
TEST(AdamW, WeightDecayIsDecoupled) {
  Allocator alloc;
  Context ctx(alloc, 2);
  ops::AdamWConfig cfg;
  cfg.lr = 0.1f;
  cfg.weight_decay = 0.2f;
  const std::int64_t n = 37;
  Rng rng(4);
  const Vec p0 = test::round_to_float(test::normal_vec(rng, n));
  Tensor p = test::to_tensor(alloc, p0, {n}, "p");
  Tensor g = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::grads, "g");
  Tensor m = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "m");
  Tensor v = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "v");
  for (int step = 1; step <= 3; ++step)
    ops::adamw_update(ctx, p, g, m, v, step, cfg, ops::ZeroGrad::no);
  const double shrink = std::pow(1.0 - 0.1 * 0.2, 3);
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(p.data<float>()[i], p0[i] * shrink, 1e-6 * std::abs(p0[i]) + 1e-7);
    EXPECT_EQ(m.data<float>()[i], 0.0f);
    EXPECT_EQ(v.data<float>()[i], 0.0f);
  }
}

TEST(AdamW, ZeroGradYesClearsTheGradientAndUpdatesTheSame) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const std::int64_t n = 1001;
  Rng rng(8);
  const Vec p0 = test::round_to_float(test::normal_vec(rng, n));
  const Vec g0 = test::round_to_float(test::normal_vec(rng, n));
  ops::AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  Tensor p[2], g[2], m[2], v[2];
  for (int k = 0; k < 2; ++k) {
    p[k] = test::to_tensor(alloc, p0, {n}, "p");
    g[k] = test::to_tensor(alloc, g0, {n}, "g");
    m[k] = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "m");
    v[k] = Tensor::zeros(alloc, {n}, DType::f32, MemCategory::optimizer, "v");
  }
  ops::adamw_update(ctx, p[0], g[0], m[0], v[0], 3, cfg, ops::ZeroGrad::no);
  ops::adamw_update(ctx, p[1], g[1], m[1], v[1], 3, cfg, ops::ZeroGrad::yes);
  EXPECT_EQ(test::to_vec(g[0]), g0);
  EXPECT_EQ(test::to_vec(g[1]), Vec(n, 0.0));
  EXPECT_EQ(test::to_vec(p[1]), test::to_vec(p[0]));
  EXPECT_EQ(test::to_vec(m[1]), test::to_vec(m[0]));
  EXPECT_EQ(test::to_vec(v[1]), test::to_vec(v[0]));
}

TEST(AdamW, RejectsMismatchedShapesAndBadStep) {
  Allocator alloc;
  Context ctx(alloc, 2);
  auto f32 = [&](Shape s) { return Tensor::zeros(alloc, s, DType::f32, MemCategory::params, "t"); };
  Tensor p = f32({4, 8}), g = f32({4, 8}), m = f32({4, 8}), v = f32({4, 8});
  Tensor bad = f32({32});
  const ops::AdamWConfig cfg;
  auto expect_invalid = [](auto f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "no exception";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("[adamw]"), std::string::npos) << msg;
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
    }
  };
  expect_invalid([&] { ops::adamw_update(ctx, p, bad, m, v, 1, cfg, ops::ZeroGrad::no); },
                 "grad must be (4,8)");
  expect_invalid([&] { ops::adamw_update(ctx, p, g, bad, v, 1, cfg, ops::ZeroGrad::no); },
                 "m must be (4,8)");
  expect_invalid([&] { ops::adamw_update(ctx, p, g, m, bad, 1, cfg, ops::ZeroGrad::no); },
                 "v must be (4,8)");
  Tensor ints = Tensor::zeros(alloc, {4, 8}, DType::int32, MemCategory::params, "i");
  expect_invalid([&] { ops::adamw_update(ctx, p, ints, m, v, 1, cfg, ops::ZeroGrad::no); },
                 "int32");
  expect_invalid([&] { ops::adamw_update(ctx, p, g, m, v, 0, cfg, ops::ZeroGrad::no); }, "step");
}

}  // namespace
}  // namespace adacc
