// Fuzz target: plan files (plan::from_json on the tiny model's step graph). A plan it
// accepts must write back and read back to the same decisions, and print as a table.
#include <cstdint>
#include <string_view>

#include "adacc/model/gpt2.h"
#include "adacc/plan/plan_io.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  static const model::StepGraph graph = model::build_gpt2_graph(fuzz::tiny_config(), 2, 4);
  runtime::Plan plan;
  try {
    plan = plan::from_json(graph, std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  // Accepted: everything below must succeed (an exception here is a finding).
  const runtime::Plan back = plan::from_json(graph, plan::to_json(plan, graph));
  fuzz::require(back.planner == plan.planner && back.decisions.size() == plan.decisions.size());
  for (std::size_t i = 0; i < plan.decisions.size(); ++i) {
    fuzz::require(back.decisions[i].policy == plan.decisions[i].policy);
    fuzz::require(back.decisions[i].codec == plan.decisions[i].codec ||
                  plan.decisions[i].policy != runtime::Policy::compress);
  }
  fuzz::require(!plan::format_plan_table(graph, plan).empty());
  return 0;
}
