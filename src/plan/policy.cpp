// --policy and --budget (see policy.h).
#include "adacc/plan/policy.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "adacc/core/byte_size.h"
#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/plan_io.h"

namespace adacc::plan {

bool is_plan_file_name(std::string_view policy) {
  constexpr std::string_view kJson = ".json";
  return policy.find('/') != std::string_view::npos ||
         (policy.size() >= kJson.size() && policy.substr(policy.size() - kJson.size()) == kJson);
}

runtime::Plan plan_for_policy(const model::StepGraph& graph, std::string_view policy) {
  if (is_plan_file_name(policy)) return load_plan_file(graph, std::filesystem::path(policy));
  return baseline_plan(graph, policy);
}

Budget parse_budget(std::string_view text) {
  Budget b;
  if (!text.empty() && text.back() == '%') {
    const std::string number(text.substr(0, text.size() - 1));
    char* end = nullptr;
    const double pct = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !(pct > 0) ||
        !std::isfinite(pct)) {
      throw InvalidArgument("[budget] cannot read --budget '" + excerpt(text) +
                            "' as a percentage; write e.g. 30%");
    }
    if (pct > kMaxBudgetPercent) {
      throw InvalidArgument("[budget] --budget " + excerpt(text) + " is above " +
                            std::to_string(static_cast<long long>(kMaxBudgetPercent)) +
                            "%; 100% is what keeping every activation needs");
    }
    b.percent = true;
    b.share = pct / 100.0;
    return b;
  }
  try {
    b.bytes = parse_byte_size(text);
  } catch (const InvalidArgument& e) {
    std::string msg = e.what();
    if (const std::string tag = "[size] "; msg.rfind(tag, 0) == 0) msg.erase(0, tag.size());
    const bool unreadable = msg.rfind("cannot read", 0) == 0;
    throw InvalidArgument("[budget] --budget: " + msg +
                          (unreadable ? ", or a percentage like 30%" : ""));
  }
  return b;
}

std::size_t resolve_budget(const Budget& budget, const runtime::MemoryPrediction& none) {
  if (!budget.percent) return budget.bytes;
  const double share_bytes = budget.share * static_cast<double>(none.step_peak());
  std::size_t bytes = 0;
  if (!(share_bytes < 0x1p63) ||
      __builtin_add_overflow(none.fixed, static_cast<std::size_t>(std::llround(share_bytes)),
                             &bytes) ||
      bytes > kMaxByteSize) {
    throw InvalidArgument("[budget] --budget " + std::to_string(budget.share * 100) +
                          "% of this model's peak is more than 2^63 bytes; give a smaller share");
  }
  return bytes;
}

void check_fits(const runtime::MemoryPrediction& predicted, std::size_t budget,
                std::string_view policy) {
  if (predicted.total_peak <= budget) return;
  throw PlanInfeasible(
      "[plan] budget " + format_bytes(budget) + " is below what policy '" + std::string(policy) +
      "' needs: its peak is " + format_bytes(predicted.total_peak) + " (" +
      std::to_string(predicted.total_peak) + " bytes, at the " + predicted.where +
      "); the smallest feasible budget for it is " + std::to_string(predicted.total_peak) +
      " bytes; raise --budget or choose a policy that keeps less");
}

}  // namespace adacc::plan
