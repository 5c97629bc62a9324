// Evolution of the memory plan while training runs (docs/evolution.md): at each step
// boundary the trainer asks for a new plan, which comes when
//   - the budget file holds a new budget (reason "budget"): the policy's plan for it, or a
//     refusal naming the smallest feasible budget while the old plan and budget stay;
//   - the codec monitor found tensors whose estimated gradient error broke the tolerance
//     (reason "tolerance"): each such (tensor, codec) is demoted for the rest of the run
//     and the MILP re-solved without it, so the tensor gets the cheapest other choice the
//     budget allows. Hysteresis: a tensor is demoted when it breaks the tolerance in two
//     sampled steps in a row, or once by more than twice; a demotion is never undone, so
//     a plan cannot flap between two choices.
// The new plan swaps in at the boundary; weights, optimizer state, RNG and data order are
// not touched (the executor frees nothing between steps that a plan owns).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/evolve/budget_file.h"
#include "adacc/evolve/codec_monitor.h"
#include "adacc/model/step_graph.h"
#include "adacc/plan/policy_planner.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_executor.h"

namespace adacc::evolve {

struct PlanChange {
  std::string tensor, from, to;  // policies as plan files write them: keep, recompute, CODEC
};

struct Replan {
  std::string reason;  // "budget" or "tolerance"
  runtime::Plan plan;
  std::size_t budget = 0;
  std::vector<PlanChange> changes;
  double predicted_seconds = -1;  // -1: no costs
  std::size_t predicted_peak = 0;
  std::vector<Violation> violations;  // reason "tolerance": what broke it
};

// A budget request that cannot be met: the message (one line, naming the smallest
// feasible budget), the old plan and budget stay.
struct Refusal {
  std::string text;
  std::string message;
};

struct EvolutionOptions {
  std::string policy;  // as --policy
  double tolerance = 0;
  int threads = 1;
  std::array<std::size_t, kMemCategories> fixed{};
  bool monitor = true;  // sample codecs (only with costs)
  bool demote = true;   // and demote those that break the tolerance (false: only report)
  std::int64_t monitor_period = 50;
  std::int64_t monitor_warmup = 10;
  std::string budget_file;  // empty: none
  // Cost drift: when the measured op times of two sampled steps in a row differ from the
  // costs by more than this share (of the step's total), the costs are replaced by the
  // measured ones (codec times scaled alike) and the plan re-solved (reason "drift").
  double drift_threshold = 0.25;
  double solver_seconds = 10;  // CBC's limit per re-plan solve (MilpOptions)
  double gap = 1e-3;           // and its gap
};

class Evolution {
 public:
  // `costs` may be null (baseline policies: only budget changes). graph must outlive it.
  Evolution(const model::StepGraph& graph, const plan::StepCosts* costs, EvolutionOptions options);

  CodecMonitor* monitor() { return monitor_.get(); }

  // At the boundary after `step` (1-based) under `current` within `budget`: a new plan, or
  // nothing. A refused budget request is reported through `refused`.
  std::optional<Replan> at_boundary(std::int64_t step, const runtime::Plan& current,
                                    std::size_t budget, std::optional<Refusal>& refused);

  // The op times measured in a sampled step (runtime::StepExecutor::op_timings, indexed
  // like graph.ops()), compared with the costs at the next boundary.
  void observe_op_times(const std::vector<runtime::OpTiming>& timings);
  // The costs re-plans use now (the profile's, less demotions, after drift updates).
  const plan::StepCosts* costs() const { return costs_ ? &*costs_ : nullptr; }

  // (tensor, codec) pairs demoted so far, in order, and their restoration on resume.
  const std::vector<std::pair<model::TensorId, std::string>>& demoted() const { return demoted_; }
  void restore_demoted(const std::vector<std::pair<model::TensorId, std::string>>& demoted);

  static std::vector<PlanChange> changes(const model::StepGraph& graph, const runtime::Plan& from,
                                         const runtime::Plan& to);

 private:
  plan::ChosenPlan solve(std::size_t budget) const;
  void demote(model::TensorId tensor, const std::string& codec);

  const model::StepGraph& graph_;
  EvolutionOptions options_;
  std::optional<plan::StepCosts> costs_;  // the profile's, less what was demoted
  std::unique_ptr<CodecMonitor> monitor_;
  std::optional<BudgetFile> budget_file_;
  std::vector<std::pair<model::TensorId, std::string>> demoted_;
  std::set<std::pair<model::TensorId, std::string>> suspect_;  // broke it at the last sample
  std::vector<runtime::OpTiming> measured_;  // the last sampled step's, until the boundary
  int drifted_ = 0;                          // sampled steps in a row beyond the threshold
};

}  // namespace adacc::evolve
