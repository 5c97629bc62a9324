// Planning a deep GPT-2 from a few of its blocks: the MILP planner's answer (milp_planner.h)
// for models too deep to solve whole, with a proven bound.
//
// Plans here re-run ops only within their own block (MilpOptions::max_chain_blocks = 1), so
// a block's input is kept or compressed and each block's "unit" (its input and its own
// saved tensors) is independent of the others: its extra time and the bytes it holds from
// its forward to its backward depend on its own decisions only, and the other blocks see it
// only through those held bytes. The blocks away from the ends are identical.
//
// 1. The one-block trade-off: on a 3-block graph, with the outer blocks fixed to keep,
//    min time + mu * held bytes over the middle unit's plans for the mu that find every
//    vertex of the lower convex hull of (held bytes, time) (each an exact MILP, no memory
//    rows).
// 2. A lower bound: the four end blocks (0, 1, L-2, L-1, with the embedding and the head)
//    as an exact MILP and the L-4 middle blocks as continuous weights over the hull's
//    plans, whose held bytes are added to every memory point after them. Every plan of the
//    full model maps to a point of this relaxation that is no slower (the middle blocks'
//    own memory rows are dropped; their time is at least the hull's at their average held
//    bytes), so its optimum bounds the full model's.
// 3. A plan: the same model with integer weights (how many middle blocks take each hull
//    plan), expanded to the full graph with the middle blocks ordered so that the memory
//    model's peak is least, checked by the memory model and priced by the cost model.
// The gap reported is (plan's predicted time - lower bound) / plan's predicted time.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "adacc/model/step_graph.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// The smallest depth plan_by_blocks accepts (two end blocks on each side and a middle).
inline constexpr int kBlockPlannerMinLayers = 5;
// From this depth on plan_milp plans by blocks (falling back to the whole step when that
// fails). Below it (from kBlockPlannerMinLayers) it solves the whole step, whose space is
// larger (re-runs that cross a block boundary), and plans by blocks too only when the
// whole step's solver stops short of its gap, taking the faster plan.
inline constexpr int kBlockPlannerFromLayers = 13;

// `graph` is a build_gpt2_graph graph (it carries its config) and `costs` its costs, equal
// in every block (as a profile's are); the options' max_chain_blocks is taken as 1.
// Returns the plan with method "blocks", its proven lower bound and gap. Throws
// PlanInfeasible when no plan is found or it does not fit the budget (the caller may then
// solve the whole step), InvalidArgument for a graph without its config, of fewer than
// kBlockPlannerMinLayers blocks, or with costs that differ between blocks.
MilpResult plan_by_blocks(const model::StepGraph& graph, const StepCosts& costs,
                          const MilpOptions& options, const std::string& planner = "adacc");

// One vertex of a middle block's trade-off (step 1 above).
struct BlockTradeoffPoint {
  double held_bytes = 0;  // what the block holds from its forward to its backward
  double seconds = 0;     // its predicted time over keeping everything
  // Its decisions, by tensor name in a 3-block graph of the model: block 1's saved
  // tensors and its input, block 0's output "h0.res2.out".
  std::vector<std::pair<std::string, runtime::Decision>> decisions;
};

// Every vertex of the lower convex hull of (held bytes, time) over one middle block's
// plans, by decreasing held bytes; the same preconditions as plan_by_blocks.
std::vector<BlockTradeoffPoint> block_tradeoff(const model::StepGraph& graph,
                                               const StepCosts& costs, const MilpOptions& options);

// For tests: the highest of the bound's memory points (fixed bytes included) for `plan`,
// whose middle blocks each take one of block_tradeoff's plans and whose end blocks re-run
// only within their block: the memory model's peak at every event of the end blocks, the
// embedding and the head (the middle blocks' own events are not in the model), so at most
// the memory model's peak, and equal when that peak is in an end block. Throws
// InvalidArgument for a plan that is not of that form.
std::size_t block_model_peak(const model::StepGraph& graph, const StepCosts& costs,
                             const MilpOptions& options, const runtime::Plan& plan);

}  // namespace adacc::plan
