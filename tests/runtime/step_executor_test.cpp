// The whole GPT-2 step (fp32, through the step graph and executor) against a float64
// GPT-2 built from the reference ops: loss and every parameter gradient, both attention
// forms. Also: the executor leaves no activation behind, and evaluation matches training.
#include "adacc/runtime/step_executor.h"

#include <gtest/gtest.h>

#include "adacc/model/gpt2.h"
#include "model/gpt2_reference.h"
#include "support/random_batch.h"

namespace adacc {
namespace {

using test::Vec;

void check_against_float64(ops::AttentionKind attention, int B, int T) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::ModelConfig cfg = model::parse_config("L=2,C=24,H=3,V=67,T=32");
  cfg.attention = attention;
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(5);
  gpt.init_weights(rng);
  // Larger-than-init weights so that every path carries signal.
  float* w = gpt.params().flat.data<float>();
  for (std::int64_t i = 0; i < gpt.params().flat.numel(); ++i) w[i] += 0.1f * rng.normal();

  const test::TokenIds batch = test::random_token_ids(rng, B, T, cfg.vocab);
  Tensor tokens = test::to_int_tensor(alloc, batch.tokens, {B, T});
  Tensor targets = test::to_int_tensor(alloc, batch.targets, {B, T}, "targets");
  const model::StepGraph graph = gpt.build_graph(B, T);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  const float loss = exec.forward_backward(tokens, targets);

  std::vector<Vec> p, g;
  for (const auto& np : gpt.params().named()) {
    p.push_back(test::to_vec(np.tensor));
    g.emplace_back(p.back().size(), 0.0);
  }
  const test::RefGpt2 ref{cfg, p};
  const double ref_loss = ref.forward_backward(batch.tokens, batch.targets, B, T, g);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * ref_loss);

  const auto& named = gpt.grads().named();
  double worst = 0;
  for (std::size_t i = 0; i < named.size(); ++i) {
    if (i == 0) {
      // Padded rows of dwte stay zero in both; compare the real rows only.
      const Vec got = test::to_vec(named[i].tensor);
      EXPECT_EQ(test::max_abs_diff(
                    Vec(got.begin() + cfg.vocab * cfg.n_embd, got.end()),
                    Vec(got.size() - static_cast<std::size_t>(cfg.vocab * cfg.n_embd), 0.0)),
                0.0);
    }
    const double err = test::rel_error(test::to_vec(named[i].tensor), g[i]);
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-5) << named[i].name;
  }
  std::printf("worst relative gradient error vs float64: %.2e\n", worst);
  // Every activation and activation gradient was released.
  const MemStats s = alloc.stats();
  EXPECT_EQ(s.current_of(MemCategory::activations),
            2 * static_cast<std::size_t>((B * T * 4 + 63) / 64 * 64));
  EXPECT_EQ(s.current_of(MemCategory::workspace), 0u);
}

TEST(StepExecutor, FlashGradientsMatchFloat64Model) {
  check_against_float64(ops::AttentionKind::flash, 2, 7);
}

TEST(StepExecutor, NaiveGradientsMatchFloat64Model) {
  check_against_float64(ops::AttentionKind::naive, 2, 7);
}

TEST(StepExecutor, BatchOfOneAndLongerSequence) {
  check_against_float64(ops::AttentionKind::flash, 1, 29);
}

TEST(StepExecutor, EvalLossEqualsTrainLossAndAttentionFormsAgree) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  float losses[2];
  std::vector<Vec> grads(2);
  for (int k = 0; k < 2; ++k) {
    model::ModelConfig cfg = model::parse_config("L=2,C=32,H=4,V=100,T=64");
    cfg.attention = k == 0 ? ops::AttentionKind::naive : ops::AttentionKind::flash;
    model::Gpt2 gpt(cfg, alloc);
    Rng rng(9);
    gpt.init_weights(rng);
    const test::TokenIds batch = test::random_token_ids(rng, 3, 50, cfg.vocab);
    Tensor tokens = test::to_int_tensor(alloc, batch.tokens, {3, 50});
    Tensor targets = test::to_int_tensor(alloc, batch.targets, {3, 50}, "targets");
    const model::StepGraph graph = gpt.build_graph(3, 50);
    runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
    const float eval = exec.forward(tokens, targets);
    losses[k] = exec.forward_backward(tokens, targets);
    EXPECT_EQ(eval, losses[k]);
    grads[static_cast<std::size_t>(k)] = test::to_vec(gpt.grads().flat);
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-6);
  EXPECT_LT(test::rel_error(grads[0], grads[1]), 1e-5);
}

TEST(StepExecutor, FeaturesAreTheLossInput) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  const model::ModelConfig cfg = model::parse_config("L=2,C=16,H=2,V=40,T=16");
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(3);
  gpt.init_weights(rng);
  const test::TokenIds batch = test::random_token_ids(rng, 2, 9, cfg.vocab);
  Tensor tokens = test::to_int_tensor(alloc, batch.tokens, {2, 9});
  Tensor targets = test::to_int_tensor(alloc, batch.targets, {2, 9}, "targets");
  const model::StepGraph graph = gpt.build_graph(2, 9);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  const float loss = exec.forward(tokens, targets);
  const Tensor features = exec.features(tokens);
  ASSERT_EQ(features.shape(), (Shape{2, 9, 16}));
  test::Vec losses;
  const double ref =
      ref::lm_head_loss_forward(test::to_vec(features), test::to_vec(gpt.params().wte),
                                batch.targets, 18, 16, cfg.vocab, cfg.padded_vocab, losses);
  EXPECT_NEAR(loss, ref, 1e-6);
}

TEST(StepExecutor, RejectsBatchOfWrongShape) {
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  model::Gpt2 gpt(model::parse_config("L=1,C=8,H=2,V=10,T=16"), alloc);
  const model::StepGraph graph = gpt.build_graph(2, 4);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  Tensor tokens = test::to_int_tensor(alloc, std::vector<int>(6, 1), {2, 3});
  EXPECT_THROW(exec.forward(tokens, tokens), InvalidArgument);
  EXPECT_THROW(gpt.build_graph(2, 17), InvalidArgument);
}

}  // namespace
}  // namespace adacc
