// export_milp writes the solved model: glpsol (GLPK) solves the exported MPS and LP files
// to CBC's objective, and the variable names say tensor and policy.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "adacc/core/rng.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/milp_planner.h"
#include "support/glpsol.h"
#include "support/small_graph.h"
#include "support/temp_dir.h"

namespace adacc::plan {
namespace {

// Random op times; codecs on each tensor named (GELU inputs: both derived codecs).
StepCosts synthetic_costs(const model::StepGraph& g, const std::vector<std::string>& with_codecs) {
  StepCosts costs;
  Rng rng(9);
  for (std::size_t o = 0; o < g.ops().size(); ++o) {
    costs.forward_seconds.push_back(1e-3 * (1 + static_cast<double>(rng.next_u64() % 100)));
    costs.backward_seconds.push_back(1e-3);
  }
  costs.codecs.resize(g.tensors().size());
  for (const std::string& name : with_codecs) {
    const auto t = static_cast<std::size_t>(g.find(name));
    costs.codecs[t].push_back({"int8-g64", 0, 2e-3, 3e-3, 0, 0});
    costs.codecs[t].push_back({"gelu-deriv-u8", 0, 1e-3, 1e-3, 0, 0});
    costs.codecs[t].push_back({"gelu-deriv-u4", 0, 1e-3, 2e-3, 0, 0});
  }
  return costs;
}

model::ModelConfig config(int layers, ops::AttentionKind attention) {
  model::ModelConfig c = model::parse_config("L=" + std::to_string(layers) + ",C=16,H=2,V=32,T=8");
  c.attention = attention;
  return c;
}

class MilpExport : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(MilpExport, GlpsolSolvesTheExportedModelToCbcsObjective) {
  const model::ModelConfig c = config(1, GetParam());
  const model::StepGraph g = model::build_gpt2_graph(c, 2, 8);
  const StepCosts costs = synthetic_costs(g, {"h0.fc.out"});
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
  const std::string mps = test::read_text(dir / "step.mps");
  for (const char* name : {"h0.fc.out__keep", "h0.fc.out__int8_g64", "h0.fc.out__gelu_deriv_u8",
                           "h0.fc.out__recompute", "h0.attn.out__recompute"}) {
    EXPECT_NE(mps.find(name), std::string::npos) << name;
  }
  EXPECT_NEAR(test::glpsol_objective("--freemps", dir / "step.mps", dir / "mps.txt"),
              r.model_objective, 1e-6 * r.model_objective);
  EXPECT_NEAR(test::glpsol_objective("--lp", dir / "step.lp", dir / "lp.txt"), r.model_objective,
              1e-6 * r.model_objective);
}

// Every row named once, also where two derived codecs forbid the same re-run (MPS readers
// reject repeated names; the LP writer would fall back to "cons0", "cons1", ...).
TEST_P(MilpExport, NamesAreDistinct) {
  const model::ModelConfig c = config(2, GetParam());
  const model::StepGraph g = model::build_gpt2_graph(c, 2, 8);
  const StepCosts costs = synthetic_costs(g, {"h0.fc.out", "h1.fc.out"});
  MilpOptions o;
  o.fixed = runtime::training_fixed_bytes(c, 2, 8);
  test::TempDir dir("milp_export");
  export_milp(g, costs, o, (dir / "step.mps").string(), MilpFormat::mps);
  export_milp(g, costs, o, (dir / "step.lp").string(), MilpFormat::lp);
  const std::string mps = test::read_text(dir / "step.mps");
  // ROWS: " L  name" per row, up to COLUMNS.
  const std::size_t from = mps.find("ROWS"), to = mps.find("COLUMNS");
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  std::istringstream lines(mps.substr(from, to - from));
  std::string line;
  std::getline(lines, line);
  std::set<std::string> names;
  std::size_t rows = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string kind, name;
    fields >> kind >> name;
    ++rows;
    EXPECT_TRUE(names.insert(name).second) << "row name repeated: " << name;
  }
  EXPECT_GT(rows, 100u);
  const std::string lp = test::read_text(dir / "step.lp");
  EXPECT_NE(lp.find("step_seconds:"), std::string::npos);  // not the default names
  EXPECT_EQ(lp.find("cons0"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Attention, MilpExport, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
