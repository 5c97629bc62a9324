// Where a run's measured costs come from (see step_costs_source.h).
#include "adacc/train/step_costs_source.h"

#include <cmath>
#include <filesystem>

#include "adacc/core/error.h"
#include "adacc/plan/profile_cache.h"
#include "adacc/plan/profile_costs.h"
#include "adacc/runtime/step_profile.h"

namespace adacc::train {

plan::StepCosts costs_for_run(const model::StepGraph& graph, const CostsRequest& request,
                              const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  const plan::ProfileKey key =
      plan::profile_key(request.config, request.batch, request.seq, request.threads);
  if (!request.profile_file.empty()) {
    say("costs from the profile " + request.profile_file);
    return plan::costs_for_graph(plan::load_profile(request.profile_file, key), graph);
  }
  std::filesystem::path cache;
  if (request.use_cache) {
    cache = plan::default_profile_path(key);
    std::error_code ec;
    if (std::filesystem::exists(cache, ec)) {
      try {
        plan::StepCosts costs = plan::costs_for_graph(plan::load_profile(cache, key), graph);
        say("costs from the cached profile " + cache.string());
        return costs;
      } catch (const Error& e) {
        // A cache entry is ours to replace: say why, and measure again.
        say("not using the cached profile (" + std::string(e.what()) + "); profiling again");
      }
    }
  }
  runtime::ProfileRequest r;
  r.config = request.config;
  r.batch = request.batch;
  r.seq = request.seq;
  r.threads = request.threads;
  r.budget = request.budget;
  r.seed = request.seed;
  r.progress = [&](std::string_view line) { say("profile: " + std::string(line)); };
  say("profiling one block of " + request.config.describe() + " at batch " +
      std::to_string(request.batch) + " x " + std::to_string(request.seq) + ", " +
      std::to_string(request.threads) + " threads");
  const runtime::StepProfile profile = runtime::profile_step(r);
  say("profiled in " + std::to_string(std::lround(profile.seconds)) + " s");
  if (request.use_cache) {
    try {
      plan::save_profile(cache, key, profile);
      say("profile cached in " + cache.string() + " (reuse elsewhere with --profile)");
    } catch (const Error& e) {
      say("could not cache the profile: " + std::string(e.what()));
    }
  }
  return plan::costs_for_graph(profile, graph);
}

}  // namespace adacc::train
