// From the command line's --policy and --budget to a Plan and a byte budget, with the
// memory model's check that the plan fits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// Whether a --policy value names a plan file: a path ending in ".json" or containing
// '/'. Anything else is a baseline's name, whatever files the working directory holds
// (a file named "full" does not shadow the baseline; write ./full to mean the file).
bool is_plan_file_name(std::string_view policy);

// A baseline's name (none, full, selective, llmc, every-K, compress, compress-CODEC) or a
// plan file (is_plan_file_name).
runtime::Plan plan_for_policy(const model::StepGraph& graph, std::string_view policy);

// --budget: bytes ("6GiB", "500000000") or a percentage ("30%") meaning the fixed part
// (parameters, gradients, optimizer state, the batch) plus that share of the rest of the
// peak of `none` (activations, their gradients, workspace) — so 100% is none's peak.
// Percentages above this are refused (as typos: 100% already keeps everything).
inline constexpr double kMaxBudgetPercent = 1e6;
// Byte sizes are parse_byte_size's (at most 2^63 - 1); errors name --budget.
struct Budget {
  bool percent = false;
  double share = 1.0;     // for a percentage, in (0, ...]
  std::size_t bytes = 0;  // otherwise
};
Budget parse_budget(std::string_view text);

// The budget in bytes for this graph: a percentage is resolved against the predicted
// peak of the keep-everything plan; InvalidArgument if that is beyond 2^63 - 1 bytes.
std::size_t resolve_budget(const Budget& budget, const runtime::MemoryPrediction& none);

// Throws PlanInfeasible if `predicted` does not fit in `budget`, naming the smallest
// feasible budget for this policy and where its peak happens.
void check_fits(const runtime::MemoryPrediction& predicted, std::size_t budget,
                std::string_view policy);

}  // namespace adacc::plan
