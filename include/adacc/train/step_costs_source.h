// Where a run's measured costs come from (for the cost-based policies and for predicted
// step times): a profile file given with --profile, checked against the run (a profile of
// another shape, batch, thread count, attention kind, CPU or adacc version is refused,
// naming what differs); otherwise the cache file for this run's key when it holds a
// matching profile; otherwise a profile measured now (runtime/step_profile.h: one block,
// within the budget) and written to the cache for the next run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "adacc/core/allocator.h"
#include "adacc/model/config.h"
#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"

namespace adacc::train {

struct CostsRequest {
  model::ModelConfig config;  // attention kind included
  int batch = 0, seq = 0, threads = 1;
  std::string profile_file;                    // --profile; empty: the cache or a new profile
  std::size_t budget = Allocator::kUnlimited;  // profiling stays within it
  bool use_cache = true;
  std::uint64_t seed = 1337;
};

// The costs of every op and saved tensor of `graph` (the run's step graph). `progress`
// receives one line per stage ("profiling one block ...", "read profile from ...").
plan::StepCosts costs_for_run(const model::StepGraph& graph, const CostsRequest& request,
                              const std::function<void(const std::string&)>& progress);

}  // namespace adacc::train
