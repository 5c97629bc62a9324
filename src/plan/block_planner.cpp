// The repeated-block decomposition (see block_planner.h).
#include "adacc/plan/block_planner.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/cost_model.h"
#include "milp_formulation.h"
#include "milp_solver.h"

namespace adacc::plan {

namespace {

using detail::Formulation;
using detail::LinExpr;
using model::StepGraph;
using model::TensorId;

// Per op: its block, the ops outside the blocks folded into the adjacent one (as the
// formulation's chain restriction counts them).
std::vector<int> op_blocks(const StepGraph& g) {
  std::vector<int> block;
  int seen = -1, lowest = -1;
  for (const auto& op : g.ops()) {
    if (op->layer() >= 0) {
      seen = op->layer();
      lowest = lowest < 0 ? seen : std::min(lowest, seen);
    }
    block.push_back(seen);
  }
  for (int& b : block) b = std::max(b, lowest);
  return block;
}

// Per tensor: the block of the ops that save it (its unit), -1 if none does.
std::vector<int> tensor_units(const StepGraph& g) {
  const std::vector<int> block = op_blocks(g);
  std::vector<int> unit(g.tensors().size(), -1);
  for (std::size_t o = 0; o < g.ops().size(); ++o) {
    for (TensorId s : g.ops()[o]->saved()) unit[static_cast<std::size_t>(s)] = block[o];
  }
  return unit;
}

// `name` of block `layer` as the same op or tensor of block `layer + shift` ("h3.fc.out"
// -> "h7.fc.out"); names outside the blocks (layer -1) are the same in every depth.
std::string moved(const std::string& name, int layer, int shift) {
  if (layer < 0 || shift == 0) return name;
  const std::string from = "h" + std::to_string(layer) + ".";
  if (name.rfind(from, 0) != 0) {
    throw InvalidArgument("[plan] '" + name + "' is not named as a tensor of block " +
                          std::to_string(layer) + "; the block planner needs a GPT-2 graph");
  }
  return "h" + std::to_string(layer + shift) + "." + name.substr(from.size());
}

model::ModelConfig with_layers(model::ModelConfig config, int layers) {
  config.n_layer = layers;
  return config;
}

// The costs of `small`, a graph of the same model with fewer blocks, from the full
// graph's: small block l stands for full block layers[l].
StepCosts costs_for(const StepGraph& small, const std::vector<int>& layers, const StepGraph& full,
                    const StepCosts& costs) {
  std::unordered_map<std::string, std::size_t> op_index;
  for (std::size_t o = 0; o < full.ops().size(); ++o) op_index[full.ops()[o]->name()] = o;
  StepCosts c;
  for (const auto& op : small.ops()) {
    const int l = op->layer();
    const std::string name =
        moved(op->name(), l, l < 0 ? 0 : layers[static_cast<std::size_t>(l)] - l);
    const auto it = op_index.find(name);
    if (it == op_index.end()) {
      throw InvalidArgument("[plan] the step graph has no op '" + name +
                            "'; the block planner needs the config's own GPT-2 graph");
    }
    c.forward_seconds.push_back(costs.forward_seconds.at(it->second));
    c.backward_seconds.push_back(costs.backward_seconds.at(it->second));
  }
  c.codecs.resize(small.tensors().size());
  for (std::size_t t = 0; t < small.tensors().size(); ++t) {
    const model::TensorInfo& info = small.tensors()[t];
    if (info.kind != model::TensorKind::activation) continue;
    const int l = info.layer;
    const auto id = static_cast<std::size_t>(
        full.find(moved(info.name, l, l < 0 ? 0 : layers[static_cast<std::size_t>(l)] - l)));
    if (id < costs.codecs.size()) c.codecs[t] = costs.codecs[id];
  }
  return c;
}

// One block's plan: its unit's decisions (in the 3-block graph) and what they cost.
struct UnitPlan {
  double held = 0;     // bytes held from the unit's forward to its backward
  double seconds = 0;  // predicted time over keep-everything
  double encoded = 0;  // compressed bytes (the tie-break)
  std::vector<std::pair<TensorId, runtime::Decision>> decisions;
};

// The middle block's trade-off between time and held bytes, on a 3-block graph whose
// outer blocks keep everything (their decisions fixed) and without memory rows.
class UnitTradeoff {
 public:
  UnitTradeoff(const StepGraph& graph, const StepCosts& costs, const MilpOptions& options)
      : options_(options), f_(detail::formulate(graph, costs, options)) {
    const std::vector<int> unit = tensor_units(graph);
    for (std::size_t k = 0; k < f_.choices.size(); ++k) {
      if (f_.choices[k].empty()) continue;
      if (unit[k] == 1) {
        held_.add(f_.held[k]);
        // Its held bytes are its keep column's (the first choice) and its encoded forms'.
        for (const detail::Term& t : f_.held[k].terms) {
          if (t.col != f_.choices[k].front().col) encoded_.add_col(t.col, t.coef);
        }
        unit_tensors_.push_back(static_cast<TensorId>(k));
        continue;
      }
      for (const detail::Choice& c : f_.choices[k]) {
        auto& col = f_.model.columns()[static_cast<std::size_t>(c.col)];
        col.lower = col.upper = c.decision.policy == runtime::Policy::keep ? 1 : 0;
      }
    }
  }

  // The plan least in seconds_weight * time + held_weight * held MiB, with optional caps
  // (time <= max_seconds, held <= max_held bytes). Throws PlanInfeasible if the solver
  // stops before proving it least (the bound would not be proven).
  UnitPlan least(double seconds_weight, double held_weight, double max_seconds = detail::kInf,
                 double max_held = detail::kInf) {
    detail::LinearModel m = f_.model;
    for (auto& col : m.columns()) col.objective = 0;
    for (const detail::Term& t : f_.seconds.terms) {
      m.columns()[static_cast<std::size_t>(t.col)].objective += seconds_weight * t.coef;
    }
    for (const detail::Term& t : held_.terms) {
      m.columns()[static_cast<std::size_t>(t.col)].objective +=
          held_weight * t.coef / detail::kUnit;
    }
    if (max_seconds < detail::kInf) {  // in microseconds: well above the row tolerance
      LinExpr e;
      e.add(f_.seconds, 1e6);
      m.add_row("cap_seconds", e, -detail::kInf, max_seconds * 1e6 + 1e-3);
    }
    if (max_held < detail::kInf) {
      LinExpr e;
      e.add(held_, 1 / detail::kUnit);
      m.add_row("cap_held", e, -detail::kInf, max_held / detail::kUnit + 1e-6);
    }
    MilpOptions o = options_;
    o.gap = 0;
    const detail::Solved s = detail::solve(m, o, 0, {}, detail::ObjectiveScale::unit);
    seconds_ += s.seconds;
    if (!s.feasible || !s.optimal) {
      throw PlanInfeasible("[plan] the block planner's one-block model was not solved within " +
                           std::to_string(options_.time_limit_seconds) + " s");
    }
    UnitPlan p;
    p.held = detail::value_of(held_, s.x);
    p.seconds = detail::value_of(f_.seconds, s.x);
    p.encoded = detail::value_of(encoded_, s.x);
    for (TensorId t : unit_tensors_) {
      for (const detail::Choice& c : f_.choices[static_cast<std::size_t>(t)]) {
        if (s.x[static_cast<std::size_t>(c.col)] > 0.5) p.decisions.emplace_back(t, c.decision);
      }
    }
    return p;
  }

  // Every vertex of the lower convex hull of (held, time) over the unit's plans, by
  // decreasing held bytes (Eisner and Severance's parametric search).
  std::vector<UnitPlan> hull() {
    UnitPlan fastest = least(1, 0);
    fastest = least(0, 1, fastest.seconds);
    UnitPlan smallest = least(0, 1);
    smallest = least(1, 0, detail::kInf, smallest.held);
    std::vector<UnitPlan> out{fastest};
    if (smallest.held < fastest.held) between(fastest, smallest, out);
    if (smallest.held < fastest.held) out.push_back(smallest);
    return out;
  }

  double solver_seconds() const { return seconds_; }

 private:
  // Appends the hull vertices strictly between a (more held, faster) and b.
  void between(const UnitPlan& a, const UnitPlan& b, std::vector<UnitPlan>& out) {
    if (b.seconds <= a.seconds) return;
    const double mu = (b.seconds - a.seconds) / ((a.held - b.held) / detail::kUnit);
    UnitPlan c = least(1, mu);
    const double on_line = a.seconds + mu * a.held / detail::kUnit;
    const double value = c.seconds + mu * c.held / detail::kUnit;
    if (value >= on_line - kTolerance * std::max(1e-3, on_line)) return;
    between(a, c, out);
    out.push_back(c);
    between(c, b, out);
  }

  static constexpr double kTolerance = 1e-9;
  MilpOptions options_;
  Formulation f_;
  LinExpr held_, encoded_;
  std::vector<TensorId> unit_tensors_;
  double seconds_ = 0;
};

// The end blocks' model with the middle as weights over the hull's plans (see the header):
// continuous weights give the lower bound, integer ones a plan.
struct EndsModel {
  Formulation f;
  std::vector<int> weights;   // column per hull plan: how many middle blocks take it
  double most_tie_break = 0;  // the largest value the objective's bytes term can take
};

EndsModel ends_model(const StepGraph& ends, const StepCosts& costs, const MilpOptions& options,
                     const std::vector<UnitPlan>& hull, int middle, bool integer) {
  EndsModel e{detail::formulate(ends, costs, options), {}, 0};
  LinExpr sum, held;
  double most_encoded = 0, ends_encoded = 0;
  for (const detail::Term& t : e.f.encoded_bytes.terms) ends_encoded += t.coef;
  for (std::size_t j = 0; j < hull.size(); ++j) {
    const int w =
        e.f.model.add_column("middle_blocks_with_plan_" + std::to_string(j), 0, middle, integer);
    e.weights.push_back(w);
    sum.add_col(w, 1);
    held.add_col(w, hull[j].held);
    e.f.seconds.add_col(w, hull[j].seconds);
    if (hull[j].encoded > 0) e.f.encoded_bytes.add_col(w, hull[j].encoded);
    most_encoded = std::max(most_encoded, hull[j].encoded);
  }
  e.f.model.add_row("middle_blocks", sum, middle, middle);
  int split = 0;  // the first op after the middle: block 2's first
  while (ends.op(split).layer() < 2) ++split;
  for (detail::MemoryPoint& p : e.f.memory) {
    if (p.op >= split) p.bytes.add(held);
  }
  const double cap =
      static_cast<double>(options.budget) - static_cast<double>(detail::fixed_total(options));
  const double per_byte = detail::finish_for_budget(e.f, cap);
  e.most_tie_break = per_byte * (ends_encoded + middle * most_encoded);
  return e;
}

// How many middle blocks take each hull plan: the weights rounded down, the blocks left
// over given to the plan that holds least among those rounded (so the middle holds no
// more than with the weights, and every memory row still holds) or, with `to_fastest`,
// to the fastest of them (which the memory model may refuse).
std::vector<int> rounded(const std::vector<double>& weights, const std::vector<UnitPlan>& hull,
                         int middle, bool to_fastest = false) {
  std::vector<int> count(weights.size(), 0);
  int left = middle, pick = -1;
  for (std::size_t j = 0; j < weights.size(); ++j) {
    count[j] = static_cast<int>(std::floor(weights[j] + 1e-9));
    left -= count[j];
    if (weights[j] - count[j] <= 1e-9) continue;  // not rounded
    const auto p = static_cast<std::size_t>(pick);
    if (pick < 0 ||
        (to_fastest ? hull[j].seconds < hull[p].seconds : hull[j].held < hull[p].held)) {
      pick = static_cast<int>(j);
    }
  }
  if (left > 0) count[static_cast<std::size_t>(pick < 0 ? 0 : pick)] += left;
  return count;
}

// What a full-graph plan is made from, besides the end blocks' plan and the counts.
struct Expansion {
  const StepGraph& full;
  const StepCosts& costs;
  const StepGraph& ends;
  const std::vector<int>& ends_layers;  // per end block: its block in the full graph
  const std::vector<UnitPlan>& hull;
  const StepGraph& unit_graph;
  int threads;
  std::array<std::size_t, kMemCategories> fixed;
};

// The full graph's plan: the end blocks' decisions, and each middle block's hull plan.
runtime::Plan expand(const Expansion& x, const runtime::Plan& ends_plan,
                     const std::vector<int>& middle_plans) {
  runtime::Plan plan = runtime::keep_all_plan(x.full);
  plan.planner = ends_plan.planner;
  const std::vector<int> unit = tensor_units(x.ends);
  for (std::size_t k = 0; k < x.ends.tensors().size(); ++k) {
    if (unit[k] < 0 || x.ends.tensors()[k].kind != model::TensorKind::activation) continue;
    const model::TensorInfo& t = x.ends.tensors()[k];
    const int shift = x.ends_layers[static_cast<std::size_t>(unit[k])] - unit[k];
    const auto id = static_cast<std::size_t>(x.full.find(moved(t.name, t.layer, shift)));
    plan.decisions.at(id) = ends_plan.decisions.at(k);
  }
  for (std::size_t m = 0; m < middle_plans.size(); ++m) {
    const int block = 2 + static_cast<int>(m);
    for (const auto& [t, d] : x.hull[static_cast<std::size_t>(middle_plans[m])].decisions) {
      const model::TensorInfo& info = x.unit_graph.tensor(t);
      plan.decisions.at(
          static_cast<std::size_t>(x.full.find(moved(info.name, info.layer, block - 1)))) = d;
    }
  }
  return plan;
}

struct Candidate {
  runtime::Plan plan;
  runtime::MemoryPrediction memory;
  double seconds = 0;      // predict_step_seconds
  std::vector<int> count;  // per hull plan: middle blocks that take it
};

bool fits(const Candidate& c, const MilpOptions& options) {
  return c.memory.total_peak <= options.budget;
}

// The full plan with `count` middle blocks per hull plan, in the order of the distinct
// plans' runs whose peak is least (for a given multiset of blocks, runs are as good as
// any interleaving: the exchange argument of block_planner.h's docs).
Candidate candidate(const Expansion& x, const runtime::Plan& ends_plan, std::vector<int> count) {
  std::vector<int> used;
  for (std::size_t j = 0; j < count.size(); ++j) {
    if (count[j] > 0) used.push_back(static_cast<int>(j));
  }
  std::vector<std::vector<int>> orders;
  if (used.size() <= 3) {
    do {
      orders.push_back(used);
    } while (std::next_permutation(used.begin(), used.end()));
  } else {  // by decreasing held bytes (the hull's order) and the reverse
    orders.push_back(used);
    orders.emplace_back(used.rbegin(), used.rend());
  }
  Candidate best;
  bool found = false;
  for (const std::vector<int>& order : orders) {
    std::vector<int> middle_plans;
    for (int j : order)
      middle_plans.insert(middle_plans.end(), count[static_cast<std::size_t>(j)], j);
    runtime::Plan plan = expand(x, ends_plan, middle_plans);
    runtime::MemoryPrediction mem = runtime::predict_step_memory(x.full, plan, x.threads, x.fixed);
    if (!found || mem.total_peak < best.memory.total_peak) {
      best.plan = std::move(plan);
      best.memory = std::move(mem);
      found = true;
    }
  }
  best.seconds = predict_step_seconds(x.full, best.plan, x.costs);
  best.count = std::move(count);
  return best;
}

std::vector<double> weights_of(const EndsModel& e, const detail::Solved& s) {
  std::vector<double> w;
  for (int col : e.weights) w.push_back(s.x[static_cast<std::size_t>(col)]);
  return w;
}

// The integer model's start: the relaxed solution's end-block decisions (the two models
// share their columns up to the weights) and `count`.
detail::Start start_of(const EndsModel& integral, const detail::Solved& relaxed,
                       const std::vector<int>& count) {
  detail::Start start;
  for (const std::vector<detail::Choice>& group : integral.f.choices) {
    for (const detail::Choice& c : group) {
      start.emplace_back(c.col, std::round(relaxed.x[static_cast<std::size_t>(c.col)]));
    }
  }
  for (std::size_t j = 0; j < count.size(); ++j) start.emplace_back(integral.weights[j], count[j]);
  return start;
}

// Throws InvalidArgument unless every block's ops and codecs cost what block 0's do.
void check_blocks_cost_the_same(const StepGraph& g, const StepCosts& costs) {
  if (costs.forward_seconds.size() != g.ops().size() ||
      costs.backward_seconds.size() != g.ops().size() || costs.codecs.size() > g.tensors().size()) {
    throw InvalidArgument("[plan] the step costs do not fit the graph; profile this model shape");
  }
  std::unordered_map<std::string, std::size_t> first_op;
  for (std::size_t o = 0; o < g.ops().size(); ++o) {
    const model::OpNode& op = g.op(static_cast<int>(o));
    if (op.layer() < 0) continue;
    const auto [it, added] = first_op.emplace(moved(op.name(), op.layer(), -op.layer()), o);
    if (!added && (costs.forward_seconds[o] != costs.forward_seconds[it->second] ||
                   costs.backward_seconds[o] != costs.backward_seconds[it->second])) {
      throw InvalidArgument("[plan] op '" + op.name() + "' costs other than block 0's; the " +
                            "block planner needs blocks that cost the same");
    }
  }
  std::unordered_map<std::string, std::size_t> first_tensor;
  auto same = [](const CodecCost& a, const CodecCost& b) {
    return a.codec == b.codec && a.encoded_bytes == b.encoded_bytes &&
           a.encode_seconds == b.encode_seconds && a.decode_seconds == b.decode_seconds &&
           a.grad_error == b.grad_error;
  };
  for (std::size_t t = 0; t < costs.codecs.size(); ++t) {
    const model::TensorInfo& info = g.tensors()[t];
    if (info.layer < 0) continue;
    const auto [it, added] = first_tensor.emplace(moved(info.name, info.layer, -info.layer), t);
    if (added) continue;
    const std::vector<CodecCost>& a = costs.codecs[t];
    const std::vector<CodecCost>& b = costs.codecs[it->second];
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end(), same)) {
      throw InvalidArgument("[plan] the codecs of '" + info.name + "' cost other than block " +
                            "0's; the block planner needs blocks that cost the same");
    }
  }
}

// The checks both entry points make; returns the model's depth.
int checked_depth(const StepGraph& graph, const StepCosts& costs) {
  if (!graph.config) {
    throw InvalidArgument("[plan] the block planner needs a GPT-2 step graph (build_gpt2_graph)");
  }
  const int L = graph.config->n_layer;
  if (L < kBlockPlannerMinLayers) {
    throw InvalidArgument("[plan] the block planner needs at least " +
                          std::to_string(kBlockPlannerMinLayers) + " blocks, the model has " +
                          std::to_string(L));
  }
  check_blocks_cost_the_same(graph, costs);
  return L;
}

StepGraph unit_graph_of(const StepGraph& graph) {
  return model::build_gpt2_graph(with_layers(*graph.config, 3), graph.batch, graph.seq);
}

MilpOptions within_blocks(MilpOptions options) {
  options.max_chain_blocks = 1;
  return options;
}

// What every entry point builds first: the checked depth, the options (re-runs within a
// block), the 3-block graph and its trade-off's hull, and the 4-block graph of the ends.
// Not copyable: the hull's decisions are unit_graph's tensor ids.
struct Decomposition {
  Decomposition(const StepGraph& graph, const StepCosts& costs, const MilpOptions& options)
      : layers(checked_depth(graph, costs)),
        o(within_blocks(options)),
        unit_graph(unit_graph_of(graph)),
        tradeoff(unit_graph, costs_for(unit_graph, {0, layers / 2, layers - 1}, graph, costs), o),
        hull(tradeoff.hull()),
        ends_layers{0, 1, layers - 2, layers - 1},
        ends(model::build_gpt2_graph(with_layers(*graph.config, 4), graph.batch, graph.seq)),
        ends_costs(costs_for(ends, ends_layers, graph, costs)),
        middle(layers - 4) {}
  Decomposition(const Decomposition&) = delete;
  Decomposition& operator=(const Decomposition&) = delete;

  int layers;
  MilpOptions o;
  StepGraph unit_graph;
  UnitTradeoff tradeoff;
  std::vector<UnitPlan> hull;
  std::vector<int> ends_layers;  // per end block: its block in the full graph
  StepGraph ends;
  StepCosts ends_costs;
  int middle;  // blocks between the ends
};

// Solver time limits of the block planner's plan searches (the bound's own is the options').
constexpr double kEndsSeconds = 0.5;   // the end blocks for given counts
constexpr double kIntegerSeconds = 2;  // the integer model

}  // namespace

std::vector<BlockTradeoffPoint> block_tradeoff(const StepGraph& graph, const StepCosts& costs,
                                               const MilpOptions& options) {
  const Decomposition d(graph, costs, options);
  std::vector<BlockTradeoffPoint> out;
  for (const UnitPlan& p : d.hull) {
    BlockTradeoffPoint b{p.held, p.seconds, {}};
    for (const auto& [t, dec] : p.decisions) {
      b.decisions.emplace_back(d.unit_graph.tensor(t).name, dec);
    }
    out.push_back(std::move(b));
  }
  return out;
}

MilpResult plan_by_blocks(const StepGraph& graph, const StepCosts& costs,
                          const MilpOptions& options, const std::string& planner) {
  // 1. The one-block trade-off; 2. the lower bound and 3. the plan, on the end blocks.
  const Decomposition d(graph, costs, options);
  const MilpOptions& o = d.o;
  const std::vector<UnitPlan>& hull = d.hull;
  const std::vector<int>& ends_layers = d.ends_layers;
  const StepGraph& ends = d.ends;
  const StepGraph& unit_graph = d.unit_graph;
  const StepCosts& ends_costs = d.ends_costs;
  const int middle = d.middle;
  double solver_seconds = d.tradeoff.solver_seconds();

  EndsModel relaxed = ends_model(ends, ends_costs, o, hull, middle, false);
  MilpOptions exact = o;
  exact.gap = 0;
  const detail::Solved lower =
      detail::solve(relaxed.f.model, exact, 0, {}, detail::ObjectiveScale::unit);
  solver_seconds += lower.seconds;
  if (!lower.feasible) {
    throw PlanInfeasible(
        "[plan] no plan that re-runs ops only within their block fits the "
        "budget of " +
        std::to_string(options.budget) + " bytes");
  }
  const double lower_bound = costs.keep_all_seconds() + std::min(lower.bound, lower.objective) -
                             relaxed.most_tie_break - lower.cutoff_increment;

  // A plan from the bound's solution: its end blocks, its weights rounded.
  const Expansion context{graph,      costs,           ends,         ends_layers, hull,
                          unit_graph, options.threads, options.fixed};
  // Plans: the bound's solution with its weights rounded (down, the rest to the plan
  // that holds least: every row still holds); if its gap is above a tenth of the target,
  // the end blocks re-solved for those counts and for the rest given to the fastest plan;
  // if still above the target, the integer model from the best of them for at most
  // kIntegerSeconds.
  const runtime::Plan relaxed_ends = detail::plan_of(ends, relaxed.f, lower, planner);
  const std::vector<double> weights = weights_of(relaxed, lower);
  Candidate best = candidate(context, relaxed_ends, rounded(weights, hull, middle));
  EndsModel integral = ends_model(ends, ends_costs, o, hull, middle, true);
  auto consider = [&](const detail::Solved& s) {
    if (!s.feasible) return;
    Candidate c = candidate(context, detail::plan_of(ends, integral.f, s, planner),
                            rounded(weights_of(integral, s), hull, middle));
    if (fits(c, options) && (!fits(best, options) || c.seconds < best.seconds)) {
      best = std::move(c);
    }
  };
  auto gap_above = [&](double gap) {
    return !fits(best, options) || best.seconds - lower_bound > gap * best.seconds;
  };
  for (const bool to_fastest : {false, true}) {
    if (!gap_above(options.gap / 10)) break;
    const std::vector<int> count = rounded(weights, hull, middle, to_fastest);
    detail::LinearModel fixed = integral.f.model;
    for (std::size_t j = 0; j < count.size(); ++j) {
      auto& col = fixed.columns()[static_cast<std::size_t>(integral.weights[j])];
      col.lower = col.upper = count[j];
    }
    MilpOptions limited = o;
    limited.gap = o.gap / 10;
    limited.time_limit_seconds = std::min(o.time_limit_seconds, kEndsSeconds);
    const detail::Solved s =
        detail::solve(fixed, limited, costs.keep_all_seconds(), {}, detail::ObjectiveScale::unit);
    solver_seconds += s.seconds;
    consider(s);
  }
  if (gap_above(options.gap)) {
    MilpOptions limited = o;
    limited.time_limit_seconds = std::min(o.time_limit_seconds, kIntegerSeconds);
    const detail::Solved s =
        detail::solve(integral.f.model, limited, costs.keep_all_seconds(),
                      start_of(integral, lower, best.count), detail::ObjectiveScale::unit);
    solver_seconds += s.seconds;
    consider(s);
  }
  if (!fits(best, options)) {
    throw PlanInfeasible("[plan] the block planner's plan peaks at " +
                         std::to_string(best.memory.total_peak) + " bytes, over the budget of " +
                         std::to_string(options.budget) + " (at " + best.memory.where + ")");
  }
  MilpResult r;
  r.plan = std::move(best.plan);
  r.memory = std::move(best.memory);
  runtime::validate(graph, r.plan);
  r.method = "blocks";
  r.predicted_seconds = predict_step_seconds(graph, r.plan, costs);
  r.objective = r.predicted_seconds - costs.keep_all_seconds();
  r.model_objective = lower.objective;
  r.lower_bound_seconds = lower_bound;
  const double open = std::max(0.0, r.predicted_seconds - r.lower_bound_seconds);
  r.gap = open / std::max(1e-300, r.predicted_seconds);
  r.overhead_gap = open / std::max(1e-300, std::abs(r.objective));
  r.proven_optimal = open <= 1e-9 * r.predicted_seconds;
  r.solve_seconds = solver_seconds;
  r.columns = relaxed.f.model.columns().size();
  r.rows = relaxed.f.model.rows().size();
  return r;
}

std::size_t block_model_peak(const StepGraph& graph, const StepCosts& costs,
                             const MilpOptions& options, const runtime::Plan& plan) {
  const Decomposition dec(graph, costs, options);
  const std::vector<UnitPlan>& hull = dec.hull;
  const std::vector<int>& ends_layers = dec.ends_layers;
  const StepGraph& ends = dec.ends;
  const StepGraph& unit_graph = dec.unit_graph;
  const int L = dec.layers;
  EndsModel e = ends_model(ends, dec.ends_costs, dec.o, hull, dec.middle, true);

  std::vector<double> x(e.f.model.columns().size(), 0);
  const std::vector<int> unit = tensor_units(ends);
  for (std::size_t k = 0; k < e.f.choices.size(); ++k) {
    if (e.f.choices[k].empty()) continue;
    const model::TensorInfo& t = ends.tensors()[k];
    const int shift = ends_layers[static_cast<std::size_t>(unit[k])] - unit[k];
    const runtime::Decision& d =
        plan.decisions.at(static_cast<std::size_t>(graph.find(moved(t.name, t.layer, shift))));
    bool found = false;
    for (const detail::Choice& c : e.f.choices[k]) {
      const bool chosen = c.decision.policy == d.policy &&
                          (d.policy != runtime::Policy::compress || c.decision.codec == d.codec);
      x[static_cast<std::size_t>(c.col)] = chosen ? 1 : 0;
      found = found || chosen;
    }
    if (!found) {
      throw InvalidArgument("[plan] the block planner's model has no choice '" +
                            std::string(runtime::policy_name(d.policy)) + " " + d.codec +
                            "' for '" + t.name + "'");
    }
  }
  for (int b = 2; b < L - 2; ++b) {  // which hull plan each middle block takes
    int match = -1;
    for (std::size_t j = 0; j < hull.size() && match < 0; ++j) {
      bool same = true;
      for (const auto& [t, d] : hull[j].decisions) {
        const model::TensorInfo& info = unit_graph.tensor(t);
        const runtime::Decision& got = plan.decisions.at(
            static_cast<std::size_t>(graph.find(moved(info.name, info.layer, b - 1))));
        same = same && got.policy == d.policy && got.codec == d.codec;
      }
      if (same) match = static_cast<int>(j);
    }
    if (match < 0) {
      throw InvalidArgument("[plan] block " + std::to_string(b) +
                            " does not take one of the block planner's hull plans");
    }
    x[static_cast<std::size_t>(e.weights[static_cast<std::size_t>(match)])] += 1;
  }
  x = e.f.model.complete(std::move(x));
  double peak = 0;
  for (const detail::MemoryPoint& p : e.f.memory) {
    double v = p.bytes.constant;
    for (const detail::Term& t : p.bytes.terms) v += t.coef * x[static_cast<std::size_t>(t.col)];
    peak = std::max(peak, v);
  }
  return static_cast<std::size_t>(std::llround(peak)) + detail::fixed_total(options);
}

}  // namespace adacc::plan
