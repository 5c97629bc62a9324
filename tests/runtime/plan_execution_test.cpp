// Execution under plans: any plan that only keeps and recomputes gives losses and
// gradients bit-identical to keeping everything (both attention forms, random plans);
// random plans that also compress leave the forward loss exactly keep-all's and move the
// gradients within the bound of the codec's round-trip error; and the memory model
// predicts the allocator's measured peak.
#include <gtest/gtest.h>

#include <cstring>

#include "adacc/compress/codec.h"
#include "adacc/model/gpt2.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "support/codec_gradients.h"
#include "support/random_batch.h"

namespace adacc::runtime {
namespace {

struct StepSetup {
  Allocator alloc;
  Context ctx{alloc, 2, 1};
  model::Gpt2 gpt;
  model::StepGraph graph;
  Tensor tokens, targets;

  StepSetup(const std::string& spec, ops::AttentionKind kind, int B, int T)
      : gpt(config(spec, kind), alloc), graph(gpt.build_graph(B, T)) {
    Rng rng(7);
    gpt.init_weights(rng);
    test::TokenBatch batch = test::random_batch(alloc, rng, B, T, gpt.config().vocab);
    tokens = std::move(batch.tokens);
    targets = std::move(batch.targets);
  }
  static model::ModelConfig config(const std::string& spec, ops::AttentionKind kind) {
    model::ModelConfig c = model::parse_config(spec);
    c.attention = kind;
    return c;
  }

  // Runs one step under `plan`; returns the loss and leaves the gradients in gpt.grads().
  float step(const Plan& plan) {
    gpt.grads().flat.zero();
    StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
    return exec.forward_backward(tokens, targets);
  }
};

// Every saved activation gets keep or recompute (or, with `codec`, compress where the
// codec applies to its role) at random;
// the loss gradient, which cannot be recomputed, is kept.
Plan random_plan(const model::StepGraph& g, Rng& rng, const std::string& codec = {}) {
  Plan p = keep_all_plan(g);
  p.planner = "random";
  for (std::size_t id = 0; id < g.tensors().size(); ++id) {
    const auto tid = static_cast<model::TensorId>(id);
    if (!is_saved(g, tid) || !is_recomputable(g, tid)) continue;
    const std::uint64_t r = rng.next_u64() % 3;
    if (r == 1) p.decisions[id].policy = Policy::recompute;
    if (r == 2 && !codec.empty() && compress::codec_by_name(codec).applies_to(g.tensor(tid).role)) {
      p.decisions[id] = {Policy::compress, codec};
    }
  }
  return p;
}

void expect_bit_identical_to_keep_all(ops::AttentionKind kind) {
  StepSetup s("L=3,C=24,H=3,V=61,T=32", kind, 2, 13);
  const float loss_ref = s.step(keep_all_plan(s.graph));
  const test::Vec grads_ref = test::to_vec(s.gpt.grads().flat);
  Rng rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    const Plan plan = random_plan(s.graph, rng);
    const float loss = s.step(plan);
    EXPECT_EQ(loss, loss_ref) << "trial " << trial;
    const test::Vec grads = test::to_vec(s.gpt.grads().flat);
    ASSERT_EQ(std::memcmp(grads.data(), grads_ref.data(), grads.size() * sizeof(double)), 0)
        << "trial " << trial << ": gradients differ";
  }
  // Everything recomputable recomputed: the deepest chains.
  Plan all = keep_all_plan(s.graph);
  for (std::size_t id = 0; id < s.graph.tensors().size(); ++id) {
    if (is_recomputable(s.graph, static_cast<model::TensorId>(id))) {
      all.decisions[id].policy = Policy::recompute;
    }
  }
  EXPECT_EQ(s.step(all), loss_ref);
  EXPECT_EQ(test::to_vec(s.gpt.grads().flat), grads_ref);
}

TEST(PlanExecution, KeepAndRecomputeAreBitIdenticalFlash) {
  expect_bit_identical_to_keep_all(ops::AttentionKind::flash);
}

TEST(PlanExecution, KeepAndRecomputeAreBitIdenticalNaive) {
  expect_bit_identical_to_keep_all(ops::AttentionKind::naive);
}

// Random plans that keep, recompute and compress (each codec in turn): the forward never
// reads a compressed tensor, so the loss is keep-all's exactly; the gradients move within
// the bound of support/codec_gradients.h of the codec's round-trip error on the tensors
// the plan compresses.
TEST(PlanExecution, CompressingPlansLeaveTheForwardLossAndBoundTheGradientError) {
  for (auto kind : {ops::AttentionKind::flash, ops::AttentionKind::naive}) {
    StepSetup s("L=2,C=32,H=4,V=64,T=32", kind, 2, 16);
    const float loss_keep = s.step(keep_all_plan(s.graph));
    const test::Vec grads_keep = test::to_vec(s.gpt.grads().flat);
    Rng rng(5);
    for (const char* codec : {"bf16", "fp8-e4m3", "int8-g64", "int4-g64"}) {
      const Plan plan = random_plan(s.graph, rng, codec);
      const double eps =
          test::largest_round_trip_error(s.graph, s.gpt.params(), s.ctx, s.tokens, s.targets, plan);
      EXPECT_EQ(s.step(plan), loss_keep) << codec << ": forward loss is untouched by the plan";
      test::expect_gradients_within_codec_error(test::to_vec(s.gpt.grads().flat), grads_keep, eps,
                                                codec);
    }
  }
}

// Predicted and measured peaks of one step, on top of what the setup holds.
void expect_prediction_matches(StepSetup& s, const Plan& plan) {
  const MemStats before = s.alloc.stats();
  s.alloc.reset_peak();
  StepExecutor exec(s.graph, s.gpt.params(), s.gpt.grads(), s.ctx, plan);
  exec.forward_backward(s.tokens, s.targets);
  const MemStats after = s.alloc.stats();
  const MemoryPrediction p = predict_step_memory(s.graph, plan, s.ctx.threads(), before.current);
  for (int c = 0; c < kMemCategories; ++c) {
    EXPECT_EQ(p.peak[c], after.peak[c]) << plan.planner << " category " << c;
  }
  EXPECT_EQ(p.total_peak, after.total_peak) << plan.planner << ": predicted at " << p.where;
}

TEST(MemoryModel, PredictsTheMeasuredPeakForRandomPlans) {
  for (auto kind : {ops::AttentionKind::flash, ops::AttentionKind::naive}) {
    StepSetup s("L=3,C=64,H=4,V=300,T=64", kind, 3, 40);
    expect_prediction_matches(s, keep_all_plan(s.graph));
    Rng rng(3);
    for (int trial = 0; trial < 6; ++trial) {
      expect_prediction_matches(s, random_plan(s.graph, rng, trial % 2 ? "bf16" : ""));
    }
  }
}

}  // namespace
}  // namespace adacc::runtime
