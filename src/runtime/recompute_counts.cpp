// Re-runs per op, read off the lowered step program (see recompute_counts.h).
#include "adacc/runtime/recompute_counts.h"

#include <cstddef>

#include "adacc/runtime/step_program.h"

namespace adacc::runtime {

std::vector<int> recompute_counts(const model::StepGraph& graph, const Plan& plan) {
  std::vector<int> counts(graph.ops().size(), 0);
  for (const Instruction& ins : lower(graph, plan, model::Pass::train).instructions) {
    if (ins.kind == Instruction::Kind::recompute) ++counts[static_cast<std::size_t>(ins.op)];
  }
  return counts;
}

}  // namespace adacc::runtime
