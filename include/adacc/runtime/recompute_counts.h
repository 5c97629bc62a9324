// How many times the step executor re-runs each op's forward in the backward of one
// training step under a plan: the `recompute` instructions of the plan's lowered step
// program (step_program.h), which the executor runs, so the count is the executor's own.
// The cost model prices a plan with it.
#pragma once

#include <vector>

#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"

namespace adacc::runtime {

// Indexed by op index (graph.ops()): the op's re-runs in one training step under `plan`
// (0 for ops never re-run). Validates the plan first (validate's exceptions).
std::vector<int> recompute_counts(const model::StepGraph& graph, const Plan& plan);

}  // namespace adacc::runtime
