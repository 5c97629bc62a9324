// Every --policy through one door (see policy_planner.h).
#include "adacc/plan/policy_planner.h"

#include <algorithm>
#include <optional>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/plan/cost_model.h"
#include "adacc/plan/milp_planner.h"

namespace adacc::plan {

namespace {

std::string bytes_text(std::size_t bytes) {
  return format_bytes(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

}  // namespace

StepCosts prune_dominated_codecs(const StepCosts& costs, double tolerance) {
  StepCosts out = costs;
  for (std::vector<CodecCost>& list : out.codecs) {
    std::vector<CodecCost> kept;
    for (std::size_t a = 0; a < list.size(); ++a) {
      const CodecCost& x = list[a];
      const double x_time = x.encode_seconds + x.decode_seconds;
      const auto x_form = compress::codec_by_name(x.codec).decodes_to();
      bool dominated = x.grad_error > tolerance;  // never admissible: drop it too
      for (std::size_t b = 0; b < list.size() && !dominated; ++b) {
        const CodecCost& y = list[b];
        if (b == a || y.grad_error > tolerance) continue;
        if (compress::codec_by_name(y.codec).decodes_to() != x_form) continue;
        const double y_time = y.encode_seconds + y.decode_seconds;
        const bool no_worse = y.encoded_bytes <= x.encoded_bytes && y_time <= x_time;
        const bool better = y.encoded_bytes < x.encoded_bytes || y_time < x_time;
        // Equal in both: the first one listed stays.
        dominated = no_worse && (better || b < a);
      }
      if (!dominated) kept.push_back(x);
    }
    list = std::move(kept);
  }
  return out;
}

runtime::Plan compress_kept_tensors(const model::StepGraph& graph, const runtime::Plan& plan,
                                    const StepCosts& costs, double tolerance) {
  runtime::Plan out = plan;
  const std::vector<bool> saved = runtime::saved_tensors(graph);
  for (std::size_t i = 0; i < out.decisions.size() && i < costs.codecs.size(); ++i) {
    if (!saved[i] || out.decisions[i].policy != runtime::Policy::keep) continue;
    const CodecCost* fewest = nullptr;
    for (const CodecCost& c : costs.codecs[i]) {
      const compress::Codec& codec = compress::codec_by_name(c.codec);
      if (c.grad_error > tolerance || codec.decodes_to() != model::SavedForm::value ||
          !codec.applies_to(graph.tensors()[i].role)) {
        continue;
      }
      if (fewest == nullptr || c.encoded_bytes < fewest->encoded_bytes) fewest = &c;
    }
    if (fewest == nullptr) continue;
    runtime::Plan trial = out;
    trial.decisions[i] = {runtime::Policy::compress, fewest->codec};
    try {
      runtime::validate(graph, trial);
      out = std::move(trial);
    } catch (const Error&) {
      // not a valid choice for this tensor under this plan: it stays kept
    }
  }
  return out;
}

bool is_cost_based_policy(std::string_view policy) {
  return policy == "adacc" || policy == "checkmate";
}

std::vector<std::string> compared_policies() {
  return {"none", "selective", "llmc", "full", "every-2", "compress", "checkmate", "adacc"};
}

PolicyPlanner::PolicyPlanner(const model::StepGraph& graph, int threads,
                             const std::array<std::size_t, kMemCategories>& fixed,
                             const StepCosts* costs, double tolerance)
    : graph_(graph),
      threads_(threads),
      fixed_(fixed),
      costs_(costs),
      tolerance_(tolerance),
      none_(runtime::predict_step_memory(graph, runtime::keep_all_plan(graph), threads, fixed)) {
  if (costs != nullptr) pruned_ = prune_dominated_codecs(*costs, tolerance);
  if (!(tolerance >= 0)) {
    throw InvalidArgument("[plan] --tolerance must be 0 or more (a relative gradient error), got " +
                          std::to_string(tolerance));
  }
}

double PolicyPlanner::predict_seconds(const runtime::Plan& plan) const {
  if (costs_ == nullptr) throw InvalidArgument("[plan] no costs to predict a step time from");
  return predict_step_seconds(graph_, plan, *costs_);
}

std::vector<std::string> PolicyPlanner::contained_baselines(std::string_view policy) const {
  std::vector<std::string> out;
  for (const std::string& name : compared_policies()) {
    if (is_cost_based_policy(name)) continue;
    const runtime::Plan plan = plan_for_policy(graph_, name);
    bool inside = true;
    for (std::size_t i = 0; i < plan.decisions.size() && inside; ++i) {
      const runtime::Decision& d = plan.decisions[i];
      if (d.policy != runtime::Policy::compress) continue;
      if (policy == "checkmate") {
        inside = false;
      } else {
        const CodecCost* c = find_codec_cost(*costs_, static_cast<model::TensorId>(i), d.codec);
        inside = c != nullptr && c->grad_error <= tolerance_;
      }
    }
    if (inside) out.push_back(name);
  }
  return out;
}

ChosenPlan PolicyPlanner::choose_cost_based(std::string_view policy, std::size_t budget) const {
  if (costs_ == nullptr) {
    throw InvalidArgument("[plan] policy '" + std::string(policy) +
                          "' chooses from measured costs; none were given");
  }
  const auto memo = chosen_.find(std::make_pair(std::string(policy), budget));
  if (memo != chosen_.end()) return memo->second;
  std::optional<ChosenPlan> best;
  auto consider = [&](ChosenPlan c) {
    if (!best || c.predicted_seconds < best->predicted_seconds * (1 - 1e-12)) best = std::move(c);
  };
  // Below the smallest feasible budget (known once asked for) there is nothing to solve.
  const auto known = least_.find(policy);
  if (known == least_.end() || budget >= known->second.peak) {
    try {
      MilpResult r = plan_milp(graph_, pruned_, milp_options(policy, budget));
      ChosenPlan c;
      c.plan = std::move(r.plan);
      c.memory = r.memory;
      c.predicted_seconds = predict_seconds(c.plan);
      c.source = "MILP";
      c.solved = true;
      c.solve_seconds = r.solve_seconds;
      c.gap = r.gap;
      c.proven_optimal = r.proven_optimal;
      c.method = r.method;
      c.model_objective = r.model_objective;
      consider(std::move(c));
    } catch (const PlanInfeasible&) {
      // Proven infeasible, or nothing found in the time limit: the contained plans decide.
    }
    // A contained plan, if it fits.
    auto candidate = [&](std::string source, runtime::Plan plan) {
      ChosenPlan c;
      c.plan = std::move(plan);
      c.memory = runtime::predict_step_memory(graph_, c.plan, threads_, fixed_);
      if (c.memory.total_peak > budget) return;
      c.predicted_seconds = predict_seconds(c.plan);
      c.source = std::move(source);
      consider(std::move(c));
    };
    for (const std::string& name : contained_baselines(policy)) {
      candidate("baseline " + name, plan_for_policy(graph_, name));
    }
    if (policy == "adacc") {
      try {
        ChosenPlan c = choose_cost_based("checkmate", budget);
        c.source = c.source == "MILP" ? "checkmate's MILP" : c.source;
        consider(std::move(c));
      } catch (const PlanInfeasible&) {
      }
      // Compressed variants: what lets adacc below the others' smallest budgets even when
      // its MILP finds nothing there in its time limit.
      auto compressed = [&](const std::string& name, const runtime::Plan& base) {
        candidate(name + ", kept tensors compressed",
                  compress_kept_tensors(graph_, base, pruned_, tolerance_));
      };
      for (const std::string& name : contained_baselines(policy)) {
        compressed("baseline " + name, plan_for_policy(graph_, name));
      }
      if (!best) compressed("checkmate's least-memory plan", least_plan("checkmate").plan);
      if (!best) compressed("adacc's least-memory plan", least_plan("adacc").plan);
    }
    // The least-memory plan itself: the smallest feasible budget names its peak, so every
    // budget from there has a plan even when the MILP finds none in its time limit.
    if (!best) {
      const LeastPeakPlan& least = least_plan(policy);
      if (budget >= least.peak) candidate(std::string(policy) + "'s least-memory plan", least.plan);
    }
  }
  if (!best) throw_infeasible(policy, budget, smallest_budget(policy));
  best->policy = std::string(policy);
  best->plan.planner = std::string(policy);
  chosen_.emplace(std::make_pair(std::string(policy), budget), *best);
  return *best;
}

ChosenPlan PolicyPlanner::choose(std::string_view policy, std::size_t budget) const {
  if (is_cost_based_policy(policy)) return choose_cost_based(policy, budget);
  ChosenPlan out;
  out.policy = std::string(policy);
  out.plan = plan_for_policy(graph_, policy);
  out.memory = runtime::predict_step_memory(graph_, out.plan, threads_, fixed_);
  if (out.memory.total_peak > budget) throw_infeasible(policy, budget, out.memory.total_peak);
  if (costs_ != nullptr) out.predicted_seconds = predict_seconds(out.plan);
  return out;
}

std::size_t PolicyPlanner::smallest_budget(std::string_view policy) const {
  return least_plan(policy).peak;
}

MilpOptions PolicyPlanner::milp_options(std::string_view policy, std::size_t budget) const {
  MilpOptions options;
  options.budget = budget;
  options.fixed = fixed_;
  options.threads = threads_;
  options.tolerance = tolerance_;
  options.codecs = policy == "adacc";
  options.time_limit_seconds = time_limit_seconds_;
  options.by_blocks = !whole_step_;
  options.gap = gap_;
  return options;
}

void PolicyPlanner::export_milp(std::string_view policy, std::size_t budget,
                                const std::string& path, MilpFormat format) const {
  if (!is_cost_based_policy(policy)) {
    throw InvalidArgument("[plan] only adacc and checkmate solve a MILP; policy '" +
                          std::string(policy) + "' solves none");
  }
  if (costs_ == nullptr) {
    throw InvalidArgument("[plan] policy '" + std::string(policy) +
                          "' chooses from measured costs; none were given");
  }
  plan::export_milp(graph_, pruned_, milp_options(policy, budget), path, format);
}

const LeastPeakPlan& PolicyPlanner::least_plan(std::string_view policy) const {
  const auto cached = least_.find(policy);
  if (cached != least_.end()) return cached->second;
  return least_.emplace(std::string(policy), find_least_plan(policy)).first->second;
}

LeastPeakPlan PolicyPlanner::find_least_plan(std::string_view policy) const {
  auto peak_of = [&](const runtime::Plan& plan) {
    return runtime::predict_step_memory(graph_, plan, threads_, fixed_).total_peak;
  };
  if (!is_cost_based_policy(policy)) {
    LeastPeakPlan l;
    l.plan = plan_for_policy(graph_, policy);
    l.peak = peak_of(l.plan);
    return l;
  }
  if (costs_ == nullptr) {
    throw InvalidArgument("[plan] policy '" + std::string(policy) +
                          "' chooses from measured costs; none were given");
  }
  // The MILP's least peak (the best it found in its time limit), or a contained plan's.
  std::optional<LeastPeakPlan> best;
  auto consider = [&](runtime::Plan plan) {
    const std::size_t peak = peak_of(plan);
    if (!best || peak < best->peak) best = LeastPeakPlan{std::move(plan), peak};
  };
  try {
    best = least_peak_plan(graph_, pruned_, milp_options(policy, Allocator::kUnlimited));
  } catch (const PlanInfeasible&) {
  }
  std::vector<runtime::Plan> contained;
  for (const std::string& name : contained_baselines(policy)) {
    contained.push_back(plan_for_policy(graph_, name));
  }
  if (policy == "adacc") contained.push_back(least_plan("checkmate").plan);
  for (const runtime::Plan& plan : contained) {
    consider(plan);
    if (policy == "adacc") consider(compress_kept_tensors(graph_, plan, pruned_, tolerance_));
  }
  if (best && policy == "adacc") {
    consider(compress_kept_tensors(graph_, best->plan, pruned_, tolerance_));
  }
  if (!best) throw PlanInfeasible("[plan] no plan of policy '" + std::string(policy) + "' found");
  return *best;
}

void PolicyPlanner::throw_infeasible(std::string_view policy, std::size_t budget,
                                     std::size_t smallest) const {
  std::string others;
  for (const std::string& p : compared_policies()) {
    if (p == policy || (costs_ == nullptr && is_cost_based_policy(p))) continue;
    if (!others.empty()) others += ", ";
    others += p + " " + format_bytes(smallest_budget(p));
  }
  throw PlanInfeasible("[plan] budget " + bytes_text(budget) + " is below what policy '" +
                       std::string(policy) + "' can reach: its smallest feasible budget is " +
                       bytes_text(smallest) + "; smallest feasible budgets of the others: " +
                       others + "; raise --budget or choose another policy");
}

}  // namespace adacc::plan
