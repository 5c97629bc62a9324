// check_fits at its edge: a budget equal to the predicted peak fits (the allocator grants
// a request that fills its budget exactly), a byte less does not; the smallest feasible
// budget the error names is the one that fits.
#include <gtest/gtest.h>

#include <string>

#include "adacc/core/error.h"
#include "adacc/model/config.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/plan/policy.h"
#include "adacc/runtime/memory_model.h"

namespace adacc::plan {
namespace {

TEST(BudgetFit, ThePredictedPeakIsTheSmallestBudgetThatFits) {
  const model::ModelConfig cfg = model::parse_config("L=2,C=16,H=2,V=50,T=16");
  const model::StepGraph graph = model::build_gpt2_graph(cfg, 2, 8);
  for (const char* policy : {"none", "full", "selective"}) {
    const runtime::MemoryPrediction p = runtime::predict_step_memory(
        graph, baseline_plan(graph, policy), 2, runtime::training_fixed_bytes(cfg, 2, 8));
    ASSERT_GT(p.total_peak, 0u);
    EXPECT_NO_THROW(check_fits(p, p.total_peak, policy)) << policy;
    EXPECT_NO_THROW(check_fits(p, p.total_peak + 1, policy)) << policy;
    try {
      check_fits(p, p.total_peak - 1, policy);
      ADD_FAILURE() << policy << ": a budget one byte below the peak was accepted";
    } catch (const PlanInfeasible& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(p.total_peak) + " bytes"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace adacc::plan
