// The MILP planner against the memory model and brute force: its memory rows equal the
// memory model's peak for random plans; its optimum equals the best of every valid plan
// (adacc) and of every keep/recompute plan (checkmate); monotone in the budget; an
// infeasible budget names the smallest feasible one; keep/recompute plans train
// bit-identically to `none`.
#include "adacc/plan/milp_planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/core/rng.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/cost_model.h"
#include "adacc/runtime/step_executor.h"
#include "support/random_batch.h"
#include "support/small_graph.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

using runtime::Plan;
using runtime::Policy;

model::ModelConfig config(int layers, ops::AttentionKind attention) {
  model::ModelConfig c = model::parse_config("L=" + std::to_string(layers) + ",C=16,H=2,V=32,T=8");
  c.attention = attention;
  return c;
}

// Random op times; on the tensors named in `with_codecs` (name suffixes), each codec of
// `codecs` that applies to the role, with random times.
StepCosts synthetic_costs(const model::StepGraph& g, Rng& rng,
                          const std::vector<std::string>& with_codecs,
                          const std::vector<std::string>& codecs) {
  StepCosts c;
  for (std::size_t o = 0; o < g.ops().size(); ++o) {
    c.forward_seconds.push_back(1e-3 * (1 + static_cast<double>(rng.next_u64() % 1000)));
    c.backward_seconds.push_back(2e-3);
  }
  c.codecs.resize(g.tensors().size());
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    const model::TensorInfo& info = g.tensors()[t];
    const bool chosen = std::any_of(with_codecs.begin(), with_codecs.end(),
                                    [&](const std::string& s) { return info.name.ends_with(s); });
    if (!chosen) continue;
    for (const std::string& name : codecs) {
      if (!compress::codec_by_name(name).applies_to(info.role)) continue;
      CodecCost cc;
      cc.codec = name;
      cc.encoded_bytes = compress::codec_by_name(name).encoded_bytes(info.shape);
      cc.encode_seconds = 1e-4 * (1 + static_cast<double>(rng.next_u64() % 100));
      cc.decode_seconds = 1e-4 * (1 + static_cast<double>(rng.next_u64() % 100));
      c.codecs[t].push_back(cc);
    }
  }
  return c;
}

// Every choice the planner may make per saved activation (keep first).
std::vector<std::vector<runtime::Decision>> choices(const model::StepGraph& g,
                                                    const StepCosts& costs, bool codecs) {
  const std::vector<bool> saved = runtime::saved_tensors(g);
  std::vector<std::vector<runtime::Decision>> out(g.tensors().size());
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    if (g.tensors()[t].kind != model::TensorKind::activation || !saved[t]) continue;
    out[t].push_back({Policy::keep, {}});
    if (codecs) {
      for (const CodecCost& cc : costs.codecs[t]) out[t].push_back({Policy::compress, cc.codec});
    }
    if (runtime::is_recomputable(g, static_cast<model::TensorId>(t))) {
      out[t].push_back({Policy::recompute, {}});
    }
  }
  return out;
}

struct Priced {
  double seconds;
  std::size_t peak;
};

// Every valid plan of these choices, priced.
std::vector<Priced> brute_force(const model::StepGraph& g, const StepCosts& costs,
                                const MilpOptions& options) {
  const auto ch = choices(g, costs, options.codecs);
  std::vector<std::size_t> vars;
  for (std::size_t t = 0; t < ch.size(); ++t) {
    if (ch[t].size() > 1) vars.push_back(t);
  }
  Plan plan = runtime::keep_all_plan(g);
  std::vector<std::size_t> digit(vars.size(), 0);
  std::vector<Priced> out;
  for (;;) {
    for (std::size_t k = 0; k < vars.size(); ++k) plan.decisions[vars[k]] = ch[vars[k]][digit[k]];
    try {
      const runtime::MemoryPrediction m =
          runtime::predict_step_memory(g, plan, options.threads, options.fixed);
      out.push_back({predict_step_seconds(g, plan, costs), m.total_peak});
    } catch (const Error&) {
      // not a valid plan
    }
    std::size_t k = 0;
    while (k < vars.size() && ++digit[k] == ch[vars[k]].size()) digit[k++] = 0;
    if (k == vars.size()) break;
  }
  return out;
}

Plan random_plan(const model::StepGraph& g, const StepCosts& costs, Rng& rng) {
  const auto ch = choices(g, costs, true);
  for (;;) {
    Plan p = runtime::keep_all_plan(g);
    for (std::size_t t = 0; t < ch.size(); ++t) {
      if (!ch[t].empty()) p.decisions[t] = ch[t][rng.next_u64() % ch[t].size()];
    }
    try {
      runtime::validate(g, p);
      return p;
    } catch (const Error&) {
    }
  }
}

class Milp : public ::testing::TestWithParam<ops::AttentionKind> {};

// Two shapes: the tiny one of the other tests, and a larger one (C=64, T=32: larger
// attention workspaces and probabilities).
TEST_P(Milp, MemoryRowsAreTheMemoryModelsPeakForRandomPlans) {
  const std::vector<std::string> codecs = compress::codec_names();
  for (const char* shape : {"C=16,H=2,V=32,T=8", "C=64,H=4,V=64,T=32"}) {
    const int B = shape[2] == '1' ? 2 : 4, T = shape[2] == '1' ? 8 : 32;
    for (int layers = 1; layers <= 2; ++layers) {
      Allocator alloc;
      model::ModelConfig c = model::parse_config("L=" + std::to_string(layers) + "," + shape);
      c.attention = GetParam();
      model::Gpt2 gpt(c, alloc);
      const model::StepGraph g = gpt.build_graph(B, T);
      Rng rng(11 + static_cast<std::uint64_t>(layers));
      const StepCosts costs = synthetic_costs(g, rng, {""}, codecs);  // every tensor
      for (int threads = 1; threads <= 2; ++threads) {
        MilpOptions o;
        o.threads = threads;
        o.fixed = runtime::training_fixed_bytes(gpt.config(), B, T);
        std::vector<Plan> plans;
        for (std::string b : baseline_names()) {
          if (b.find('<') != std::string::npos) b = "every-2";
          plans.push_back(baseline_plan(g, b));
        }
        for (int k = 0; k < 40; ++k) plans.push_back(random_plan(g, costs, rng));
        for (const Plan& p : plans) {
          SCOPED_TRACE(std::string(shape) + " L=" + std::to_string(layers) + " threads " +
                       std::to_string(threads) + " plan " + p.planner);
          const std::size_t truth = runtime::predict_step_memory(g, p, threads, o.fixed).total_peak;
          EXPECT_EQ(milp_predicted_peak(g, costs, o, p), truth);
        }
      }
    }
  }
}

// One L=1 graph, its synthetic costs (codecs on two tensors) and every valid plan priced.
class MilpBruteForce : public ::testing::TestWithParam<ops::AttentionKind> {
 protected:
  MilpBruteForce() : gpt_(config(1, GetParam()), alloc_), g_(gpt_.build_graph(2, 8)) {
    Rng rng(5);
    costs_ = synthetic_costs(g_, rng, {"h0.fc.out", "h0.attn.out"}, {"bf16", "gelu-deriv-u8"});
    options_.threads = 1;
    options_.fixed = runtime::training_fixed_bytes(gpt_.config(), 2, 8);
    options_.gap = 0;
  }
  // The least time of the plans in `all` that fit `budget` (infinity if none).
  static double best(const std::vector<Priced>& all, std::size_t budget) {
    double b = std::numeric_limits<double>::infinity();
    for (const Priced& p : all) {
      if (p.peak <= budget) b = std::min(b, p.seconds);
    }
    return b;
  }
  Allocator alloc_;
  model::Gpt2 gpt_;
  model::StepGraph g_;
  StepCosts costs_;
  MilpOptions options_;
};

// Every time of `costs` times `factor`.
StepCosts scaled(StepCosts costs, double factor) {
  for (double& s : costs.forward_seconds) s *= factor;
  for (double& s : costs.backward_seconds) s *= factor;
  for (std::vector<CodecCost>& per_tensor : costs.codecs) {
    for (CodecCost& c : per_tensor) {
      c.encode_seconds *= factor;
      c.decode_seconds *= factor;
    }
  }
  return costs;
}

// At op times of milliseconds, and of at most 10 microseconds: there CBC, given the
// objective in seconds, declared its warm start optimal far above the optimum (CLP's
// absolute tolerances; milp_solver.h).
TEST_P(MilpBruteForce, OptimumIsTheBestValidPlanAtEveryBudget) {
  for (const auto& [codecs, factor] :
       {std::pair{true, 1.0}, std::pair{false, 1.0}, std::pair{true, 1e-5}}) {
    SCOPED_TRACE(std::string(codecs ? "adacc" : "checkmate") + ", times x" +
                 std::to_string(factor));
    const StepCosts costs = scaled(costs_, factor);
    MilpOptions o = options_;
    o.codecs = codecs;
    const std::vector<Priced> all = brute_force(g_, costs, o);
    std::size_t lo = all.front().peak, hi = all.front().peak;
    for (const Priced& p : all) {
      lo = std::min(lo, p.peak);
      hi = std::max(hi, p.peak);
    }
    EXPECT_EQ(smallest_feasible_budget(g_, costs, o), lo);
    double previous = std::numeric_limits<double>::infinity();
    for (int k = 0; k <= 8; ++k) {
      o.budget = lo + (hi - lo) * static_cast<std::size_t>(k) / 8;
      SCOPED_TRACE("budget " + std::to_string(o.budget));
      const MilpResult r = plan_milp(g_, costs, o, codecs ? "adacc" : "checkmate");
      const double expected = best(all, o.budget);
      EXPECT_NEAR(r.predicted_seconds, expected, 1e-9 * expected);
      EXPECT_NEAR(r.objective, r.predicted_seconds - costs.keep_all_seconds(), 1e-9 * expected);
      EXPECT_TRUE(r.proven_optimal);
      EXPECT_LE(r.memory.total_peak, o.budget);
      EXPECT_LE(r.predicted_seconds, previous * (1 + 1e-12));  // never rises with the budget
      previous = r.predicted_seconds;
      EXPECT_NO_THROW(runtime::validate(g_, r.plan));
      for (const runtime::Decision& d : r.plan.decisions) {
        if (!codecs) {
          EXPECT_NE(d.policy, Policy::compress);
        }
      }
    }
  }
}

TEST_P(MilpBruteForce, BelowTheSmallestBudgetTheErrorNamesIt) {
  const std::size_t least = smallest_feasible_budget(g_, costs_, options_);
  MilpOptions o = options_;
  o.budget = least - 1;
  try {
    plan_milp(g_, costs_, o);
    FAIL() << "no exception";
  } catch (const PlanInfeasible& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(least)), std::string::npos) << e.what();
  }
  o.budget = least;
  EXPECT_LE(plan_milp(g_, costs_, o).memory.total_peak, least);
}

TEST_P(MilpBruteForce, AKeepRecomputePlanTrainsBitIdenticallyToNone) {
  MilpOptions o = options_;
  o.codecs = false;
  const std::size_t least = smallest_feasible_budget(g_, costs_, o);
  o.budget = least;
  const MilpResult r = plan_milp(g_, costs_, o, "checkmate");
  int recomputed = 0;
  for (std::size_t t = 0; t < r.plan.decisions.size(); ++t) {
    recomputed += runtime::saved_tensors(g_)[t] && r.plan.decisions[t].policy == Policy::recompute;
  }
  ASSERT_GT(recomputed, 0);
  Rng rng(21);
  gpt_.init_weights(rng);
  const test::TokenBatch batch = test::random_batch(alloc_, rng, 2, 8, gpt_.config().vocab);
  Context ctx(alloc_, 1, 1);
  auto step = [&](const Plan& plan, std::vector<float>& grads) {
    gpt_.grads().flat.zero();
    runtime::StepExecutor exec(g_, gpt_.params(), gpt_.grads(), ctx, plan);
    const float loss = exec.forward_backward(batch.tokens, batch.targets);
    const float* p = gpt_.grads().flat.data<float>();
    grads.assign(p, p + gpt_.grads().flat.numel());
    return loss;
  };
  std::vector<float> g_none, g_milp;
  const float l_none = step(none_plan(g_), g_none);
  const float l_milp = step(r.plan, g_milp);
  EXPECT_EQ(std::memcmp(&l_none, &l_milp, sizeof(float)), 0);
  ASSERT_EQ(g_none.size(), g_milp.size());
  EXPECT_EQ(std::memcmp(g_none.data(), g_milp.data(), g_none.size() * sizeof(float)), 0);
}

// A solver stopped by its time limit: it returns the plan it started from (the fastest
// baseline that fits) or better, never an error while a baseline fits; with nothing found
// (no baseline fits) the error says it ran out of time, not that the budget is infeasible
// (a limit of 1e-9 s stops CBC before its first heuristic).
TEST_P(MilpBruteForce, StoppedByTheTimeLimitItReturnsItsStartOrSaysSo) {
  MilpOptions o = options_;
  o.time_limit_seconds = 1e-9;
  o.max_chain_blocks = 2;
  const std::size_t full_peak =
      runtime::predict_step_memory(g_, baseline_plan(g_, "full"), 1, o.fixed).total_peak;
  o.budget = full_peak;
  const MilpResult r = plan_milp(g_, costs_, o);
  EXPECT_LE(r.memory.total_peak, o.budget);
  // The baselines the model can express (its costs measure codecs on two tensors only).
  double fastest = std::numeric_limits<double>::infinity();
  std::size_t least_baseline = full_peak;
  for (const char* name : {"none", "selective", "llmc", "full", "every-2"}) {
    const Plan p = baseline_plan(g_, name);
    const std::size_t peak = runtime::predict_step_memory(g_, p, 1, o.fixed).total_peak;
    least_baseline = std::min(least_baseline, peak);
    if (peak <= o.budget) fastest = std::min(fastest, predict_step_seconds(g_, p, costs_));
  }
  ASSERT_LT(fastest, std::numeric_limits<double>::infinity());
  EXPECT_LE(r.predicted_seconds, fastest * (1 + 1e-12));
  // Below every baseline's peak but above the least: no start.
  const std::size_t least = smallest_feasible_budget(g_, costs_, options_);
  ASSERT_LT(least, least_baseline);
  o.budget = least;
  try {
    plan_milp(g_, costs_, o);
    FAIL() << "no exception";
  } catch (const PlanInfeasible& e) {
    EXPECT_NE(std::string(e.what()).find("time limit"), std::string::npos) << e.what();
  }
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The chain restriction (MilpOptions::max_chain_blocks, default 2) binds nothing on graphs
// of one and two blocks: the model is the unrestricted one, row for row. (So the brute-force
// tests above, on one block, compare against brute force over the whole plan space.) A
// reach of one block does change the two-block model.
TEST_P(Milp, TheChainRestrictionBindsNothingOnOneAndTwoBlocks) {
  for (int layers = 1; layers <= 2; ++layers) {
    SCOPED_TRACE("L=" + std::to_string(layers));
    Allocator alloc;
    model::Gpt2 gpt(config(layers, GetParam()), alloc);
    const model::StepGraph g = gpt.build_graph(2, 8);
    Rng rng(3);
    const StepCosts costs = synthetic_costs(g, rng, {""}, compress::codec_names());
    MilpOptions o;
    o.fixed = runtime::training_fixed_bytes(gpt.config(), 2, 8);
    o.budget = runtime::predict_step_memory(g, none_plan(g), 1, o.fixed).total_peak * 3 / 4;
    test::TempDir dir("milp_chain");
    auto model_text = [&](int reach) {
      o.max_chain_blocks = reach;
      const std::filesystem::path file = dir / ("reach" + std::to_string(reach) + ".lp");
      export_milp(g, costs, o, file.string(), MilpFormat::lp);
      return read(file);
    };
    const std::string unrestricted = model_text(0);
    EXPECT_EQ(model_text(2), unrestricted);
    if (layers == 2) {
      EXPECT_NE(model_text(1), unrestricted);
    }
  }
}

// At three blocks every baseline lies inside the default plan space (its memory rows are
// exactly the memory model's peak); every-3 needs a reach of three blocks: outside the
// space at 2 (the model cannot run it), exact at 3.
TEST(MilpChains, EveryBaselineIsInsideTheDefaultChainSpace) {
  Allocator alloc;
  model::Gpt2 gpt(config(3, ops::AttentionKind::flash), alloc);
  const model::StepGraph g = gpt.build_graph(2, 8);
  Rng rng(4);
  const StepCosts costs = synthetic_costs(g, rng, {""}, compress::codec_names());
  MilpOptions o;
  o.fixed = runtime::training_fixed_bytes(gpt.config(), 2, 8);
  for (std::string b : baseline_names()) {
    if (b.find('<') != std::string::npos) b = "every-2";
    const Plan p = baseline_plan(g, b);
    SCOPED_TRACE(p.planner);
    EXPECT_EQ(milp_predicted_peak(g, costs, o, p),
              runtime::predict_step_memory(g, p, 1, o.fixed).total_peak);
  }
  const Plan every3 = baseline_plan(g, "every-3");
  EXPECT_THROW(milp_predicted_peak(g, costs, o, every3), PlanInfeasible);
  o.max_chain_blocks = 3;
  EXPECT_EQ(milp_predicted_peak(g, costs, o, every3),
            runtime::predict_step_memory(g, every3, 1, o.fixed).total_peak);
}

INSTANTIATE_TEST_SUITE_P(Attention, MilpBruteForce, test::kAttentionForms, test::attention_name);

INSTANTIATE_TEST_SUITE_P(Attention, Milp, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
