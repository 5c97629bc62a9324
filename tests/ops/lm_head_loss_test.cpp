// lm_head_loss: the fused, chunked fp32 kernel against the float64 reference (losses,
// mean, dinp, dwte), the reference's gradient against finite differences, chunk and
// vocabulary edge shapes, padded rows of dwte left untouched, eval vs train agreement,
// accumulation into dwte, and argument errors.
#include "adacc/ops/lm_head_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "reference/lm_head_loss_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

struct Case {
  int B, T, C, V, Vp;
  double wte_std;  // large enough that the softmax is far from uniform
};

void PrintTo(const Case& k, std::ostream* os) {
  *os << "B=" << k.B << " T=" << k.T << " C=" << k.C << " V=" << k.V << " Vp=" << k.Vp;
}

struct Inputs {
  Vec inp, wte, dwte0;  // float-rounded
  std::vector<int> targets;
};

Inputs make_inputs(const Case& k, std::uint64_t seed) {
  Rng rng(seed);
  Inputs in;
  const int N = k.B * k.T;
  in.inp = test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(N) * k.C));
  in.wte =
      test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(k.Vp) * k.C, k.wte_std));
  in.dwte0 =
      test::round_to_float(test::normal_vec(rng, static_cast<std::size_t>(k.Vp) * k.C, 1e-3));
  in.targets.resize(N);
  for (int& t : in.targets) t = static_cast<int>(rng.next_u64() % static_cast<unsigned>(k.V));
  // Make sure the last vocabulary entry is some target (the edge of the softmax range).
  in.targets[N - 1] = k.V - 1;
  return in;
}

class LmHeadLossVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(LmHeadLossVsReference, ForwardBackwardMatchesFloat64) {
  const Case k = GetParam();
  const int N = k.B * k.T;
  const Inputs in = make_inputs(k, 7 + k.V);
  const double dloss_scale = 1.0 / N;

  Allocator alloc;
  Context ctx(alloc, 2);
  Tensor inp = test::to_tensor(alloc, in.inp, {k.B, k.T, k.C}, "inp");
  Tensor wte = test::to_tensor(alloc, in.wte, {k.Vp, k.C}, "wte", MemCategory::params);
  Tensor targets = test::to_int_tensor(alloc, in.targets, {k.B, k.T});
  Tensor losses = Tensor::empty(alloc, {k.B, k.T}, DType::f32, MemCategory::activations, "l");
  // dinp is overwritten: start from garbage.
  Tensor dinp =
      test::to_tensor(alloc, Vec(static_cast<std::size_t>(N) * k.C, 7.0), {k.B, k.T, k.C}, "dinp");
  Tensor dwte = test::to_tensor(alloc, in.dwte0, {k.Vp, k.C}, "dwte", MemCategory::grads);

  const float mean = ops::lm_head_loss_forward_backward(
      ctx, inp, wte, targets, k.V, static_cast<float>(dloss_scale), losses, dinp, dwte);

  Vec ref_losses;
  const double ref_mean =
      ref::lm_head_loss_forward(in.inp, in.wte, in.targets, N, k.C, k.V, k.Vp, ref_losses);
  Vec ref_dinp(static_cast<std::size_t>(N) * k.C, 0.0);
  Vec ref_dwte = in.dwte0;
  ref::lm_head_loss_backward(in.inp, in.wte, in.targets, N, k.C, k.V, k.Vp,
                             static_cast<float>(dloss_scale), ref_dinp, ref_dwte);

  EXPECT_LT(test::rel_error(test::to_vec(losses), ref_losses), 1e-5);
  EXPECT_LT(std::abs(mean - ref_mean) / ref_mean, 1e-5);
  EXPECT_LT(test::rel_error(test::to_vec(dinp), ref_dinp), 1e-5);
  // Compare the gradient part of dwte (its initial values would hide errors).
  const Vec got_dwte = test::to_vec(dwte);
  Vec got_grad(got_dwte.size()), ref_grad(got_dwte.size());
  for (std::size_t i = 0; i < got_dwte.size(); ++i) {
    got_grad[i] = got_dwte[i] - in.dwte0[i];
    ref_grad[i] = ref_dwte[i] - in.dwte0[i];
  }
  EXPECT_LT(test::rel_error(got_grad, ref_grad), 1e-5);
  // Padded rows [V,Vp) of dwte are never touched: exactly their old values.
  for (std::size_t i = static_cast<std::size_t>(k.V) * k.C; i < got_dwte.size(); ++i) {
    ASSERT_EQ(got_dwte[i], in.dwte0[i]) << "padded dwte element " << i;
  }

  // The eval-only forward gives the same losses and mean.
  Tensor eval_losses = Tensor::empty(alloc, {k.B, k.T}, DType::f32, MemCategory::activations, "e");
  const float eval_mean = ops::lm_head_loss_forward(ctx, inp, wte, targets, k.V, eval_losses);
  EXPECT_LT(test::rel_error(test::to_vec(eval_losses), test::to_vec(losses)), 1e-6);
  EXPECT_NEAR(eval_mean, mean, 1e-6 * mean);
  // The workspace went back to the allocator.
  EXPECT_EQ(alloc.stats().current_of(MemCategory::workspace), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LmHeadLossVsReference,
    ::testing::Values(Case{1, 1, 13, 37, 64, 0.5},       // one row, C not a multiple of 16
                      Case{1, 7, 20, 100, 128, 0.5},     // V not a multiple of 16, V < Vp
                      Case{2, 300, 20, 333, 384, 0.3},   // N=600: chunks of 256, 256, 88 rows
                      Case{2, 64, 96, 515, 640, 0.2},    // larger realistic C
                      Case{1, 5, 32, 50257, 50304, 0.2}  // GPT-2's vocabulary
                      ),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& k = info.param;
      std::ostringstream name;  // not string +: GCC 12 warns (-Wrestrict) on "B" + ...
      name << "B" << k.B << "_T" << k.T << "_C" << k.C << "_V" << k.V;
      return name.str();
    });

// The reference's gradient against central differences of the reference's forward.
TEST(LmHeadLossReference, BackwardMatchesFiniteDifferences) {
  const Case k{1, 5, 7, 11, 16, 0.7};
  const int N = k.B * k.T;
  Inputs in = make_inputs(k, 99);
  const double dloss_scale = 0.37;
  Vec dinp(static_cast<std::size_t>(N) * k.C, 0.0), dwte(static_cast<std::size_t>(k.Vp) * k.C, 0.0);
  ref::lm_head_loss_backward(in.inp, in.wte, in.targets, N, k.C, k.V, k.Vp, dloss_scale, dinp,
                             dwte);
  auto loss = [&] {
    Vec losses;
    return dloss_scale * N *
           ref::lm_head_loss_forward(in.inp, in.wte, in.targets, N, k.C, k.V, k.Vp, losses);
  };
  Vec fd_inp(in.inp.size()), fd_wte(in.wte.size());
  for (std::size_t i = 0; i < in.inp.size(); ++i)
    fd_inp[i] = test::finite_difference(loss, in.inp, i);
  for (std::size_t i = 0; i < in.wte.size(); ++i)
    fd_wte[i] = test::finite_difference(loss, in.wte, i);
  EXPECT_LT(test::rel_error(dinp, fd_inp), 1e-6);
  EXPECT_LT(test::rel_error(dwte, fd_wte), 1e-6);
  // Padded rows get no gradient.
  for (std::size_t i = static_cast<std::size_t>(k.V) * k.C; i < dwte.size(); ++i) {
    EXPECT_EQ(dwte[i], 0.0);
  }
}

// A hand-checkable case: zero weights give a uniform softmax over the V (not Vp) columns,
// so every loss is log(V).
TEST(LmHeadLoss, UniformLogitsGiveLogV) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 2, T = 3, C = 4, V = 10, Vp = 16;
  Tensor inp = test::to_tensor(alloc, Vec(B * T * C, 0.5), {B, T, C}, "inp");
  Tensor wte = Tensor::zeros(alloc, {Vp, C}, DType::f32, MemCategory::params, "wte");
  Tensor targets = test::to_int_tensor(alloc, {0, 1, 2, 3, 4, 9}, {B, T});
  Tensor losses = Tensor::empty(alloc, {B, T}, DType::f32, MemCategory::activations, "l");
  const float mean = ops::lm_head_loss_forward(ctx, inp, wte, targets, V, losses);
  EXPECT_NEAR(mean, std::log(10.0), 1e-6);
  for (int n = 0; n < B * T; ++n) EXPECT_NEAR(losses.data<float>()[n], std::log(10.0), 1e-6);
}

TEST(LmHeadLoss, AccumulatesIntoDwteAndOverwritesDinp) {
  const Case k{2, 9, 13, 50, 64, 0.5};
  const int N = k.B * k.T;
  const Inputs in = make_inputs(k, 5);
  Allocator alloc;
  Context ctx(alloc, 2);
  Tensor inp = test::to_tensor(alloc, in.inp, {k.B, k.T, k.C}, "inp");
  Tensor wte = test::to_tensor(alloc, in.wte, {k.Vp, k.C}, "wte");
  Tensor targets = test::to_int_tensor(alloc, in.targets, {k.B, k.T});
  Tensor losses = Tensor::empty(alloc, {k.B, k.T}, DType::f32, MemCategory::activations, "l");
  Tensor dinp = Tensor::zeros(alloc, {k.B, k.T, k.C}, DType::f32, MemCategory::grads, "dinp");
  Tensor dwte = Tensor::zeros(alloc, {k.Vp, k.C}, DType::f32, MemCategory::grads, "dwte");
  const float scale = 1.0f / static_cast<float>(N);
  ops::lm_head_loss_forward_backward(ctx, inp, wte, targets, k.V, scale, losses, dinp, dwte);
  const Vec dinp1 = test::to_vec(dinp), dwte1 = test::to_vec(dwte);
  ops::lm_head_loss_forward_backward(ctx, inp, wte, targets, k.V, scale, losses, dinp, dwte);
  const Vec dinp2 = test::to_vec(dinp), dwte2 = test::to_vec(dwte);
  Vec twice(dwte1.size());
  for (std::size_t i = 0; i < twice.size(); ++i) twice[i] = 2 * dwte1[i];
  EXPECT_LT(test::rel_error(dwte2, twice), 1e-6);
  EXPECT_LT(test::rel_error(dinp2, dinp1), 1e-6);  // overwritten, not doubled
  EXPECT_GT(test::rel_error(dwte1, Vec(dwte1.size(), 0.0)), 0.5);
}

TEST(LmHeadLoss, RejectsBadTargetsAndShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 2, T = 3, C = 8, V = 20, Vp = 32;
  Rng rng(3);
  Tensor inp = test::to_tensor(alloc, test::normal_vec(rng, B * T * C), {B, T, C}, "inp");
  Tensor wte = test::to_tensor(alloc, test::normal_vec(rng, Vp * C), {Vp, C}, "wte");
  Tensor losses = Tensor::empty(alloc, {B, T}, DType::f32, MemCategory::activations, "l");
  Tensor dinp = Tensor::zeros(alloc, {B, T, C}, DType::f32, MemCategory::grads, "dinp");
  Tensor dwte = Tensor::zeros(alloc, {Vp, C}, DType::f32, MemCategory::grads, "dwte");
  Tensor good = test::to_int_tensor(alloc, {0, 1, 2, 3, 4, 19}, {B, T});

  // A target in the padding [V,Vp) and a negative one: named by position and value.
  Tensor padded = test::to_int_tensor(alloc, {0, 1, 2, 3, 20, 5}, {B, T});
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte, padded, V, losses); },
      {"[lm_head_loss]", "position 4", "is 20"});
  Tensor negative = test::to_int_tensor(alloc, {0, -1, 2, 3, 4, 5}, {B, T});
  test::expect_error<InvalidArgument>(
      [&] {
        ops::lm_head_loss_forward_backward(ctx, inp, wte, negative, V, 1.0f, losses, dinp, dwte);
      },
      {"[lm_head_loss]", "position 1", "is -1"});
  // Nothing was written before the check failed.
  for (int i = 0; i < Vp * C; ++i) ASSERT_EQ(dwte.data<float>()[i], 0.0f);

  // V larger than the padded vocabulary, or not positive.
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte, good, Vp + 1, losses); },
      {"[lm_head_loss]", "V=33"});
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte, good, 0, losses); }, {"[lm_head_loss]"});
  // Shapes.
  Tensor wte_bad = Tensor::zeros(alloc, {Vp, C + 1}, DType::f32, MemCategory::params, "wte");
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte_bad, good, V, losses); },
      {"[lm_head_loss]", "wte", "(32,9)"});
  Tensor losses_bad = Tensor::empty(alloc, {B, T + 1}, DType::f32, MemCategory::activations, "l");
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte, good, V, losses_bad); },
      {"[lm_head_loss]", "losses", "(2,3)", "(2,4)"});
  Tensor dinp_bad = Tensor::zeros(alloc, {B, T, C + 1}, DType::f32, MemCategory::grads, "dinp");
  test::expect_error<InvalidArgument>(
      [&] {
        ops::lm_head_loss_forward_backward(ctx, inp, wte, good, V, 1.0f, losses, dinp_bad, dwte);
      },
      {"[lm_head_loss]", "dinp"});
  Tensor dwte_bad = Tensor::zeros(alloc, {Vp - 1, C}, DType::f32, MemCategory::grads, "dwte");
  test::expect_error<InvalidArgument>(
      [&] {
        ops::lm_head_loss_forward_backward(ctx, inp, wte, good, V, 1.0f, losses, dinp, dwte_bad);
      },
      {"[lm_head_loss]", "dwte"});
  Tensor float_targets = Tensor::zeros(alloc, {B, T}, DType::f32, MemCategory::activations, "t");
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp, wte, float_targets, V, losses); },
      {"[lm_head_loss]", "targets"});
  Tensor inp2d = Tensor::zeros(alloc, {B * T, C}, DType::f32, MemCategory::activations, "inp");
  test::expect_error<InvalidArgument>(
      [&] { ops::lm_head_loss_forward(ctx, inp2d, wte, good, V, losses); },
      {"[lm_head_loss]", "inp"});
}

}  // namespace
}  // namespace adacc
