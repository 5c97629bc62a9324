// Every --policy through one door (plan/policy_planner.h): baselines at a budget, the
// cost-based policies, the infeasible budget's message, and the pruning of codecs the
// MILP never needs.
#include "adacc/plan/policy_planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/cost_model.h"
#include "support/expect_error.h"
#include "support/glpsol.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

CodecCost cost(std::string codec, std::size_t bytes, double seconds, double error = 0) {
  return {std::move(codec), bytes, seconds / 2, seconds / 2, error, error};
}

std::vector<std::string> names(const std::vector<CodecCost>& list) {
  std::vector<std::string> out;
  for (const CodecCost& c : list) out.push_back(c.codec);
  return out;
}

TEST(PruneDominatedCodecs, DropsDominatedAndInadmissibleKeepsTheFrontPerForm) {
  StepCosts c;
  c.codecs.resize(1);
  c.codecs[0] = {
      cost("bf16", 800, 1e-3),           // fastest: stays
      cost("int8-g64", 400, 2e-3),       // stays (fewer bytes than bf16)
      cost("int8-channel", 410, 3e-3),   // dominated by int8-g64
      cost("fp8-e4m3", 400, 2e-3),       // equal to int8-g64, listed later: dropped
      cost("int4-g64", 300, 4e-3),       // stays
      cost("int2-g64", 200, 5e-3, 0.5),  // above the tolerance: dropped
      cost("gelu-deriv-u8", 400, 9e-3),  // another form: int8-g64 cannot dominate it
  };
  const StepCosts p = prune_dominated_codecs(c, 0.1);
  EXPECT_EQ(names(p.codecs[0]),
            (std::vector<std::string>{"bf16", "int8-g64", "int4-g64", "gelu-deriv-u8"}));
  // A dominator above the tolerance dominates nothing.
  StepCosts d;
  d.codecs = {{cost("int8-g64", 400, 1e-3, 0.5), cost("int8-channel", 410, 3e-3)}};
  EXPECT_EQ(names(prune_dominated_codecs(d, 0.1).codecs[0]),
            (std::vector<std::string>{"int8-channel"}));
}

// A one-block model with synthetic costs: every op's forward 1 ms and backward 2 ms, every
// codec that applies to a candidate tensor measured with a time proportional to its
// encoded bytes and no error.
class PolicyPlannerTest : public ::testing::Test {
 protected:
  explicit PolicyPlannerTest(const std::string& spec = "L=1,C=32,H=2,V=64,T=16", int B = 2,
                             int T = 16)
      : cfg_(model::parse_config(spec)),
        graph_(model::build_gpt2_graph(cfg_, B, T)),
        fixed_(runtime::training_fixed_bytes(cfg_, B, T)) {
    costs_.forward_seconds.assign(graph_.ops().size(), 1e-3);
    costs_.backward_seconds.assign(graph_.ops().size(), 2e-3);
    costs_.codecs.resize(graph_.tensors().size());
    const std::vector<bool> saved = runtime::saved_tensors(graph_);
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      const auto id = static_cast<model::TensorId>(i);
      if (t.kind != model::TensorKind::activation || !saved[i] ||
          !runtime::is_recomputable(graph_, id) || t.dtype != DType::f32) {
        continue;
      }
      for (const std::string& name : compress::codec_names()) {
        const compress::Codec& codec = compress::codec_by_name(name);
        if (!codec.applies_to(t.role)) continue;
        const std::size_t bytes = codec.encoded_bytes(t.shape);
        costs_.codecs[i].push_back(cost(name, bytes, 1e-9 * static_cast<double>(bytes) + 1e-5));
      }
    }
  }
  model::ModelConfig cfg_;
  model::StepGraph graph_;
  std::array<std::size_t, kMemCategories> fixed_;
  StepCosts costs_;
};

TEST_F(PolicyPlannerTest, BaselinesFitOrNameTheSmallestBudgetOfEveryPolicy) {
  const PolicyPlanner planner(graph_, 1, fixed_, &costs_);
  const ChosenPlan none = planner.choose("none", Allocator::kUnlimited);
  EXPECT_EQ(none.memory.total_peak, planner.none().total_peak);
  EXPECT_DOUBLE_EQ(none.predicted_seconds, costs_.keep_all_seconds());
  EXPECT_EQ(planner.choose("none", none.memory.total_peak).memory.total_peak,
            none.memory.total_peak);
  const std::string msg = test::error_of<PlanInfeasible>(
      [&] { planner.choose("none", none.memory.total_peak - 1); }, 600);
  EXPECT_NE(msg.find("smallest feasible budget is"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(none.memory.total_peak) + " bytes"), std::string::npos) << msg;
  for (const char* other : {"full", "llmc", "checkmate", "adacc"}) {
    EXPECT_NE(msg.find(std::string(", ") + other + " "), std::string::npos) << other << ": " << msg;
  }
  EXPECT_EQ(planner.smallest_budget("full"),
            runtime::predict_step_memory(graph_, full_plan(graph_), 1, fixed_).total_peak);
}

TEST_F(PolicyPlannerTest, CostBasedPoliciesNeedCosts) {
  const PolicyPlanner planner(graph_, 1, fixed_, nullptr);
  test::expect_error<InvalidArgument>([&] { planner.choose("adacc", Allocator::kUnlimited); },
                                      {"measured costs"});
  EXPECT_LT(planner.choose("full", Allocator::kUnlimited).predicted_seconds, 0);
}

// adacc's space contains every baseline (their codecs are admissible here): at each
// baseline's own peak, adacc is at least as fast, and fits.
TEST_F(PolicyPlannerTest, AdaccIsAtLeastAsFastAsEveryBaselineAtItsPeak) {
  const PolicyPlanner planner(graph_, 1, fixed_, &costs_, /*tolerance=*/1.0);
  for (const char* name : {"none", "selective", "llmc", "full", "compress"}) {
    const ChosenPlan b = planner.choose(name, Allocator::kUnlimited);
    const ChosenPlan a = planner.choose("adacc", b.memory.total_peak);
    EXPECT_LE(a.memory.total_peak, b.memory.total_peak) << name;
    EXPECT_LE(a.predicted_seconds, b.predicted_seconds * (1 + 1e-9)) << name;
    EXPECT_DOUBLE_EQ(a.predicted_seconds, predict_step_seconds(graph_, a.plan, costs_)) << name;
    EXPECT_NO_THROW(runtime::validate(graph_, a.plan)) << name;
    if (std::string(name) != "compress") {
      const ChosenPlan c = planner.choose("checkmate", b.memory.total_peak);
      EXPECT_LE(c.predicted_seconds, b.predicted_seconds * (1 + 1e-9)) << name;
      EXPECT_LE(a.predicted_seconds, c.predicted_seconds * (1 + 1e-9)) << name;
      for (const runtime::Decision& d : c.plan.decisions) {
        EXPECT_NE(d.policy, runtime::Policy::compress) << name;
      }
    }
  }
  EXPECT_LE(planner.smallest_budget("adacc"), planner.smallest_budget("checkmate"));
  // adacc has a plan wherever checkmate or a baseline within its space has one.
  EXPECT_NO_THROW(planner.choose("adacc", planner.smallest_budget("checkmate")));
  EXPECT_NO_THROW(planner.choose("adacc", planner.smallest_budget("full")));
  EXPECT_LE(planner.smallest_budget("checkmate"), planner.smallest_budget("full"));
}

// What --gap, CBC's time limit and --export-mps set reaches the MILP that choose solves.
TEST_F(PolicyPlannerTest, ItsSettingsReachTheMilp) {
  PolicyPlanner planner(graph_, 2, fixed_, &costs_, 0.5);
  MilpOptions o = planner.milp_options("adacc", 12345);
  EXPECT_EQ(o.budget, 12345u);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.fixed, fixed_);
  EXPECT_EQ(o.tolerance, 0.5);
  EXPECT_TRUE(o.codecs);
  EXPECT_TRUE(o.by_blocks);
  EXPECT_FALSE(planner.milp_options("checkmate", 12345).codecs);
  planner.set_gap(0.25);
  planner.set_time_limit(3);
  planner.set_whole_step(true);
  o = planner.milp_options("adacc", 1);
  EXPECT_EQ(o.gap, 0.25);
  EXPECT_EQ(o.time_limit_seconds, 3);
  EXPECT_FALSE(o.by_blocks);
}

// The exported model is the one solved: over the codecs the planner keeps (dominated ones
// pruned), not every measured one.
TEST_F(PolicyPlannerTest, ExportsTheModelItSolves) {
  const PolicyPlanner planner(graph_, 1, fixed_, &costs_);
  test::TempDir dir("policy_export");
  const std::string file = (dir / "step.lp").string();
  planner.export_milp("adacc", Allocator::kUnlimited, file, MilpFormat::lp);
  const std::string text = test::read_text(file);
  const StepCosts pruned = prune_dominated_codecs(costs_, kDefaultTolerance);
  const auto t = static_cast<std::size_t>(graph_.find("h0.fc.out"));
  ASSERT_LT(pruned.codecs[t].size(), costs_.codecs[t].size());  // something was pruned
  for (const CodecCost& c : costs_.codecs[t]) {
    std::string column = "h0.fc.out__" + c.codec;
    std::replace(column.begin(), column.end(), '-', '_');
    const bool kept = std::any_of(pruned.codecs[t].begin(), pruned.codecs[t].end(),
                                  [&](const CodecCost& p) { return p.codec == c.codec; });
    EXPECT_EQ(text.find(column + " ") != std::string::npos, kept) << column;
  }
  test::expect_error<InvalidArgument>(
      [&] { planner.export_milp("full", Allocator::kUnlimited, file, MilpFormat::lp); },
      {"'full'"});
  const PolicyPlanner bare(graph_, 1, fixed_, nullptr);
  test::expect_error<InvalidArgument>(
      [&] { bare.export_milp("adacc", Allocator::kUnlimited, file, MilpFormat::lp); },
      {"measured costs"});
}

TEST_F(PolicyPlannerTest, CompressKeptTensorsCompressesEveryKeptTensorWithItsSmallestCodec) {
  const runtime::Plan full = full_plan(graph_);
  const runtime::Plan c = compress_kept_tensors(graph_, full, costs_, 1.0);
  EXPECT_NO_THROW(runtime::validate(graph_, c));
  const std::vector<bool> saved = runtime::saved_tensors(graph_);
  int compressed = 0;
  for (std::size_t i = 0; i < c.decisions.size(); ++i) {
    SCOPED_TRACE(graph_.tensors()[i].name);
    if (full.decisions[i].policy != runtime::Policy::keep || !saved[i]) {
      EXPECT_EQ(c.decisions[i].policy, full.decisions[i].policy);
      continue;
    }
    std::size_t fewest = 0;
    for (const CodecCost& cc : costs_.codecs[i]) {
      if (compress::codec_by_name(cc.codec).decodes_to() != model::SavedForm::value) continue;
      if (fewest == 0 || cc.encoded_bytes < fewest) fewest = cc.encoded_bytes;
    }
    if (fewest == 0) {
      EXPECT_EQ(c.decisions[i].policy, runtime::Policy::keep);
      continue;
    }
    ASSERT_EQ(c.decisions[i].policy, runtime::Policy::compress);
    EXPECT_EQ(find_codec_cost(costs_, static_cast<model::TensorId>(i), c.decisions[i].codec)
                  ->encoded_bytes,
              fewest);
    ++compressed;
  }
  EXPECT_GT(compressed, 0);
  // Codecs above the tolerance are not used.
  const runtime::Plan strict =
      compress_kept_tensors(graph_, full, prune_dominated_codecs(costs_, 1.0), -1);
  EXPECT_EQ(strict.decisions.size(), full.decisions.size());
  for (std::size_t i = 0; i < full.decisions.size(); ++i) {
    EXPECT_EQ(strict.decisions[i].policy, full.decisions[i].policy);
  }
}

// Two blocks whose activations outweigh the head's logits (T=64, V=64), so that the least
// peak is reached while saved activations are held.
class PolicyPlannerDeepTest : public PolicyPlannerTest {
 protected:
  PolicyPlannerDeepTest() : PolicyPlannerTest("L=2,C=32,H=2,V=64,T=64", 4, 64) {}
};

// adacc reaches below checkmate's and full's smallest budgets (it can compress what they
// keep) even with a solver stopped before finding anything: the contained plans with their
// kept tensors compressed carry it, and it has a plan there. (With the solver finishing,
// the MILP's own least-peak plan does; a 10 s limit made this test take 27 s.)
TEST_F(PolicyPlannerDeepTest, AdaccReachesBelowCheckmateEvenWhenTheSolverStopsAtOnce) {
  PolicyPlanner planner(graph_, 1, fixed_, &costs_);
  planner.set_time_limit(1e-9);
  const std::size_t adacc = planner.smallest_budget("adacc");
  EXPECT_LT(adacc, planner.smallest_budget("checkmate"));
  EXPECT_LE(planner.smallest_budget("checkmate"), planner.smallest_budget("full"));
  const ChosenPlan c = planner.choose("adacc", adacc);
  EXPECT_EQ(c.memory.total_peak, adacc);
  EXPECT_EQ(runtime::predict_step_memory(graph_, c.plan, 1, fixed_).total_peak, adacc);
  bool any_compressed = false;
  for (const runtime::Decision& d : c.plan.decisions) {
    any_compressed = any_compressed || d.policy == runtime::Policy::compress;
  }
  EXPECT_TRUE(any_compressed);
  EXPECT_THROW(planner.choose("adacc", adacc - 1), PlanInfeasible);
}

}  // namespace
}  // namespace adacc::plan
