// Baseline planners on a small GPT-2 (3 blocks) with both attention kinds: each plan
// validates and recomputes exactly the tensors its recipe names (listed here by name,
// independently of how the planners find them); the name dispatch and its errors.
#include "adacc/plan/baselines.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "support/small_graph.h"

namespace adacc::plan {
namespace {

using model::TensorId;
using model::TensorKind;
using runtime::Plan;
using runtime::Policy;
using Names = std::set<std::string>;

class BaselinesTest : public test::SmallGraph {
 protected:
  std::string h(int l, const std::string& suffix) const {
    return "h" + std::to_string(l) + "." + suffix;
  }
  // What the backward of block l saves, besides its input.
  Names block_saved(int l) const {
    Names out;
    for (const std::string& s : std::initializer_list<std::string>{
             "ln1.out", "ln1.mean", "ln1.rstd", "qkv.out", "attn.out", stats(), "res1.out",
             "ln2.out", "ln2.mean", "ln2.rstd", "fc.out", "gelu.out", "res2.out"}) {
      out.insert(h(l, s));
    }
    return out;
  }
  Names all_saved() const {
    Names out = {"embed.out", "lnf.mean", "lnf.rstd", "loss.grad"};
    for (int l = 0; l < kLayers; ++l) out.merge(block_saved(l));
    return out;
  }
  // Recomputed by per-block checkpointing: each block's activations but its output.
  Names full_recomputed() const {
    Names out;
    for (int l = 0; l < kLayers; ++l) {
      Names b = block_saved(l);
      b.erase(h(l, "res2.out"));
      out.merge(b);
    }
    return out;
  }

  // Saved activations in `recomputed` are recomputed, the other saved ones kept; the rest
  // as in keep_all_plan (activations nobody saves: recompute; params and inputs: keep).
  void expect_recomputes(const Plan& plan, const Names& recomputed) const {
    ASSERT_EQ(plan.decisions.size(), graph_.tensors().size());
    const Names saved = all_saved();
    for (const std::string& name : recomputed) ASSERT_TRUE(saved.count(name)) << name;
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      Policy want = Policy::keep;
      if (t.kind == TensorKind::activation) {
        want = !saved.count(t.name) || recomputed.count(t.name) ? Policy::recompute : Policy::keep;
      }
      EXPECT_EQ(plan.decisions[i].policy, want) << plan.planner << ": " << t.name;
      EXPECT_TRUE(plan.decisions[i].codec.empty()) << t.name;
    }
    EXPECT_NO_THROW(runtime::validate(graph_, plan)) << plan.planner;
  }
};

TEST_P(BaselinesTest, TheTestKnowsWhatIsSaved) {
  Names saved;
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    if (graph_.tensor(id).kind == TensorKind::activation && runtime::is_saved(graph_, id)) {
      saved.insert(graph_.tensor(id).name);
    }
  }
  EXPECT_EQ(saved, all_saved());
}

TEST_P(BaselinesTest, NoneKeepsEverything) {
  const Plan plan = none_plan(graph_);
  EXPECT_EQ(plan.planner, "none");
  expect_recomputes(plan, {});
}

TEST_P(BaselinesTest, FullKeepsOnlyBlockInputsAndTheHead) {
  const Plan plan = full_plan(graph_);
  EXPECT_EQ(plan.planner, "full");
  expect_recomputes(plan, full_recomputed());
}

TEST_P(BaselinesTest, SelectiveRecomputesTheAttentionStatistics) {
  const Plan plan = selective_plan(graph_);
  EXPECT_EQ(plan.planner, "selective");
  expect_recomputes(plan, {h(0, stats()), h(1, stats()), h(2, stats())});
}

TEST_P(BaselinesTest, LlmcRecomputesGeluAndLayerNormOutputs) {
  const Plan plan = llmc_plan(graph_);
  EXPECT_EQ(plan.planner, "llmc");
  Names want;
  for (int l = 0; l < kLayers; ++l) {
    want.insert({h(l, "gelu.out"), h(l, "ln1.out"), h(l, "ln2.out")});
  }
  expect_recomputes(plan, want);
}

TEST_P(BaselinesTest, EveryKKeepsEveryKthBlockInput) {
  // every-1 is full.
  const Plan one = every_k_plan(graph_, 1);
  EXPECT_EQ(one.planner, "every-1");
  expect_recomputes(one, full_recomputed());
  // every-2: blocks 0 and 2 keep their inputs (embed.out, h1.res2.out); block 1's input
  // h0.res2.out is recomputed from embed.out. h2.res2.out feeds lnf: kept.
  Names two = full_recomputed();
  two.insert(h(0, "res2.out"));
  const Plan plan2 = every_k_plan(graph_, 2);
  EXPECT_EQ(plan2.planner, "every-2");
  expect_recomputes(plan2, two);
  // every-3 and beyond: only embed.out and the last block's output.
  Names three = two;
  three.insert(h(1, "res2.out"));
  expect_recomputes(every_k_plan(graph_, 3), three);
  expect_recomputes(every_k_plan(graph_, 7), three);
}

TEST_P(BaselinesTest, DispatchByName) {
  EXPECT_EQ(baseline_plan(graph_, "none").planner, "none");
  for (const char* name : {"none", "full", "selective", "llmc", "every-1", "every-2", "every-12"}) {
    const Plan plan = baseline_plan(graph_, name);
    EXPECT_EQ(plan.planner, name);
    EXPECT_NO_THROW(runtime::validate(graph_, plan)) << name;
  }
  expect_recomputes(baseline_plan(graph_, "full"), full_recomputed());
  expect_recomputes(baseline_plan(graph_, "selective"),
                    {h(0, stats()), h(1, stats()), h(2, stats())});
  const Plan two = baseline_plan(graph_, "every-2");
  EXPECT_EQ(two.decisions[static_cast<std::size_t>(graph_.find("h0.res2.out"))].policy,
            Policy::recompute);
  EXPECT_EQ(two.decisions[static_cast<std::size_t>(graph_.find("h1.res2.out"))].policy,
            Policy::keep);
}

INSTANTIATE_TEST_SUITE_P(Attention, BaselinesTest, test::kAttentionForms, test::attention_name);

TEST(Baselines, UnknownNamesListTheKnownOnes) {
  Allocator alloc;
  model::Gpt2 model(model::parse_config("L=2,C=16,H=2,V=50,T=16"), alloc);
  const model::StepGraph graph = model.build_graph(1, 4);
  for (const char* name : {"bogus", "", "Full", "checkmate"}) {
    try {
      baseline_plan(graph, name);
      ADD_FAILURE() << name;
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("'" + std::string(name) + "'"), std::string::npos) << msg;
      for (const char* known : {"none", "full", "selective", "llmc", "every-<k>"}) {
        EXPECT_NE(msg.find(known), std::string::npos) << msg;
      }
    }
  }
  for (const char* name :
       {"every-", "every-0", "every--1", "every-x", "every-2x", "every-+2", "every-99999999999"}) {
    try {
      baseline_plan(graph, name);
      ADD_FAILURE() << name;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(every_k_plan(graph, 0), InvalidArgument);
  EXPECT_EQ(baseline_names(),
            (std::vector<std::string>{"none", "full", "selective", "llmc", "every-<k>", "compress",
                                      "compress-<codec>"}));
}

TEST(Baselines, DeepModelsValidate) {
  Allocator alloc;
  model::Gpt2 model(model::parse_config("L=12,C=16,H=2,V=50,T=16"), alloc);
  const model::StepGraph graph = model.build_graph(1, 4);
  for (const char* name : {"none", "full", "selective", "llmc", "every-2", "every-5", "every-12"}) {
    EXPECT_NO_THROW(runtime::validate(graph, baseline_plan(graph, name))) << name;
  }
  // every-5 keeps the inputs of blocks 0, 5, 10 and the last block's output.
  const Plan plan = baseline_plan(graph, "every-5");
  for (int l = 0; l < 12; ++l) {
    const std::string out = "h" + std::to_string(l) + ".res2.out";
    const bool kept = (l + 1) % 5 == 0 || l == 11;
    EXPECT_EQ(plan.decisions[static_cast<std::size_t>(graph.find(out))].policy,
              kept ? Policy::keep : Policy::recompute)
        << out;
  }
}

}  // namespace
}  // namespace adacc::plan
