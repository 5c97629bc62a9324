// The MILP planner's model of one training step (see milp_planner.h): decision columns
// per saved activation, and the step's memory at every point of the executor's schedule
// and its predicted extra time as linear expressions over them. The planner turns the
// memory expressions into rows (<= the budget, or <= a peak column it minimizes).
#pragma once

#include <string>
#include <vector>

#include "adacc/model/step_graph.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/plan.h"
#include "linear_model.h"

namespace adacc::plan::detail {

struct Choice {
  int col = 0;                 // binary decision column
  runtime::Decision decision;  // what it means
};

struct MemoryPoint {
  std::string name;  // row name
  LinExpr bytes;     // the step's bytes at this point, without the fixed bytes
  int op = -1;       // the op whose forward, or whose backward stage, it is in
};

struct Formulation {
  LinearModel model;
  std::vector<std::vector<Choice>> choices;  // per TensorId: one is chosen (empty: none)
  std::vector<MemoryPoint> memory;
  LinExpr seconds;        // predicted step time over the keep-everything step
  LinExpr encoded_bytes;  // of every compressed tensor (the tie-break)
  // Per TensorId: the bytes a saved activation holds from its last forward use until the
  // backward needs it (its value if kept, its encoded form if compressed).
  std::vector<LinExpr> held;
};

// Throws InvalidArgument if the costs do not fit the graph.
Formulation formulate(const model::StepGraph& graph, const StepCosts& costs,
                      const MilpOptions& options);

}  // namespace adacc::plan::detail
