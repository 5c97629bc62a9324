// Every --policy through one door, at a byte budget: the fixed baselines and plan files
// (whose plan does not depend on the budget: they fit or not) and the cost-based
// policies, which choose per tensor by the MILP (plan/milp_planner.h) from measured costs:
//   adacc      keep, compress with any admissible codec, or recompute;
//   checkmate  the same MILP with codecs disabled: optimal recompute-only (Checkmate).
// A budget no plan of the policy fits is a PlanInfeasible that names the smallest
// feasible budget of the policy asked for and of every other policy.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/model/step_graph.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/plan/policy.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// "adacc" and "checkmate": the policies that need measured costs. Each returns the fastest
// of its MILP's plan and the plans it contains (checkmate: the recompute-only baselines;
// adacc: checkmate's plan and every baseline whose codecs are within the tolerance, and
// those plans and checkmate's least-memory plan with their kept tensors compressed, see
// compress_kept_tensors), so that a solver stopped by its time limit never leaves it
// behind a policy it contains, and adacc reaches below checkmate's smallest budget.
bool is_cost_based_policy(std::string_view policy);

// The largest relative gradient error (runtime::CodecMeasurement::grad_error) a codec may
// cause on a tensor for adacc to use it there; docs/planner.md says how it was chosen.
inline constexpr double kDefaultTolerance = 0.05;

// The policies compared by `adacc plan`, `adacc bench` and an infeasible budget's message.
std::vector<std::string> compared_policies();

// `costs` without the codecs no optimal plan needs: those whose gradient error is above
// `tolerance`, and per tensor those dominated by an admissible codec that decodes to the
// same form with no more encoded bytes and no more encode + decode time (one of them
// better; of equals, the first listed stays). Memory and time of a plan only ever get
// better by swapping a dominated codec for its dominator, so the optimum is unchanged.
StepCosts prune_dominated_codecs(const StepCosts& costs, double tolerance);

// `plan` with every kept saved activation compressed by its admissible codec (gradient
// error within `tolerance`) of fewest encoded bytes among those that decode to the value;
// a tensor no such codec was measured on stays kept. Everything else is unchanged.
runtime::Plan compress_kept_tensors(const model::StepGraph& graph, const runtime::Plan& plan,
                                    const StepCosts& costs, double tolerance);

struct ChosenPlan {
  std::string policy;
  runtime::Plan plan;
  runtime::MemoryPrediction memory;
  double predicted_seconds = -1;  // the cost model's step time (-1: no costs given)
  // For cost-based policies: where the plan comes from — "MILP", or, when the solver found
  // nothing better within its time limit, the contained plan that was best ("checkmate",
  // "baseline full", ...) — and what the solver reported (solved: it returned a plan).
  std::string source;
  bool solved = false;
  double solve_seconds = 0;
  double gap = 0;  // proven relative optimality gap
  bool proven_optimal = false;
  std::string method;          // the MILP's (MilpResult::method): "whole step" or "blocks"
  double model_objective = 0;  // the solver's objective (MilpResult::model_objective)
};

class PolicyPlanner {
 public:
  // `costs` may be null: then cost-based policies are refused and no times are predicted.
  // graph and costs must outlive the planner.
  PolicyPlanner(const model::StepGraph& graph, int threads,
                const std::array<std::size_t, kMemCategories>& fixed, const StepCosts* costs,
                double tolerance = kDefaultTolerance);

  // What keeping every saved activation needs (what percentages of a budget refer to).
  const runtime::MemoryPrediction& none() const { return none_; }
  std::size_t resolve(const Budget& budget) const { return resolve_budget(budget, none_); }

  // The plan of `policy` within `budget` bytes (Allocator::kUnlimited: no budget).
  ChosenPlan choose(std::string_view policy, std::size_t budget) const;

  // The smallest budget in bytes that `policy` has a plan for.
  std::size_t smallest_budget(std::string_view policy) const;

  // CBC's time limit per MILP solve (MilpOptions::time_limit_seconds; default 10 s).
  void set_time_limit(double seconds) { time_limit_seconds_ = seconds; }
  // The relative optimality gap at which CBC stops (MilpOptions::gap; 0: exact).
  void set_gap(double gap) { gap_ = gap; }
  // true: cost-based policies solve the whole step's model at every depth, never by
  // blocks (MilpOptions::by_blocks), so that export_milp writes the model that is solved.
  void set_whole_step(bool whole_step) { whole_step_ = whole_step; }

  // Writes the MILP that choose(policy, budget) solves (a cost-based policy's whole-step
  // model over the costs the planner sees: inadmissible and dominated codecs pruned).
  void export_milp(std::string_view policy, std::size_t budget, const std::string& path,
                   MilpFormat format) const;

  // The cost model's step time of a plan; requires costs.
  double predict_seconds(const runtime::Plan& plan) const;

  // The options of the MILP that choose(policy, budget) solves.
  MilpOptions milp_options(std::string_view policy, std::size_t budget) const;

 private:
  // The plan with the least peak that `policy` can find: its MILP's, or a contained one's.
  const LeastPeakPlan& least_plan(std::string_view policy) const;
  LeastPeakPlan find_least_plan(std::string_view policy) const;
  // The baselines inside a cost-based policy's plan space (see is_cost_based_policy).
  std::vector<std::string> contained_baselines(std::string_view policy) const;
  ChosenPlan choose_cost_based(std::string_view policy, std::size_t budget) const;
  [[noreturn]] void throw_infeasible(std::string_view policy, std::size_t budget,
                                     std::size_t smallest) const;

  const model::StepGraph& graph_;
  int threads_;
  std::array<std::size_t, kMemCategories> fixed_;
  const StepCosts* costs_;
  double tolerance_;
  StepCosts pruned_;  // costs_ without dominated or inadmissible codecs (what the MILP sees)
  runtime::MemoryPrediction none_;
  double time_limit_seconds_ = MilpOptions{}.time_limit_seconds;
  double gap_ = MilpOptions{}.gap;
  bool whole_step_ = false;
  // least_plan's answers so far, by policy (each may take a MILP solve).
  mutable std::map<std::string, LeastPeakPlan, std::less<>> least_;
  // The cost-based policies' plans so far, by (policy, budget): each is a MILP solve.
  mutable std::map<std::pair<std::string, std::size_t>, ChosenPlan> chosen_;
};

}  // namespace adacc::plan
