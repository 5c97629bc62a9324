// The MILP planner (see milp_planner.h): the formulation (milp_formulation.h) as rows,
// solved by CBC, the solution read back as a plan and checked by the memory model.
#include "adacc/plan/milp_planner.h"

#include <CbcModel.hpp>
#include <CoinMpsIO.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/allocator.h"
#include "adacc/core/error.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/block_planner.h"
#include "adacc/plan/cost_model.h"
#include "milp_formulation.h"
#include "milp_solver.h"

namespace adacc::plan {

namespace {

using detail::finish_for_budget;
using detail::finish_for_peak;
using detail::fixed_total;
using detail::Formulation;
using detail::kUnit;
using detail::LinExpr;
using detail::load;
using detail::plan_of;
using detail::solve;
using detail::Solved;
using detail::Start;
using detail::value_of;

bool is_choice(const detail::Choice& c, const runtime::Decision& d) {
  return c.decision.policy == d.policy &&
         (d.policy != runtime::Policy::compress || c.decision.codec == d.codec);
}

// The decision columns' values for `plan`; empty if the model has no column for one of
// its decisions (a codec not admissible under these options).
Start start_of(const Formulation& f, const runtime::Plan& plan) {
  Start start;
  for (std::size_t k = 0; k < f.choices.size(); ++k) {
    bool found = f.choices[k].empty();
    for (const detail::Choice& c : f.choices[k]) {
      const bool chosen = is_choice(c, plan.decisions.at(k));
      found = found || chosen;
      start.emplace_back(c.col, chosen ? 1 : 0);
    }
    if (!found) return {};
  }
  return start;
}

// The solver's start: the baseline the model can express that fits the budget (memory
// model) in the least predicted time (cost model), or, with `least_peak`, the one with
// the least peak whatever the budget; empty if none.
Start best_baseline(const model::StepGraph& graph, const StepCosts& costs,
                    const MilpOptions& options, const Formulation& f, bool least_peak = false) {
  std::vector<std::string> names = {"none", "selective", "llmc", "full", "every-2", "compress"};
  if (options.codecs) {
    for (const std::string& c : compress::codec_names()) names.push_back("compress-" + c);
  }
  Start best;
  double best_score = 0;
  for (const std::string& name : names) {
    try {
      const runtime::Plan plan = baseline_plan(graph, name);
      Start start = start_of(f, plan);
      if (start.empty()) continue;
      const std::size_t peak =
          runtime::predict_step_memory(graph, plan, options.threads, options.fixed).total_peak;
      if (!least_peak && peak > options.budget) continue;
      const double score =
          least_peak ? static_cast<double>(peak) : predict_step_seconds(graph, plan, costs);
      if (best.empty() || score < best_score) {
        best = std::move(start);
        best_score = score;
      }
    } catch (const Error&) {
      // not a baseline of this graph (e.g. a codec that applies to none of its tensors)
    }
  }
  return best;
}

// Fixes the decision columns to `plan`'s choices.
void fix_to(Formulation& f, const model::StepGraph& graph, const runtime::Plan& plan) {
  for (std::size_t k = 0; k < f.choices.size(); ++k) {
    const runtime::Decision& d = plan.decisions.at(k);
    bool found = false;
    for (const detail::Choice& c : f.choices[k]) {
      const bool chosen = is_choice(c, d);
      found = found || chosen;
      auto& col = f.model.columns()[static_cast<std::size_t>(c.col)];
      col.lower = col.upper = chosen ? 1 : 0;
    }
    if (!found && !f.choices[k].empty()) {
      throw InvalidArgument("[plan] the MILP has no choice '" +
                            std::string(runtime::policy_name(d.policy)) + " " + d.codec +
                            "' for '" + graph.tensors()[k].name +
                            "' (not admissible under these options or costs)");
    }
  }
}

}  // namespace

std::size_t smallest_feasible_budget(const model::StepGraph& graph, const StepCosts& costs,
                                     const MilpOptions& options) {
  return least_peak_plan(graph, costs, options).peak;
}

LeastPeakPlan least_peak_plan(const model::StepGraph& graph, const StepCosts& costs,
                              const MilpOptions& options) {
  Formulation f = detail::formulate(graph, costs, options);
  const Start start = best_baseline(graph, costs, options, f, true);
  finish_for_peak(f);
  MilpOptions o = options;
  o.gap = 0;
  const Solved s = solve(f.model, o, 0, start);
  if (!s.feasible) throw PlanInfeasible("[plan] no plan of this policy can run this step");
  LeastPeakPlan out;
  out.plan = plan_of(graph, f, s, "smallest");
  const runtime::MemoryPrediction mem =
      runtime::predict_step_memory(graph, out.plan, options.threads, options.fixed);
  out.peak = mem.total_peak;
  if (!s.optimal) return out;  // the best found: feasible, maybe not least
  const auto model_peak = static_cast<std::size_t>(std::llround(s.objective * kUnit));
  if (model_peak + fixed_total(options) != mem.total_peak) {
    throw std::logic_error("[plan] internal error: the MILP's least peak (" +
                           std::to_string(model_peak + fixed_total(options)) +
                           " bytes) is not the memory model's for its plan (" +
                           std::to_string(mem.total_peak) + " bytes)");
  }
  return out;
}

namespace {

MilpResult plan_whole_step(const model::StepGraph& graph, const StepCosts& costs,
                           const MilpOptions& options, const std::string& planner) {
  Formulation f = detail::formulate(graph, costs, options);
  const std::size_t fixed = fixed_total(options);
  Solved s;
  if (options.budget >= fixed) {
    finish_for_budget(f, static_cast<double>(options.budget - fixed));
    s = solve(f.model, options, costs.keep_all_seconds(), best_baseline(graph, costs, options, f));
  }
  if (!s.feasible && !s.proven_infeasible && options.budget >= fixed) {
    throw PlanInfeasible("[plan] the MILP solver found no " + planner + " plan within its time " +
                         "limit of " + std::to_string(options.time_limit_seconds) +
                         " s at the budget of " + std::to_string(options.budget) +
                         " bytes (none of the baselines fits it either); raise --budget");
  }
  if (!s.feasible) {
    const std::size_t least = smallest_feasible_budget(graph, costs, options);
    throw PlanInfeasible("[plan] no " + planner + " plan fits the budget of " +
                         std::to_string(options.budget) +
                         " bytes; the smallest feasible budget is " + std::to_string(least) +
                         " bytes (" + format_bytes(least) + "); raise --budget to at least that");
  }
  MilpResult r;
  r.plan = plan_of(graph, f, s, planner);
  runtime::validate(graph, r.plan);
  r.memory = runtime::predict_step_memory(graph, r.plan, options.threads, options.fixed);
  if (r.memory.total_peak > options.budget) {
    throw std::logic_error("[plan] internal error: the MILP's plan fits " +
                           std::to_string(options.budget) +
                           " bytes by its model but the memory model predicts " +
                           std::to_string(r.memory.total_peak) + " at " + r.memory.where);
  }
  r.predicted_seconds = predict_step_seconds(graph, r.plan, costs);
  r.objective = value_of(f.seconds, s.x);
  r.model_objective = s.objective;
  // CBC's bound, less what its cutoff increment may have pruned.
  const double bound = std::min(s.bound, s.objective - s.cutoff_increment);
  const double open = std::max(0.0, s.objective - bound);
  r.gap = open / std::max(1e-300, costs.keep_all_seconds() + s.objective);
  r.proven_optimal = s.optimal && r.gap < 1e-7;  // up to the exact solve's increment
  r.overhead_gap = open / std::max(1e-300, std::abs(s.objective));
  r.lower_bound_seconds = costs.keep_all_seconds() + bound;
  r.solve_seconds = s.seconds;
  r.columns = f.model.columns().size();
  r.rows = f.model.rows().size();
  return r;
}

}  // namespace

MilpResult plan_milp(const model::StepGraph& graph, const StepCosts& costs,
                     const MilpOptions& options, const std::string& planner) {
  const int layers = graph.config ? graph.config->n_layer : 0;
  if (!options.by_blocks || layers < kBlockPlannerMinLayers) {
    return plan_whole_step(graph, costs, options, planner);
  }
  auto by_blocks = [&]() -> std::optional<MilpResult> {
    try {
      return plan_by_blocks(graph, costs, options, planner);
    } catch (const Error&) {
      return std::nullopt;  // blocks that cost differently, or no plan found that way
    }
  };
  if (layers >= kBlockPlannerFromLayers) {
    if (std::optional<MilpResult> r = by_blocks()) return std::move(*r);
    return plan_whole_step(graph, costs, options, planner);
  }
  // Shallower: the whole step, and when its solver stopped short of the gap, the block
  // planner too (whichever plan is faster).
  std::optional<MilpResult> whole;
  try {
    whole = plan_whole_step(graph, costs, options, planner);
  } catch (const PlanInfeasible&) {
    if (std::optional<MilpResult> r = by_blocks()) return std::move(*r);
    throw;
  }
  if (whole->gap <= options.gap) return std::move(*whole);
  std::optional<MilpResult> blocks = by_blocks();
  if (blocks && blocks->predicted_seconds < whole->predicted_seconds) {
    blocks->solve_seconds += whole->solve_seconds;  // both were solved
    return std::move(*blocks);
  }
  if (blocks) whole->solve_seconds += blocks->solve_seconds;
  return std::move(*whole);
}

std::size_t milp_predicted_peak(const model::StepGraph& graph, const StepCosts& costs,
                                const MilpOptions& options, const runtime::Plan& plan) {
  Formulation f = detail::formulate(graph, costs, options);
  fix_to(f, graph, plan);
  const auto& cols = f.model.columns();
  std::vector<double> x(cols.size(), 0);
  for (std::size_t c = 0; c < cols.size(); ++c) {
    if (cols[c].lower == cols[c].upper) x[c] = cols[c].lower;
  }
  x = f.model.complete(x);
  constexpr double kSlack = 1e-9;
  for (std::size_t c = 0; c < cols.size(); ++c) {
    if (x[c] < cols[c].lower - kSlack || x[c] > cols[c].upper + kSlack) {
      throw PlanInfeasible("[plan] plan '" + plan.planner +
                           "' is outside the MILP's plan space: column " + cols[c].name + " = " +
                           std::to_string(x[c]));
    }
  }
  for (const detail::Row& r : f.model.rows()) {
    const double a = detail::LinearModel::activity(r, x);
    if (a < r.lower - kSlack || a > r.upper + kSlack) {
      throw PlanInfeasible("[plan] plan '" + plan.planner +
                           "' is outside the MILP's plan space: it breaks row " + r.name);
    }
  }
  double peak = 0;
  for (const detail::MemoryPoint& p : f.memory) {
    double v = p.bytes.constant;
    for (const detail::Term& t : p.bytes.terms) v += t.coef * x[static_cast<std::size_t>(t.col)];
    peak = std::max(peak, v);
  }
  return static_cast<std::size_t>(std::llround(peak)) + fixed_total(options);
}

void export_milp(const model::StepGraph& graph, const StepCosts& costs, const MilpOptions& options,
                 const std::string& path, MilpFormat format) {
  Formulation f = detail::formulate(graph, costs, options);
  finish_for_budget(
      f, static_cast<double>(options.budget) - static_cast<double>(fixed_total(options)));
  OsiClpSolverInterface solver;
  load(f.model, solver);
  std::vector<std::string> row_names, col_names;
  for (const detail::Row& r : f.model.rows()) row_names.push_back(r.name);
  for (const detail::Column& c : f.model.columns()) col_names.push_back(c.name);
  std::vector<const char*> rows, cols;
  row_names.emplace_back("step_seconds");  // the objective's name (LP writer reads it)
  for (const std::string& n : row_names) rows.push_back(n.c_str());
  for (const std::string& n : col_names) cols.push_back(n.c_str());
  int rc = 0;
  if (format == MilpFormat::mps) {
    // CoinMpsIO, uncompressed (Osi's writeMpsNative gzips when zlib is there).
    std::vector<char> integer;
    for (const detail::Column& c : f.model.columns()) integer.push_back(c.integer ? 1 : 0);
    row_names.pop_back();
    CoinMpsIO io;
    io.setMpsData(*solver.getMatrixByCol(), COIN_DBL_MAX, solver.getColLower(),
                  solver.getColUpper(), solver.getObjCoefficients(), integer.data(),
                  solver.getRowLower(), solver.getRowUpper(), col_names, row_names);
    rc = io.writeMps(path.c_str(), 0, 1, 2);
  } else {
    rc = solver.writeLpNative(path.c_str(), rows.data(), cols.data(), 1e-12, 10, 17);
  }
  if (rc != 0) {
    throw InvalidArgument("[plan] could not write the MILP to '" + path +
                          "'; check that its directory exists and is writable");
  }
}

}  // namespace adacc::plan
