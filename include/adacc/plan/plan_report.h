// What a user reads about a chosen plan: a one-screen summary (per tensor role, how many
// saved tensors are kept, compressed with which codec, or recomputed) and the explanation
// of a cost-based plan (per saved tensor, what each choice would save in bytes and cost in
// time, so the ranking behind the plan can be checked by hand).
#pragma once

#include <map>
#include <string>

#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// Per role: counts of saved activations by what the plan does with them. "compress" is
// split by codec name.
struct RoleCounts {
  int keep = 0;
  int recompute = 0;
  std::map<std::string, int> compress;  // codec -> count
};
std::map<model::TensorRole, RoleCounts> count_by_role(const model::StepGraph& graph,
                                                      const runtime::Plan& plan);

// "role        keep  recompute  compressed" lines, one per role that has saved tensors,
// e.g. "gelu_in        0         12  gelu-deriv-u8 x12".
std::string format_role_summary(const model::StepGraph& graph, const runtime::Plan& plan);

// One choice for one saved tensor, priced alone: bytes it frees between forward and
// backward compared with keeping, and the time it adds to a step (recompute: its
// producer's forward, as if its inputs were at hand; compress: encode + decode).
struct ChoicePrice {
  std::string choice;  // "recompute" or a codec name
  std::size_t bytes_saved = 0;
  double seconds = 0;
  double grad_error = 0;   // codecs only
  bool admissible = true;  // false: the codec's gradient error is above the tolerance
  // Bytes saved per millisecond added (infinite when the choice costs nothing).
  double bytes_per_ms() const;
};
std::vector<ChoicePrice> price_choices(const model::StepGraph& graph, const StepCosts& costs,
                                       model::TensorId tensor, double tolerance);

// `adacc plan --explain`: per saved activation (blocks with the same rows collapsed as in
// format_plan_table), the plan's choice and every choice's bytes saved per millisecond.
std::string format_explanation(const model::StepGraph& graph, const runtime::Plan& plan,
                               const StepCosts& costs, double tolerance);

}  // namespace adacc::plan
