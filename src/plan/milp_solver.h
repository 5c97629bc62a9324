// Solving a planner's model with COIN-OR CBC, shared by the MILP planners
// (milp_planner.cpp, block_planner.cpp): the memory rows and the objective, loading,
// a start, the solve and reading a plan back.
#pragma once

#include <OsiClpSolverInterface.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "adacc/model/step_graph.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/runtime/plan.h"
#include "linear_model.h"
#include "milp_formulation.h"

class CbcModel;

namespace adacc::plan::detail {

// Memory rows are in MiB (bytes / 2^20, exact in binary floating point): coefficients
// stay moderate for the solver, and a byte over the budget (9.5e-7) is above its 1e-7
// tolerance.
constexpr double kUnit = 1024.0 * 1024.0;

std::size_t fixed_total(const MilpOptions& options);

// Adds the memory rows (<= cap bytes) and the objective: time, then (a term too small to
// trade against any time) fewer compressed bytes. Returns that term's weight per byte.
double finish_for_budget(Formulation& f, double cap);

// Adds a peak column (MiB) over every memory row, the only objective; returns it.
int finish_for_peak(Formulation& f);

// The model into CLP, its objective multiplied by objective_scale.
void load(const LinearModel& model, OsiClpSolverInterface& solver, double objective_scale = 1);

struct Solved {
  bool feasible = false;
  bool optimal = false;
  bool proven_infeasible = false;  // else, without a plan: stopped by the time limit
  std::vector<double> x;
  double objective = 0, bound = 0, seconds = 0;
  // CBC prunes what cannot beat its incumbent by this much: the optimum may lie up to it
  // below the proven bound.
  double cutoff_increment = 0;
};

// `offset`: what the objective leaves out (the keep-everything step for plan_milp), so
// that the gap is relative to the whole predicted step time: the solver stops when the
// incumbent is within options.gap * offset of the bound (or options.gap relative to the
// objective itself).
// `start`: values of the decision columns of a plan to start from (empty: none).
using Start = std::vector<std::pair<int, double>>;  // (decision column, 0 or 1)

// Gives CBC the start (see milp_solver.cpp).
void set_start(const LinearModel& model, const Start& initial, CbcModel& cbc,
               double objective_scale = 1);

// The units CBC sees the objective in (results are in the model's units). CLP's
// tolerances are absolute (1e-7): op times of microseconds in seconds come near them and
// the LP may stop short of its optimum (CBC then declared a warm start optimal at a 4-op
// graph, 30% above the optimum glpsol found). `raise_small`: scaled up to a largest
// coefficient of kSmallestObjectiveTop when it is smaller, else as is (the whole step's
// model, tuned unscaled, solved slower scaled to 1: 11 s instead of 2.5 s at 12 blocks);
// `unit`: in units of its largest coefficient (the block planner's exact bounds).
enum class ObjectiveScale : std::uint8_t { raise_small, unit };
constexpr double kSmallestObjectiveTop = 1e-2;
Solved solve(const LinearModel& model, const MilpOptions& options, double offset = 0,
             const Start& initial = {}, ObjectiveScale scaling = ObjectiveScale::raise_small);

runtime::Plan plan_of(const model::StepGraph& graph, const Formulation& f, const Solved& s,
                      const std::string& planner);

// The expression's value at x, its columns rounded (decision columns and their indicators).
double value_of(const LinExpr& e, const std::vector<double>& x);

}  // namespace adacc::plan::detail
