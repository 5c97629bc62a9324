// The cost model: recompute_counts against the executor's own re-runs (its recorded
// timeline), and predict_step_seconds against a sum done by hand.
#include "adacc/plan/cost_model.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/recompute_counts.h"
#include "adacc/runtime/step_executor.h"
#include "support/random_batch.h"
#include "support/small_graph.h"

namespace adacc::plan {
namespace {

using runtime::Plan;
using runtime::Policy;

class CostModel : public ::testing::TestWithParam<ops::AttentionKind> {
 protected:
  static constexpr int B = 2, T = 8;
  CostModel() : gpt_(config(GetParam()), alloc_), graph_(gpt_.build_graph(B, T)) {
    Rng rng(3);
    gpt_.init_weights(rng);
    test::TokenBatch batch = test::random_batch(alloc_, rng, B, T, gpt_.config().vocab);
    tokens_ = std::move(batch.tokens);
    targets_ = std::move(batch.targets);
  }
  static model::ModelConfig config(ops::AttentionKind attention) {
    model::ModelConfig c = model::parse_config("L=2,C=16,H=2,V=32,T=8");
    c.attention = attention;
    return c;
  }
  // Re-runs per op in the executor's recorded timeline ("... (recomputing NAME)").
  std::vector<int> executed_recomputes(const Plan& plan) {
    runtime::StepExecutor exec(graph_, gpt_.params(), gpt_.grads(), ctx_, plan);
    exec.set_timeline_recording(true);
    exec.forward_backward(tokens_, targets_);
    std::vector<int> counts(graph_.ops().size(), 0);
    for (const runtime::TimelinePoint& p : exec.timeline()) {
      for (std::size_t o = 0; o < graph_.ops().size(); ++o) {
        if (p.label.ends_with("(recomputing " + graph_.ops()[o]->name() + ")")) ++counts[o];
      }
    }
    return counts;
  }

  Allocator alloc_;
  Context ctx_{alloc_, 1, 1};
  model::Gpt2 gpt_;
  model::StepGraph graph_;
  Tensor tokens_, targets_;
};

TEST_P(CostModel, RecomputeCountsAreTheExecutorsReRunsForEveryBaseline) {
  int total = 0;
  for (std::string name : baseline_names()) {
    if (name.find('<') != std::string::npos) name = "every-2";
    SCOPED_TRACE(name);
    const Plan plan = baseline_plan(graph_, name);
    const std::vector<int> counts = runtime::recompute_counts(graph_, plan);
    EXPECT_EQ(counts, executed_recomputes(plan));
    for (int c : counts) total += c;
  }
  EXPECT_GT(total, 0);  // some baseline recomputes
}

StepCosts synthetic_costs(const model::StepGraph& graph) {
  StepCosts c;
  for (std::size_t o = 0; o < graph.ops().size(); ++o) {
    c.forward_seconds.push_back(0.001 * static_cast<double>(o + 1));
    c.backward_seconds.push_back(0.002 * static_cast<double>(o + 1));
  }
  c.codecs.resize(graph.tensors().size());
  for (std::size_t t = 0; t < graph.tensors().size(); ++t) {
    c.codecs[t].push_back({"bf16", 100, 1e-5 * static_cast<double>(t), 2e-5, 0, 0});
  }
  return c;
}

TEST_P(CostModel, StepTimeIsKeepAllPlusReRunsPlusCodecs) {
  const StepCosts costs = synthetic_costs(graph_);
  const Plan none = none_plan(graph_);
  EXPECT_DOUBLE_EQ(predict_step_seconds(graph_, none, costs), costs.keep_all_seconds());

  const Plan full = full_plan(graph_);
  const std::vector<int> counts = runtime::recompute_counts(graph_, full);
  double expected = costs.keep_all_seconds();
  for (std::size_t o = 0; o < counts.size(); ++o) expected += counts[o] * costs.forward_seconds[o];
  const StepTimeBreakdown t = predict_step_time(graph_, full, costs);
  EXPECT_GT(t.recompute, 0);
  EXPECT_DOUBLE_EQ(t.total(), expected);

  Plan bf16 = none_plan(graph_);
  const model::TensorId id = graph_.find("h1.fc.out");
  bf16.decisions[static_cast<std::size_t>(id)] = {Policy::compress, "bf16"};
  const StepTimeBreakdown b = predict_step_time(graph_, bf16, costs);
  EXPECT_DOUBLE_EQ(b.encode, 1e-5 * id);
  EXPECT_DOUBLE_EQ(b.decode, 2e-5);
  EXPECT_DOUBLE_EQ(b.recompute, 0);
}

TEST_P(CostModel, AnUnmeasuredCodecIsRefused) {
  StepCosts costs = synthetic_costs(graph_);
  Plan p = none_plan(graph_);
  const model::TensorId id = graph_.find("h0.fc.out");
  p.decisions[static_cast<std::size_t>(id)] = {Policy::compress, "bf16"};
  costs.codecs[static_cast<std::size_t>(id)].clear();
  try {
    predict_step_seconds(graph_, p, costs);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("h0.fc.out"), std::string::npos) << e.what();
  }
  costs.forward_seconds.pop_back();
  EXPECT_THROW(predict_step_seconds(graph_, none_plan(graph_), costs), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Attention, CostModel, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
