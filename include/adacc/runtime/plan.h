// The Plan that the step executor runs under (planners that make plans live in plan/).
// A Plan assigns every activation of a step graph a memory policy:
//   keep       — retained from its last forward use to its last backward use;
//   compress   — encoded with a named codec after its last forward use, the original
//                freed, and decoded into a workspace buffer when the backward needs it;
//   recompute  — freed after its last forward use and rebuilt, when the backward needs
//                it, by re-running its producer (recursively, from available tensors).
// Activations that no backward op saves are never retained whatever the plan says
// (their default is recompute: rebuilt only if a recomputation needs them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/model/step_graph.h"

namespace adacc::runtime {

struct StepAnalysis;  // runtime/step_analysis.h

enum class Policy : std::uint8_t { keep, compress, recompute };

std::string_view policy_name(Policy policy);

struct Decision {
  Policy policy = Policy::keep;
  std::string codec;  // for Policy::compress: a codec name (compress/codec.h)
};

// A decision as plan tables and logs show it: "keep", "recompute", or the codec's name.
std::string decision_text(const Decision& decision);

struct Plan {
  std::string planner;              // which planner made it ("none", "full", file name...)
  std::vector<Decision> decisions;  // indexed by TensorId; entries of non-activations unused
};

// Keep every saved activation, recompute (i.e. free) the rest: adacc's behaviour without
// any memory optimization.
Plan keep_all_plan(const model::StepGraph& graph);

// Whether a backward op reads this tensor (it is in some op's saved list). One pass over
// the ops per call: to ask about every tensor, use saved_tensors.
bool is_saved(const model::StepGraph& graph, model::TensorId id);

// is_saved for every tensor at once, indexed by TensorId (one pass over the ops).
std::vector<bool> saved_tensors(const model::StepGraph& graph);

// Whether the tensor may be recomputed: its producer can be re-run in the backward
// (the fused lm-head + loss cannot: it accumulates dwte in its forward).
bool is_recomputable(const model::StepGraph& graph, model::TensorId id);

// Throws PlanInfeasible / InvalidArgument (naming the tensor) unless: the plan has one
// decision per tensor; policies other than keep apply to activations only; compress names
// a known codec meant for the tensor's role (Codec::applies_to), and a codec that stores a
// derived form (the GELU derivative) is read back only by ops that accept it; recompute
// is allowed for the tensor; and every recompute can be carried out from kept or
// compressed tensors, parameters and inputs (no cycle, nothing unreachable, no
// recomputation from a stored derived form). Malformed plans (wrong size, a non-keep policy on a
// parameter or input, an unknown codec, recompute of a saved tensor that is not recomputable) are
// InvalidArgument; a recompute that cannot be carried out is PlanInfeasible. An activation that no
// backward op saves is never retained, so a recompute that needs it rebuilds it too, whatever its
// policy.
void validate(const model::StepGraph& graph, const Plan& plan);
// The same, with the graph's analysis at hand (runtime/step_analysis.h).
void validate(const model::StepGraph& graph, const StepAnalysis& analysis, const Plan& plan);

}  // namespace adacc::runtime
