// The cost model: the predicted step time of a plan from measured costs (step_costs.h).
// A plan's step is the keep-everything step (every forward and backward once), plus the
// forward of every op the executor re-runs (runtime::recompute_counts), plus the encode
// and the decode of every compressed tensor (once each per step). Peak memory is the
// memory model's (runtime/memory_model.h). The MILP planner minimizes exactly this time.
#pragma once

#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

struct StepTimeBreakdown {
  double keep_all = 0;   // StepCosts::keep_all_seconds
  double recompute = 0;  // forwards re-run in the backward
  double encode = 0;
  double decode = 0;
  double total() const { return keep_all + recompute + encode + decode; }
};

// Throws InvalidArgument if `costs` does not fit the graph (op count) or the plan
// compresses a tensor with a codec that has no CodecCost for it; validate's exceptions
// for an invalid plan.
StepTimeBreakdown predict_step_time(const model::StepGraph& graph, const runtime::Plan& plan,
                                    const StepCosts& costs);

// predict_step_time(...).total().
double predict_step_seconds(const model::StepGraph& graph, const runtime::Plan& plan,
                            const StepCosts& costs);

// The CodecCost of `codec` on tensor `id`, or nullptr if none was measured.
const CodecCost* find_codec_cost(const StepCosts& costs, model::TensorId id,
                                 const std::string& codec);

}  // namespace adacc::plan
