// Evolution in the trainer (train/trainer.h, evolve/evolution.h): a budget file's new
// budget gives, at the next step boundary, a plan that fits it (predicted and measured
// step peaks), a budget below the least is refused while training goes on; a swap changes
// no training state (keep/recompute plans swapped mid-run train bit-identically to none);
// a resumed run continues under the plan in force when it was saved; the codec monitor
// samples every compressed tensor of the plan.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "adacc/plan/plan_io.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/train/trainer.h"
#include "support/temp_dir.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

class PlanEvolution : public ::testing::Test {
 protected:
  PlanEvolution() {
    std::string text;
    for (int i = 0; i < 40; ++i) text += "In the beginning God created the heaven and the earth. ";
    data_ = dir_ / "data.txt";
    std::ofstream(data_, std::ios::binary) << text;
  }

  TrainOptions options(const std::string& policy) const {
    TrainOptions o;
    o.data = data_;
    o.model = "L=2,C=32,H=2,V=256,T=32";
    o.batch = 2;
    o.seq = 32;
    o.steps = 10;
    o.val_fraction = 0;
    o.threads = 1;
    o.policy = policy;
    o.profile = profile_;
    o.metrics = dir_ / "metrics.jsonl";
    o.time_limit = 1;
    return o;
  }

  // The metrics file's objects.
  std::vector<nlohmann::json> metrics() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  // Writes `text` to the budget file (replacing it).
  void set_budget_file(const std::string& text) const {
    std::ofstream(budget_file_, std::ios::trunc) << text << "\n";
  }

  test::TempDir tmp_{"plan_evolution"};
  fs::path dir_ = tmp_.path();
  fs::path data_;
  fs::path budget_file_ = dir_ / "budget.txt";
  fs::path profile_;  // empty: profiled by the first run, cached
};

TEST_F(PlanEvolution, ABudgetFileMovesThePlanAtTheNextBoundaryOrIsRefused) {
  TrainOptions o = options("checkmate");
  o.budget_file = budget_file_;
  std::vector<StepReport> steps;
  TrainCallbacks cb;
  cb.on_step = [&](const StepReport& r) { steps.push_back(r); };
  Trainer trainer(o, cb);
  // The user edits the file after step 3's boundary was passed: read at step 4's.
  trainer.add_step_boundary([&](Trainer&, std::int64_t step) {
    if (step == 3) set_budget_file("55%");
    if (step == 6) set_budget_file("1%");
  });
  const TrainResult r = trainer.run();
  EXPECT_EQ(r.steps, 10);  // training went on after the refusal
  std::size_t budget = 0, predicted = 0;
  int replans = 0, refusals = 0;
  for (const nlohmann::json& j : metrics()) {
    if (j.value("event", "") == "replan") {
      ++replans;
      EXPECT_EQ(j["step"], 4);
      EXPECT_EQ(j["reason"], "budget");
      EXPECT_FALSE(j["changes"].empty());
      budget = j["budget"];
      predicted = j["predicted_peak"];
    }
    if (j.value("event", "") == "refused") {
      ++refusals;
      EXPECT_EQ(j["step"], 7);
      EXPECT_NE(j["message"].get<std::string>().find("smallest feasible budget"),
                std::string::npos);
    }
  }
  EXPECT_EQ(replans, 1);
  EXPECT_EQ(refusals, 1);
  ASSERT_GT(budget, 0u);
  EXPECT_LE(predicted, budget);
  EXPECT_EQ(trainer.allocator().budget(), budget);
  // Steps 5..10 run under the new plan: each step's measured peak is the prediction.
  ASSERT_EQ(steps.size(), 10u);
  for (std::size_t k = 4; k < steps.size(); ++k) {
    EXPECT_EQ(steps[k].step_peak_bytes, predicted) << "step " << steps[k].step;
  }
  EXPECT_GT(steps[0].step_peak_bytes, budget);  // before: the wider plan
  EXPECT_EQ(runtime::predict_step_memory(
                trainer.graph(), trainer.plan(), 1,
                runtime::training_fixed_bytes(model::parse_config(o.model), o.batch, o.seq))
                .total_peak,
            predicted);
}

TEST_F(PlanEvolution, ASwapChangesNoTrainingState) {
  // checkmate plans only keep and recompute: a run whose plan is swapped at step 4 trains
  // bit-identically to none.
  std::vector<float> none, swapped;
  TrainCallbacks a;
  a.on_step = [&](const StepReport& r) { none.push_back(r.loss); };
  TrainOptions base = options("none");
  base.metrics.clear();
  train(base, a);
  TrainOptions o = options("checkmate");
  o.budget_file = budget_file_;
  TrainCallbacks b;
  b.on_step = [&](const StepReport& r) { swapped.push_back(r.loss); };
  Trainer trainer(o, b);
  const runtime::Plan before = trainer.plan();
  trainer.add_step_boundary([&](Trainer&, std::int64_t step) {
    if (step == 3) set_budget_file("50%");
  });
  trainer.run();
  bool recomputes = false;
  for (const runtime::Decision& d : trainer.plan().decisions) {
    recomputes = recomputes || d.policy == runtime::Policy::recompute;
  }
  EXPECT_TRUE(recomputes) << "the swap must have happened";
  ASSERT_EQ(none.size(), swapped.size());
  for (std::size_t k = 0; k < none.size(); ++k) EXPECT_EQ(none[k], swapped[k]) << "step " << k + 1;
}

TEST_F(PlanEvolution, AResumedRunContinuesUnderThePlanInForce) {
  TrainOptions o = options("checkmate");
  o.budget_file = budget_file_;
  o.out_dir = dir_ / "run";
  o.stop_after = 6;
  runtime::Plan in_force;
  {
    Trainer trainer(o);
    trainer.add_step_boundary([&](Trainer&, std::int64_t step) {
      if (step == 2) set_budget_file("50%");
    });
    trainer.run();
    in_force = trainer.plan();
  }
  // The whole run without a stop, for the losses.
  std::vector<float> whole, resumed;
  fs::remove(budget_file_);
  {
    TrainOptions w = options("checkmate");
    w.budget_file = dir_ / "budget2.txt";
    w.metrics.clear();
    TrainCallbacks cb;
    cb.on_step = [&](const StepReport& r) { whole.push_back(r.loss); };
    Trainer trainer(w, cb);
    trainer.add_step_boundary([&](Trainer&, std::int64_t step) {
      if (step == 2) std::ofstream(dir_ / "budget2.txt") << "50%\n";
    });
    trainer.run();
  }
  TrainOptions r = options("checkmate");
  r.resume = dir_ / "run";
  r.metrics.clear();
  TrainCallbacks cb;
  std::vector<std::string> messages;
  cb.on_step = [&](const StepReport& s) { resumed.push_back(s.loss); };
  cb.on_message = [&](const std::string& m) { messages.push_back(m); };
  Trainer trainer(r, cb);
  EXPECT_EQ(plan::to_json(trainer.plan(), trainer.graph()),
            plan::to_json(in_force, trainer.graph()));
  trainer.run();
  ASSERT_EQ(resumed.size(), 4u);
  for (std::size_t k = 0; k < resumed.size(); ++k) EXPECT_EQ(resumed[k], whole[6 + k]);
  bool said = false;
  for (const std::string& m : messages)
    said = said || m.find("checkpoint's plan") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(PlanEvolution, TheMonitorSamplesEveryCompressedTensor) {
  TrainOptions o = options("adacc");
  o.budget = "45%";
  o.tolerance = 1;  // no demotion: the plan stays, so every sample list is the plan's
  o.monitor_every = 3;
  o.steps = 13;
  Trainer trainer(o);
  trainer.run();
  std::size_t compressed = 0;
  for (const runtime::Decision& d : trainer.plan().decisions) {
    compressed += d.policy == runtime::Policy::compress ? 1 : 0;
  }
  ASSERT_GT(compressed, 0u);
  std::vector<int> sampled_steps;
  for (const nlohmann::json& j : metrics()) {
    if (j.value("event", "") != "monitor") continue;
    sampled_steps.push_back(j["step"]);
    EXPECT_EQ(j["samples"].size(), compressed) << j.dump();
    for (const nlohmann::json& s : j["samples"]) {
      EXPECT_GT(s["tensor_error"].get<double>(), 0);
      EXPECT_LT(s["grad_error"].get<double>(), 1);
    }
  }
  // The first 10 steps, then every 3rd (12; 13 is the last step: no boundary after it).
  EXPECT_EQ(sampled_steps, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12}));
}

}  // namespace
}  // namespace adacc::train
