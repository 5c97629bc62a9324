// Evolution of the memory plan while training runs (see evolution.h).
#include "adacc/evolve/evolution.h"

#include <algorithm>
#include <cmath>

#include "adacc/core/error.h"
#include "adacc/plan/cost_model.h"
#include "adacc/plan/policy.h"
#include "adacc/runtime/memory_model.h"

namespace adacc::evolve {

Evolution::Evolution(const model::StepGraph& graph, const plan::StepCosts* costs,
                     EvolutionOptions options)
    : graph_(graph), options_(std::move(options)) {
  if (costs != nullptr) {
    costs_ = *costs;
    if (options_.monitor) {
      monitor_ = std::make_unique<CodecMonitor>(graph_, *costs_, options_.tolerance);
      monitor_->set_period(options_.monitor_period);
      monitor_->set_warmup(options_.monitor_warmup);
    }
  }
  if (!options_.budget_file.empty()) budget_file_.emplace(options_.budget_file);
}

plan::ChosenPlan Evolution::solve(std::size_t budget) const {
  plan::PolicyPlanner planner(graph_, options_.threads, options_.fixed, costs_ ? &*costs_ : nullptr,
                              options_.tolerance);
  planner.set_time_limit(options_.solver_seconds);
  planner.set_gap(options_.gap);
  return planner.choose(options_.policy, budget);
}

void Evolution::demote(model::TensorId tensor, const std::string& codec) {
  auto& list = costs_->codecs.at(static_cast<std::size_t>(tensor));
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const plan::CodecCost& c) { return c.codec == codec; }),
             list.end());
  demoted_.emplace_back(tensor, codec);
}

void Evolution::restore_demoted(
    const std::vector<std::pair<model::TensorId, std::string>>& demoted) {
  if (!costs_) return;
  for (const auto& [tensor, codec] : demoted) demote(tensor, codec);
}

void Evolution::observe_op_times(const std::vector<runtime::OpTiming>& timings) {
  measured_ = timings;
}

std::vector<PlanChange> Evolution::changes(const model::StepGraph& graph, const runtime::Plan& from,
                                           const runtime::Plan& to) {
  std::vector<PlanChange> out;
  for (std::size_t i = 0;
       i < graph.tensors().size() && i < from.decisions.size() && i < to.decisions.size(); ++i) {
    const std::string a = runtime::decision_text(from.decisions[i]);
    const std::string b = runtime::decision_text(to.decisions[i]);
    if (a != b && graph.tensors()[i].kind == model::TensorKind::activation) {
      out.push_back({graph.tensors()[i].name, a, b});
    }
  }
  return out;
}

std::optional<Replan> Evolution::at_boundary(std::int64_t step, const runtime::Plan& current,
                                             std::size_t budget, std::optional<Refusal>& refused) {
  refused.reset();
  std::optional<Replan> out;
  auto make = [&](std::string reason, std::size_t new_budget) {
    plan::ChosenPlan c = solve(new_budget);
    // The current plan stays when it still fits, uses no demoted codec and is predicted at
    // least as fast (a solver stopped by its time limit must not make the plan worse).
    if (costs_) {
      const runtime::MemoryPrediction m =
          runtime::predict_step_memory(graph_, current, options_.threads, options_.fixed);
      bool admissible = true;
      for (const auto& [tensor, codec] : demoted_) {
        const runtime::Decision& d = current.decisions.at(static_cast<std::size_t>(tensor));
        admissible = admissible && !(d.policy == runtime::Policy::compress && d.codec == codec);
      }
      if (admissible && m.total_peak <= new_budget) {
        const double now = plan::predict_step_seconds(graph_, current, *costs_);
        if (now <= c.predicted_seconds) {
          c.plan = current;
          c.memory = m;
          c.predicted_seconds = now;
        }
      }
    }
    Replan r;
    r.reason = std::move(reason);
    r.plan = c.plan;
    r.budget = new_budget;
    r.changes = changes(graph_, current, c.plan);
    r.predicted_seconds = c.predicted_seconds;
    r.predicted_peak = c.memory.total_peak;
    return r;
  };

  // A new budget first: it decides what the monitor's re-plan may use.
  if (budget_file_) {
    if (std::optional<BudgetRequest> req = budget_file_->poll()) {
      if (!req->budget) {
        refused = Refusal{req->text, "[evolve] " + budget_file_->path().string() + ": '" +
                                         req->text + "' is not a budget (" + req->error +
                                         "); training goes on within " + format_bytes(budget)};
      } else {
        const plan::PolicyPlanner bare(graph_, options_.threads, options_.fixed, nullptr,
                                       options_.tolerance);
        const std::size_t bytes = bare.resolve(*req->budget);
        try {
          out = make("budget", bytes);
        } catch (const PlanInfeasible& e) {
          refused = Refusal{req->text, std::string(e.what()) + "; training goes on within " +
                                           format_bytes(budget) + " under the current plan"};
        }
      }
    }
  }
  if (monitor_) {
    std::vector<Violation> found = monitor_->take_violations();
    if (!options_.demote) found.clear();
    std::vector<Violation> demote_now;
    std::set<std::pair<model::TensorId, std::string>> still;
    for (const Violation& v : found) {
      const auto key = std::make_pair(v.tensor, v.codec);
      if (v.grad_error > 2 * options_.tolerance || suspect_.count(key) != 0) {
        demote_now.push_back(v);
      } else {
        still.insert(key);
      }
    }
    // A tensor sampled within tolerance is no longer suspect; one not sampled stays so.
    if (!found.empty() || monitor_->sampling()) suspect_ = std::move(still);
    if (!demote_now.empty()) {
      for (const Violation& v : demote_now) demote(v.tensor, v.codec);
      const std::size_t b = out ? out->budget : budget;
      try {
        Replan r = make("tolerance", b);
        r.violations = demote_now;
        out = std::move(r);
      } catch (const PlanInfeasible& e) {
        // Nothing else fits this budget: the plan stays (the demotions stand for later
        // re-plans).
        refused = Refusal{
            "", "[evolve] step " + std::to_string(step) + ": " + std::to_string(demote_now.size()) +
                    " tensor(s) broke the tolerance but no other plan fits: " + e.what()};
      }
    }
  }
  // Cost drift: the op times of the sampled step against the costs.
  if (costs_ && measured_.size() == costs_->forward_seconds.size() && !out) {
    double measured = 0, expected = 0;
    for (std::size_t o = 0; o < measured_.size(); ++o) {
      measured += measured_[o].forward + measured_[o].backward;
      expected += costs_->forward_seconds[o] + costs_->backward_seconds[o];
    }
    const double ratio = expected > 0 ? measured / expected : 1;
    drifted_ = std::abs(ratio - 1) > options_.drift_threshold ? drifted_ + 1 : 0;
    if (drifted_ >= 2 && measured > 0) {
      for (std::size_t o = 0; o < measured_.size(); ++o) {
        costs_->forward_seconds[o] = measured_[o].forward;
        costs_->backward_seconds[o] = measured_[o].backward;
      }
      for (auto& per_tensor : costs_->codecs) {
        for (plan::CodecCost& c : per_tensor) {
          c.encode_seconds *= ratio;
          c.decode_seconds *= ratio;
        }
      }
      drifted_ = 0;
      try {
        out = make("drift", budget);
      } catch (const PlanInfeasible&) {
        // The budget is unchanged: the current plan still fits; keep it.
      }
    }
  }
  measured_.clear();
  if (out && out->changes.empty() && out->budget == budget) return std::nullopt;
  return out;
}

}  // namespace adacc::evolve
