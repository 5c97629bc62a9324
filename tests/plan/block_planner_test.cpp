// The block planner against the whole step's MILP solved to optimality over the same plan
// space (re-runs within a block: max_chain_blocks 1) on small GPT-2s: its lower bound is
// at most that optimum, its plan fits the budget by the memory model and is no faster
// than the optimum, and the gap it reports is what separates its plan from its bound.
// plan_milp uses it from kBlockPlannerFromLayers blocks; it refuses graphs it cannot plan.
#include "adacc/plan/block_planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/core/rng.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/workspace.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/cost_model.h"
#include "adacc/plan/policy.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_profile.h"

namespace adacc::plan {
namespace {

model::StepGraph graph_of(int layers, ops::AttentionKind attention = ops::AttentionKind::flash) {
  model::ModelConfig c = model::parse_config("L=" + std::to_string(layers) + ",C=64,H=2,V=64,T=32");
  c.attention = attention;
  return model::build_gpt2_graph(c, 2, 32);
}

// Costs the same in every block, from the ops' flops and bytes (1 GFLOP/s, 100 MB/s for
// elementwise ops and for each of `codecs` that applies to a codec candidate), with
// random gradient errors (the same per block-0 name; some above the default tolerance).
StepCosts block_costs(const model::StepGraph& g, std::uint64_t seed,
                      const std::vector<std::string>& codecs = compress::codec_names()) {
  Rng rng(seed);
  std::map<std::string, double> err;
  StepCosts c;
  for (const auto& op : g.ops()) {
    double out_bytes = 0;
    for (model::TensorId t : op->outputs()) out_bytes += static_cast<double>(g.tensor(t).nbytes());
    c.forward_seconds.push_back(std::max(op->forward_flops() / 1e9, out_bytes / 1e8));
    c.backward_seconds.push_back(std::max(op->backward_flops() / 1e9, 2 * out_bytes / 1e8));
  }
  const std::vector<bool> saved = runtime::saved_tensors(g);
  c.codecs.resize(g.tensors().size());
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    const auto id = static_cast<model::TensorId>(t);
    if (!runtime::is_codec_candidate(g, saved, id)) continue;
    const model::TensorInfo& info = g.tensor(id);
    for (const std::string& name : codecs) {
      if (!compress::codec_by_name(name).applies_to(info.role)) continue;
      const std::string key = runtime::block_zero_name(info.name, info.layer) + "/" + name;
      if (err.count(key) == 0) err[key] = 1e-3 * static_cast<double>(1 + rng.next_u64() % 100);
      CodecCost cc;
      cc.codec = name;
      cc.encoded_bytes = compress::codec_by_name(name).encoded_bytes(info.shape);
      cc.encode_seconds = static_cast<double>(info.nbytes()) / 1e8;
      cc.decode_seconds = cc.encode_seconds;
      cc.grad_error = err[key];  // 0.001 .. 0.1
      c.codecs[t].push_back(cc);
    }
  }
  return c;
}

MilpOptions options_for(const model::StepGraph& g, bool codecs) {
  MilpOptions o;
  o.fixed = runtime::training_fixed_bytes(*g.config, g.batch, g.seq);
  o.codecs = codecs;
  o.max_chain_blocks = 1;
  return o;
}

std::size_t share_of_none(const model::StepGraph& g, const MilpOptions& o, double share) {
  Budget b;
  b.percent = true;
  b.share = share;
  return resolve_budget(b, runtime::predict_step_memory(g, none_plan(g), o.threads, o.fixed));
}

// The lower convex hull of (held, seconds) points, by decreasing held: built by
// increasing held (Andrew's monotone chain), a point kept only if it is faster than every
// point holding less and below the chord of its neighbours.
std::vector<std::pair<double, double>> lower_hull(std::vector<std::pair<double, double>> pts) {
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;
  });
  std::vector<std::pair<double, double>> hull;
  for (const auto& p : pts) {
    if (!hull.empty() && p.second >= hull.back().second) continue;  // no faster
    while (hull.size() >= 2) {
      const auto& a = hull[hull.size() - 2];
      const auto& b = hull.back();
      const double u = (b.first - a.first) * (p.second - a.second);
      const double v = (b.second - a.second) * (p.first - a.first);
      if (u - v > 1e-9 * (std::abs(u) + std::abs(v))) break;  // b lies below the chord a-p
      // (on it, up to rounding: not a vertex)
      hull.pop_back();
    }
    hull.push_back(p);
  }
  std::reverse(hull.begin(), hull.end());
  return hull;
}

// block_tradeoff against brute force: every plan of block 1 of a 3-block graph (its input
// kept or compressed, the other blocks kept), priced by the cost model and its held bytes
// counted from the plan; their lower convex hull is the planner's.
void expect_tradeoff_is_brute_forces(const model::StepGraph& deep, const StepCosts& costs,
                                     const MilpOptions& o) {
  const std::vector<BlockTradeoffPoint> got = block_tradeoff(deep, costs, o);
  model::ModelConfig c3 = *deep.config;
  c3.n_layer = 3;
  const model::StepGraph g = model::build_gpt2_graph(c3, deep.batch, deep.seq);
  const StepCosts c = block_costs(g, 0, {});  // op times (codecs from `costs`, below)
  StepCosts costs3 = c;
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    const model::TensorInfo& info = g.tensors()[t];
    if (info.kind != model::TensorKind::activation || info.layer < 0) continue;
    const std::string deep_name =
        "h" + std::to_string(info.layer + 1) + info.name.substr(info.name.find('.'));
    costs3.codecs[t] = costs.codecs[static_cast<std::size_t>(deep.find(deep_name))];
  }
  const std::vector<bool> saved = runtime::saved_tensors(g);
  std::vector<model::TensorId> unit;
  std::vector<std::vector<runtime::Decision>> choice;
  for (std::size_t t = 0; t < g.tensors().size(); ++t) {
    const model::TensorInfo& info = g.tensors()[t];
    // Block 1's unit: its input and its saved tensors but its output (block 2's input).
    const bool input = info.name == "h0.res2.out";
    if (!saved[t] || info.kind != model::TensorKind::activation || (info.layer != 1 && !input) ||
        info.name == "h1.res2.out") {
      continue;
    }
    const auto id = static_cast<model::TensorId>(t);
    unit.push_back(id);
    choice.push_back({{runtime::Policy::keep, {}}});
    if (!input && runtime::is_recomputable(g, id)) {
      choice.back().push_back({runtime::Policy::recompute, {}});
    }
    if (!o.codecs) continue;
    for (const CodecCost& cc : costs3.codecs[t]) {
      if (cc.grad_error <= o.tolerance)
        choice.back().push_back({runtime::Policy::compress, cc.codec});
    }
  }
  std::vector<std::pair<double, double>> points;
  std::vector<std::size_t> pick(unit.size(), 0);
  const double keep_all = costs3.keep_all_seconds();
  for (;;) {
    runtime::Plan plan = runtime::keep_all_plan(g);
    double held = 0;
    for (std::size_t k = 0; k < unit.size(); ++k) {
      const runtime::Decision& d = choice[k][pick[k]];
      plan.decisions[static_cast<std::size_t>(unit[k])] = d;
      const model::TensorInfo& info = g.tensor(unit[k]);
      if (d.policy == runtime::Policy::keep)
        held += static_cast<double>(ops::accounted_bytes(info.nbytes()));
      if (d.policy == runtime::Policy::compress) {
        held += static_cast<double>(
            ops::accounted_bytes(compress::codec_by_name(d.codec).encoded_bytes(info.shape)));
      }
    }
    bool valid = true;
    try {
      runtime::validate(g, plan);
    } catch (const Error&) {
      valid = false;
    }
    if (valid) points.emplace_back(held, predict_step_seconds(g, plan, costs3) - keep_all);
    std::size_t k = 0;
    while (k < unit.size() && ++pick[k] == choice[k].size()) pick[k++] = 0;
    if (k == unit.size()) break;
  }
  const std::vector<std::pair<double, double>> want = lower_hull(points);
  ASSERT_EQ(got.size(), want.size()) << points.size() << " plans";
  for (std::size_t v = 0; v < want.size(); ++v) {
    EXPECT_EQ(got[v].held_bytes, want[v].first) << "vertex " << v;
    EXPECT_NEAR(got[v].seconds, want[v].second, 1e-12 + 1e-9 * want[v].second) << "vertex " << v;
  }
}

TEST(BlockTradeoff, IsTheLowerHullOfEveryPlanOfABlock_KeepOrRecompute) {
  const model::StepGraph g = graph_of(kBlockPlannerMinLayers);
  MilpOptions o = options_for(g, false);
  expect_tradeoff_is_brute_forces(g, block_costs(g, 3, {}), o);
}

TEST(BlockTradeoff, IsTheLowerHullOfEveryPlanOfABlock_WithCodecs) {
  const model::StepGraph g = graph_of(kBlockPlannerMinLayers, ops::AttentionKind::naive);
  const MilpOptions o = options_for(g, true);
  // Two codecs, on the tensors whose roles they apply to (gradient errors random).
  expect_tradeoff_is_brute_forces(g, block_costs(g, 3, {"int4-g64", "gelu-deriv-u8"}), o);
}

// The bound's memory points against the memory model, for random plans of the form it
// models: random end blocks (re-runs within their block), middle blocks in runs of hull
// plans. Its peak is at most the memory model's, and equal when that is in an end block.
TEST(BlockBound, MemoryPointsAreTheMemoryModelsInTheEndBlocks) {
  const model::StepGraph g = graph_of(7, ops::AttentionKind::naive);  // middle: blocks 2-4
  const StepCosts costs = block_costs(g, 11, {"bf16", "int4-g64", "gelu-deriv-u8"});
  MilpOptions o = options_for(g, true);
  o.budget = share_of_none(g, o, 0.5);
  const std::vector<BlockTradeoffPoint> hull = block_tradeoff(g, costs, o);
  ASSERT_GE(hull.size(), 2u);
  const std::vector<bool> saved = runtime::saved_tensors(g);
  Rng rng(7);
  int compared = 0, equal = 0;
  for (int trial = 0; trial < 36; ++trial) {
    // Mode 0: random end blocks and hull plans. Mode 1: every end block recomputes what it
    // can (else compresses), the middle takes the least-holding hull plan. Mode 2: block 1
    // recomputes what it can (a large transient in its backward), the middle keeps
    // everything, blocks 5, 6 and the head hold as little as they can: block 1's points,
    // which the middle's held bytes are not part of, then come near the peak.
    const int mode = trial % 3;
    runtime::Plan plan = runtime::keep_all_plan(g);
    for (std::size_t t = 0; t < g.tensors().size(); ++t) {
      const model::TensorInfo& info = g.tensors()[t];
      const bool end = info.layer < 0 || info.layer <= 1 || info.layer >= 5;
      if (!end || !saved[t] || info.kind != model::TensorKind::activation) continue;
      std::vector<runtime::Decision> options{{runtime::Policy::keep, {}}};
      const auto id = static_cast<model::TensorId>(t);
      if (runtime::is_recomputable(g, id) && !info.name.ends_with("res2.out")) {
        options.push_back({runtime::Policy::recompute, {}});  // not a block's output
      }
      for (const CodecCost& cc : costs.codecs[t]) {
        if (cc.grad_error <= o.tolerance) options.push_back({runtime::Policy::compress, cc.codec});
      }
      const bool recompute = options.size() > 1 && options[1].policy == runtime::Policy::recompute;
      const runtime::Decision& lean = recompute ? options[1] : options.back();
      const bool late =
          info.layer < 0 ? t > static_cast<std::size_t>(g.find("h6.res2.out")) : info.layer >= 5;
      const runtime::Decision& random = options[rng.next_u64() % options.size()];
      if (mode == 0) plan.decisions[t] = random;
      if (mode == 1) plan.decisions[t] = lean;
      if (mode == 2) plan.decisions[t] = late || info.layer == 1 ? lean : random;
    }
    std::size_t a = rng.next_u64() % hull.size(), b = rng.next_u64() % hull.size();
    if (mode == 1) a = b = hull.size() - 1;
    if (mode == 2) a = b = 0;
    for (int block = 2; block <= 4; ++block) {
      const BlockTradeoffPoint& p = hull[block <= 3 ? a : b];
      for (const auto& [name, d] : p.decisions) {  // "h0.res2.out" / "h1.x" -> block's names
        const int layer = name[1] - '0' + block - 1;
        std::string renamed = "h";  // built in place (GCC 12's -Wrestrict misfires on "h" + ...)
        renamed += std::to_string(layer);
        renamed += name.substr(2);
        plan.decisions[static_cast<std::size_t>(g.find(renamed))] = d;
      }
    }
    try {
      runtime::validate(g, plan);
    } catch (const Error&) {
      continue;  // e.g. a stored GELU derivative where a re-run needs the value
    }
    const runtime::MemoryPrediction m = runtime::predict_step_memory(g, plan, o.threads, o.fixed);
    const std::size_t got = block_model_peak(g, costs, o, plan);
    ++compared;
    EXPECT_LE(got, m.total_peak) << m.where;
    const bool middle = m.where.find("of h2.") != std::string::npos ||
                        m.where.find("of h3.") != std::string::npos ||
                        m.where.find("of h4.") != std::string::npos;
    if (!middle) {
      EXPECT_EQ(got, m.total_peak) << m.where;
      ++equal;
    }
  }
  EXPECT_GE(compared, 10);
  EXPECT_GE(equal, 5);
}

struct Case {
  int layers;
  ops::AttentionKind attention;
  bool codecs;
};

class BlockPlanner : public ::testing::TestWithParam<Case> {};

// Against the whole step's MILP over the same plan space, given 1 s: its plan is at least
// the lower bound, and its proven bound at most the block planner's plan.
TEST_P(BlockPlanner, ItsBoundAndPlanBracketTheWholeStepsAndItsPlanFits) {
  const Case c = GetParam();
  const model::StepGraph g = graph_of(c.layers, c.attention);
  const StepCosts costs = block_costs(g, 17 + static_cast<std::uint64_t>(c.layers),
                                      {"bf16", "int4-g64", "gelu-deriv-u8"});
  int solved = 0;
  for (const double share : {0.7, 0.35}) {
    MilpOptions o = options_for(g, c.codecs);
    o.budget = share_of_none(g, o, share);
    SCOPED_TRACE("budget " + std::to_string(share));
    MilpOptions whole = o;
    whole.by_blocks = false;
    whole.time_limit_seconds = 1;
    MilpResult w;
    try {
      w = plan_milp(g, costs, whole);
    } catch (const PlanInfeasible&) {
      continue;  // proven infeasible or nothing found in 1 s
    }
    const MilpResult r = plan_by_blocks(g, costs, o);
    ++solved;
    EXPECT_EQ(r.method, "blocks");
    EXPECT_LE(r.lower_bound_seconds, w.predicted_seconds * (1 + 1e-12));
    EXPECT_GE(r.predicted_seconds, w.lower_bound_seconds * (1 - 1e-12));
    EXPECT_NEAR(r.predicted_seconds, predict_step_seconds(g, r.plan, costs), 1e-12);
    runtime::validate(g, r.plan);
    const runtime::MemoryPrediction m = runtime::predict_step_memory(g, r.plan, o.threads, o.fixed);
    EXPECT_EQ(m.total_peak, r.memory.total_peak);
    EXPECT_LE(m.total_peak, o.budget);
    EXPECT_NEAR(r.gap, (r.predicted_seconds - r.lower_bound_seconds) / r.predicted_seconds, 1e-12);
    // Within 1% of its bound even with so few middle blocks to round.
    EXPECT_LE(r.gap, 0.01);
    for (std::size_t k = 0; k < r.plan.decisions.size(); ++k) {
      const runtime::Decision& d = r.plan.decisions[k];
      if (d.policy != runtime::Policy::compress) continue;
      EXPECT_TRUE(c.codecs) << g.tensors()[k].name;
      const CodecCost* cc = find_codec_cost(costs, static_cast<model::TensorId>(k), d.codec);
      ASSERT_NE(cc, nullptr);
      EXPECT_LE(cc->grad_error, o.tolerance) << g.tensors()[k].name << " " << d.codec;
    }
  }
  EXPECT_GE(solved, 1);
}

INSTANTIATE_TEST_SUITE_P(SmallGpt2s, BlockPlanner,
                         ::testing::Values(Case{7, ops::AttentionKind::flash, true},
                                           Case{6, ops::AttentionKind::flash, false},
                                           Case{6, ops::AttentionKind::naive, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return "L" + std::to_string(info.param.layers) +
                                  (info.param.attention == ops::AttentionKind::naive ? "_naive"
                                                                                     : "_flash") +
                                  (info.param.codecs ? "_adacc" : "_checkmate");
                         });

TEST(BlockPlannerUse, PlanMilpPlansDeepModelsByBlocks) {
  const model::StepGraph g = graph_of(kBlockPlannerFromLayers);
  const StepCosts costs = block_costs(g, 5);
  MilpOptions o = options_for(g, true);
  o.max_chain_blocks = 2;
  o.budget = share_of_none(g, o, 0.4);
  o.time_limit_seconds = 1;  // for the whole step's solves below
  const MilpResult r = plan_milp(g, costs, o);
  EXPECT_EQ(r.method, "blocks");
  EXPECT_LE(r.memory.total_peak, o.budget);
  EXPECT_LE(r.gap, 1e-3);
  o.by_blocks = false;
  EXPECT_EQ(plan_milp(g, costs, o).method, "whole step");
  // Shallower: the whole step, or the block planner's plan when the whole step's solver
  // stopped short of its gap and blocks found a faster one (which of the two depends on
  // CBC's progress in its CPU-time limit: only what holds either way is checked here).
  const model::StepGraph shallow = graph_of(kBlockPlannerFromLayers - 1);
  MilpOptions s = options_for(shallow, true);
  s.max_chain_blocks = 2;
  s.budget = share_of_none(shallow, s, 0.4);
  s.time_limit_seconds = 1;
  const MilpResult chosen = plan_milp(shallow, block_costs(shallow, 5), s);
  EXPECT_LE(chosen.memory.total_peak, s.budget);
  EXPECT_TRUE(chosen.method == "whole step" || chosen.method == "blocks") << chosen.method;
}

TEST(BlockPlannerUse, BlocksThatCostDifferentlyAreLeftToTheWholeStep) {
  const model::StepGraph g = graph_of(kBlockPlannerFromLayers);
  StepCosts costs = block_costs(g, 5);
  MilpOptions o = options_for(g, true);
  o.budget = share_of_none(g, o, 0.5);
  StepCosts slower_op = costs;
  for (std::size_t k = 0; k < g.ops().size(); ++k) {
    if (g.op(static_cast<int>(k)).name() == "h7.fc") slower_op.forward_seconds[k] *= 2;
  }
  EXPECT_THROW(plan_by_blocks(g, slower_op, o), InvalidArgument);
  StepCosts slower_codec = costs;
  const auto fc = static_cast<std::size_t>(g.find("h9.fc.out"));
  ASSERT_FALSE(slower_codec.codecs[fc].empty());
  slower_codec.codecs[fc].front().decode_seconds *= 2;
  EXPECT_THROW(plan_by_blocks(g, slower_codec, o), InvalidArgument);
  o.max_chain_blocks = 2;
  o.time_limit_seconds = 1;
  EXPECT_EQ(plan_milp(g, slower_op, o).method, "whole step");
}

TEST(BlockPlannerUse, RefusesShallowModelsAndGraphsWithoutTheirConfig) {
  const model::StepGraph shallow = graph_of(kBlockPlannerMinLayers - 1);
  MilpOptions o = options_for(shallow, true);
  o.budget = share_of_none(shallow, o, 0.5);
  EXPECT_THROW(plan_by_blocks(shallow, block_costs(shallow, 1), o), InvalidArgument);
  model::StepGraph bare = graph_of(kBlockPlannerMinLayers);
  const StepCosts costs = block_costs(bare, 1);
  MilpOptions b = options_for(bare, true);
  b.budget = share_of_none(bare, b, 0.5);
  EXPECT_NO_THROW(plan_by_blocks(bare, costs, b));
  bare.config.reset();
  EXPECT_THROW(plan_by_blocks(bare, costs, b), InvalidArgument);
}

}  // namespace
}  // namespace adacc::plan
