// export_milp writes the solved model: glpsol (GLPK) solves the exported MPS and LP files
// to CBC's objective, and the variable names say tensor and policy.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "adacc/core/rng.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/milp_planner.h"
#include "support/small_graph.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// glpsol's objective from its -o report ("Objective:  obj = 1.23e-02 (MINimum)").
double glpsol_objective(const std::string& flag, const std::filesystem::path& model,
                        const std::filesystem::path& report) {
  const std::string cmd = "glpsol " + flag + " '" + model.string() + "' -o '" + report.string() +
                          "' > '" + report.string() + ".log' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << read(report.string() + ".log");
  const std::string text = read(report);
  const std::size_t at = text.find("Objective:");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no objective in glpsol's report:\n" << text;
    return 0;
  }
  const std::size_t eq = text.find('=', at);
  return std::stod(text.substr(eq + 1));
}

class MilpExport : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(MilpExport, GlpsolSolvesTheExportedModelToCbcsObjective) {
  ASSERT_EQ(std::system("command -v glpsol > /dev/null 2>&1"), 0)
      << "glpsol not found on PATH: install glpk-utils (tools/setup.sh does)";
  model::ModelConfig c = model::parse_config("L=1,C=16,H=2,V=32,T=8");
  c.attention = GetParam();
  Allocator alloc;
  model::Gpt2 gpt(c, alloc);
  const model::StepGraph g = gpt.build_graph(2, 8);
  StepCosts costs;
  Rng rng(9);
  for (std::size_t o = 0; o < g.ops().size(); ++o) {
    costs.forward_seconds.push_back(1e-3 * (1 + static_cast<double>(rng.next_u64() % 100)));
    costs.backward_seconds.push_back(1e-3);
  }
  costs.codecs.resize(g.tensors().size());
  const auto fc = static_cast<std::size_t>(g.find("h0.fc.out"));
  costs.codecs[fc].push_back({"int8-g64", 0, 2e-3, 3e-3, 0, 0});
  costs.codecs[fc].push_back({"gelu-deriv-u8", 0, 1e-3, 1e-3, 0, 0});
  MilpOptions o;
  o.fixed = runtime::training_fixed_bytes(c, 2, 8);
  o.gap = 0;
  const std::size_t least = smallest_feasible_budget(g, costs, o);
  const std::size_t none =
      runtime::predict_step_memory(g, runtime::keep_all_plan(g), 1, o.fixed).total_peak;
  o.budget = least + (none - least) / 3;
  const MilpResult r = plan_milp(g, costs, o);
  ASSERT_GT(r.objective, 0);  // the budget binds

  test::TempDir dir("milp_export");
  export_milp(g, costs, o, (dir / "step.mps").string(), MilpFormat::mps);
  export_milp(g, costs, o, (dir / "step.lp").string(), MilpFormat::lp);
  const std::string mps = read(dir / "step.mps");
  for (const char* name : {"h0.fc.out__keep", "h0.fc.out__int8_g64", "h0.fc.out__gelu_deriv_u8",
                           "h0.fc.out__recompute", "h0.attn.out__recompute"}) {
    EXPECT_NE(mps.find(name), std::string::npos) << name;
  }
  EXPECT_NEAR(glpsol_objective("--freemps", dir / "step.mps", dir / "mps.txt"), r.model_objective,
              1e-6 * r.model_objective);
  EXPECT_NEAR(glpsol_objective("--lp", dir / "step.lp", dir / "lp.txt"), r.model_objective,
              1e-6 * r.model_objective);
}

INSTANTIATE_TEST_SUITE_P(Attention, MilpExport, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
