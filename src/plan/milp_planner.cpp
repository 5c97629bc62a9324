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
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/allocator.h"
#include "adacc/core/error.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/cost_model.h"
#include "milp_formulation.h"

namespace adacc::plan {

namespace {

using detail::Formulation;
using detail::LinExpr;

// Memory rows are in MiB (bytes / 2^20, exact in binary floating point): coefficients
// stay moderate for the solver, and a byte over the budget (9.5e-7) is above its 1e-7
// tolerance.
constexpr double kUnit = 1024.0 * 1024.0;

std::size_t fixed_total(const MilpOptions& options) {
  return std::accumulate(options.fixed.begin(), options.fixed.end(), std::size_t{0});
}

// Adds the memory rows (<= cap bytes) and the objective: time, then (a term too small to
// trade against any time) fewer compressed bytes.
void finish_for_budget(Formulation& f, double cap) {
  for (const detail::MemoryPoint& p : f.memory) {
    LinExpr e;
    e.add(p.bytes, 1 / kUnit);
    f.model.add_row(p.name, e, -detail::kInf, cap / kUnit);
  }
  double smallest = 0, total_bytes = 0;
  for (const detail::Term& t : f.seconds.terms) {
    if (t.coef > 0 && (smallest == 0 || t.coef < smallest)) smallest = t.coef;
  }
  for (const detail::Term& t : f.encoded_bytes.terms) total_bytes += t.coef;
  const double per_byte = total_bytes > 0 && smallest > 0 ? 1e-6 * smallest / total_bytes : 0;
  auto& cols = f.model.columns();
  for (const detail::Term& t : f.seconds.terms)
    cols[static_cast<std::size_t>(t.col)].objective += t.coef;
  for (const detail::Term& t : f.encoded_bytes.terms) {
    cols[static_cast<std::size_t>(t.col)].objective += per_byte * t.coef;
  }
}

// Adds a peak column (MiB) over every memory row, the only objective; returns it.
int finish_for_peak(Formulation& f) {
  const int peak = f.model.add_column("peak_MiB", 0, detail::kInf, false, 1);
  for (const detail::MemoryPoint& p : f.memory) {
    LinExpr e;
    e.add(p.bytes, 1 / kUnit);
    e.add_col(peak, -1);
    f.model.add_row(p.name, e, -detail::kInf, 0);
  }
  return peak;
}

void load(const detail::LinearModel& model, OsiClpSolverInterface& solver) {
  const auto& cols = model.columns();
  const auto& rows = model.rows();
  // Row-ordered, built in one go (appending row by row reallocates: quadratic in size).
  std::vector<CoinBigIndex> starts{0};
  std::vector<int> lengths, idx;
  std::vector<double> val, row_lo, row_hi;
  for (const detail::Row& r : rows) {
    for (const detail::Term& t : r.terms) {
      idx.push_back(t.col);
      val.push_back(t.coef);
    }
    lengths.push_back(static_cast<int>(r.terms.size()));
    starts.push_back(static_cast<CoinBigIndex>(idx.size()));
    row_lo.push_back(std::isinf(r.lower) ? -COIN_DBL_MAX : r.lower);
    row_hi.push_back(std::isinf(r.upper) ? COIN_DBL_MAX : r.upper);
  }
  const CoinPackedMatrix matrix(false, static_cast<int>(cols.size()), static_cast<int>(rows.size()),
                                static_cast<CoinBigIndex>(idx.size()), val.data(), idx.data(),
                                starts.data(), lengths.data());
  std::vector<double> col_lo, col_hi, obj;
  for (const detail::Column& c : cols) {
    col_lo.push_back(std::isinf(c.lower) ? -COIN_DBL_MAX : c.lower);
    col_hi.push_back(std::isinf(c.upper) ? COIN_DBL_MAX : c.upper);
    obj.push_back(c.objective);
  }
  solver.loadProblem(matrix, col_lo.data(), col_hi.data(), obj.data(), row_lo.data(),
                     row_hi.data());
  for (std::size_t k = 0; k < cols.size(); ++k) {
    const auto c = static_cast<int>(k);
    if (cols[k].integer) solver.setInteger(c);
    solver.setColName(c, cols[k].name);
  }
  for (std::size_t k = 0; k < rows.size(); ++k)
    solver.setRowName(static_cast<int>(k), rows[k].name);
  solver.messageHandler()->setLogLevel(0);
}

struct Solved {
  bool feasible = false;
  bool optimal = false;
  bool proven_infeasible = false;  // else, without a plan: stopped by the time limit
  std::vector<double> x;
  double objective = 0, bound = 0, seconds = 0;
};

// `offset`: what the objective leaves out (the keep-everything step for plan_milp), so
// that the gap is relative to the whole predicted step time: the solver stops when the
// incumbent is within options.gap * offset of the bound (or options.gap relative to the
// objective itself).
// `start`: values of the decision columns of a plan to start from (empty: none).
using Start = std::vector<std::pair<int, double>>;  // (decision column, 0 or 1)

// Gives CBC the start: the model's point for those decisions (every other column from
// its definition, LinearModel::complete) as its incumbent when every row holds there;
// else (a model with columns no definition fixes, like the peak column) the decisions
// alone, which CBC completes by a search of its own (slower).
void set_start(const detail::LinearModel& model, const Start& initial, CbcModel& cbc) {
  const auto& cols = model.columns();
  std::vector<double> x(cols.size(), 0);
  for (const auto& [col, value] : initial) x[static_cast<std::size_t>(col)] = value;
  x = model.complete(std::move(x));
  constexpr double kSlack = 1e-9;
  bool holds = true;
  for (const detail::Row& r : model.rows()) {
    const double a = detail::LinearModel::activity(r, x);
    holds = holds && a >= r.lower - kSlack && a <= r.upper + kSlack;
  }
  double objective = 0;
  for (std::size_t c = 0; c < cols.size(); ++c) {
    holds = holds && x[c] >= cols[c].lower - kSlack && x[c] <= cols[c].upper + kSlack;
    objective += cols[c].objective * x[c];
  }
  if (holds) {
    cbc.setBestSolution(x.data(), static_cast<int>(x.size()), objective, false);
    return;
  }
  std::vector<std::pair<std::string, double>> named;
  for (const auto& [col, value] : initial) {
    named.emplace_back(cols[static_cast<std::size_t>(col)].name, value);
  }
  cbc.setMIPStart(named);
}

Solved solve(const detail::LinearModel& model, const MilpOptions& options, double offset = 0,
             const Start& initial = {}) {
  const auto start = std::chrono::steady_clock::now();  // loading included
  OsiClpSolverInterface solver;
  load(model, solver);
  CbcModel cbc(solver);
  CbcMain0(cbc);
  if (!initial.empty()) set_start(model, initial, cbc);
  cbc.setLogLevel(options.log_level);
  const std::string log = std::to_string(options.log_level);
  const std::string seconds = std::to_string(options.time_limit_seconds);
  const std::string ratio = std::to_string(options.gap);
  char allow[32];
  std::snprintf(allow, sizeof allow, "%.17g", options.gap * offset);
  const char* argv[] = {"adacc",  "-log",        log.c_str(), "-sec", seconds.c_str(),
                        "-ratio", ratio.c_str(), "-allow",    allow,  "-preprocess",
                        "off",    "-solve",      "-quit"};
  CbcMain1(static_cast<int>(std::size(argv)), argv, cbc);
  Solved s;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.proven_infeasible = cbc.isProvenInfeasible();
  const double* best = cbc.bestSolution();
  if (best == nullptr || cbc.getNumCols() != static_cast<int>(model.columns().size())) return s;
  s.feasible = true;
  s.x.assign(best, best + model.columns().size());
  s.objective = cbc.getObjValue();
  s.bound = cbc.getBestPossibleObjValue();
  s.optimal = cbc.isProvenOptimal();
  return s;
}

runtime::Plan plan_of(const model::StepGraph& graph, const Formulation& f, const Solved& s,
                      const std::string& planner) {
  runtime::Plan plan = runtime::keep_all_plan(graph);
  plan.planner = planner;
  for (std::size_t k = 0; k < f.choices.size(); ++k) {
    for (const detail::Choice& c : f.choices[k]) {
      if (s.x[static_cast<std::size_t>(c.col)] > 0.5) plan.decisions[k] = c.decision;
    }
  }
  return plan;
}

double value_of(const LinExpr& e, const std::vector<double>& x) {
  double v = e.constant;
  for (const detail::Term& t : e.terms)
    v += t.coef * std::round(x[static_cast<std::size_t>(t.col)]);
  return v;
}

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

MilpResult plan_milp(const model::StepGraph& graph, const StepCosts& costs,
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
  r.proven_optimal = s.optimal;
  const double open = std::max(0.0, s.objective - s.bound);
  r.gap = open / std::max(1e-300, costs.keep_all_seconds() + s.objective);
  r.overhead_gap = open / std::max(1e-300, std::abs(s.objective));
  r.solve_seconds = s.seconds;
  r.columns = f.model.columns().size();
  r.rows = f.model.rows().size();
  return r;
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
