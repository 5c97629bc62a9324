// The MILP planner: for every saved activation, keep, compress with an admissible codec,
// or recompute, so that the predicted step time (cost_model.h) is minimal and the step's
// peak memory (runtime/memory_model.h, the executor's own schedule) fits the budget. The
// model follows the executor's schedule event by event: the forward (outputs, workspace,
// encodes), and every backward stage's rebuilds in the executor's order (decodes, re-runs
// with their outputs and workspace, the rebuilt tensors kept for later stages or freed),
// gradients and backward workspace. Solved by COIN-OR CBC; every plan it returns is
// checked by the memory model before it is returned.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "adacc/core/allocator.h"
#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

struct MilpOptions {
  std::size_t budget = 0;  // bytes of the whole step's peak, `fixed` included
  std::array<std::size_t, kMemCategories> fixed{};  // held throughout (training_fixed_bytes)
  int threads = 1;  // the training's threads (they size the kernels' workspace)
  // A codec is admissible for a tensor only if its measured gradient error is at most this.
  double tolerance = 0.05;
  bool codecs = true;  // false: keep or recompute only (the Checkmate baseline)
  // CBC's limit (CPU seconds), checked between its phases: from about 48 blocks its root
  // LP and heuristics alone overrun it (bench/milp_solve_bench).
  double time_limit_seconds = 10;
  // Relative optimality gap at which the solver stops: of the predicted step time (the
  // objective plus the keep-everything step), or of the objective alone, whichever is met
  // first. 0: solve to optimality.
  double gap = 1e-3;
  // A restriction of the plan space that keeps the model linear in the depth: a backward
  // stage of an op in block b may re-run only ops of blocks b - max_chain_blocks + 1 .. b
  // (the embedding counts as block 0, the final LayerNorm and the head as the last
  // block). Plans that would need a longer recomputation chain are not considered; every
  // baseline (none, full, every-2, llmc, selective, compress) is inside the space at the
  // default of 2. On graphs of at most max_chain_blocks blocks the restriction binds
  // nothing (tested). 0: unrestricted (the model grows quadratically with the depth).
  int max_chain_blocks = 2;
  int log_level = 0;  // CBC's log on stdout (0: none; 1: its progress)
  // Use the block planner (block_planner.h) on GPT-2s: from kBlockPlannerFromLayers
  // blocks instead of the whole step (which only runs if it fails); from
  // kBlockPlannerMinLayers when the whole step's solver stops short of `gap`. false:
  // always the whole step.
  bool by_blocks = true;
};

struct MilpResult {
  runtime::Plan plan;
  double predicted_seconds = 0;  // cost_model's predict_step_seconds of the plan
  double objective = 0;          // the solved objective's time part: predicted - keep-all
  double model_objective = 0;    // the solver's objective (time and the bytes tie-break)
  double gap = 0;                // proven gap relative to the predicted step time (0: optimal)
  double overhead_gap = 0;       // the same gap relative to `objective` (the time over keep-all)
  double solve_seconds = 0;      // wall clock: loading into CBC and solving (every model solved)
  bool proven_optimal = false;
  std::size_t columns = 0, rows = 0;  // the solved model's size
  runtime::MemoryPrediction memory;   // predict_step_memory of the plan
  // "whole step": one model of the whole step (plan_milp); "blocks": the repeated-block
  // decomposition (block_planner.h), whose gap is against its own lower bound.
  std::string method = "whole step";
  double lower_bound_seconds = 0;  // a proven lower bound on the optimal predicted time
};

// The fastest plan that fits options.budget. Throws PlanInfeasible (naming the smallest
// feasible budget) if no plan fits; InvalidArgument if the costs do not fit the graph.
MilpResult plan_milp(const model::StepGraph& graph, const StepCosts& costs,
                     const MilpOptions& options, const std::string& planner = "adacc");

// The least peak (fixed bytes included) of any plan the policy may choose (options'
// codecs and tolerance; its budget is ignored): the same model, minimizing memory.
std::size_t smallest_feasible_budget(const model::StepGraph& graph, const StepCosts& costs,
                                     const MilpOptions& options);

struct LeastPeakPlan {
  runtime::Plan plan;
  std::size_t peak = 0;  // the memory model's total_peak of the plan
};
// The plan behind smallest_feasible_budget: the least-peak plan found within the time
// limit. Throws PlanInfeasible if the solver found none.
LeastPeakPlan least_peak_plan(const model::StepGraph& graph, const StepCosts& costs,
                              const MilpOptions& options);

enum class MilpFormat : std::uint8_t { mps, lp };

// Writes the model plan_milp solves for these options, with names that say tensor and
// policy (`h3.fc.out__keep`, `h3.fc.out__int8_g64`, `h3.fc.out__recompute`).
void export_milp(const model::StepGraph& graph, const StepCosts& costs, const MilpOptions& options,
                 const std::string& path, MilpFormat format);

// The model's own memory for a plan: its memory rows' highest value (fixed included) at
// the model's point for `plan`: the decisions fixed to it, every other column computed
// from its definition (an AND, OR or sum of earlier columns) and every row checked there
// (no solver; with 0/1 decisions the rows admit no other point). Equal to
// predict_step_memory's total_peak when the model is exact (tested); for tests and
// diagnostics. Throws PlanInfeasible if the plan breaks a row (outside the plan space).
std::size_t milp_predicted_peak(const model::StepGraph& graph, const StepCosts& costs,
                                const MilpOptions& options, const runtime::Plan& plan);

}  // namespace adacc::plan
