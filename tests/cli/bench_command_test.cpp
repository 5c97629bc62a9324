// `adacc bench` run as a user would: every (budget, policy) cell is reported, infeasible
// ones with the policy's smallest budget; the measured peak of every plan equals the
// memory model's prediction to the byte; the files (CSV, JSON, PNG) are written.
#include <nlohmann/json.hpp>

#include "cli/cli_fixture.h"

namespace {

// Profiles are cached under $XDG_CACHE_HOME: the test's own directory, not the user's.
class BenchCommand : public AdaccCli {
 protected:
  void SetUp() override { setenv("XDG_CACHE_HOME", (dir_ / "cache").c_str(), 1); }
};

TEST_F(BenchCommand, ReportsEveryCellWithPeaksPredictedToTheByte) {
  const fs::path out = dir_ / "bench";
  const CommandResult r = adacc(
      "bench --model L=2,C=32,H=2,V=64,T=32 --batch 2 --seq 16 --threads 1 --steps 2 "
      "--warmup 0 --budgets 100,40,5 --policies none,llmc,full,checkmate,adacc --out " +
      out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_TRUE(fs::exists(out / "bench.csv"));
  ASSERT_TRUE(fs::exists(out / "bench.png"));
  EXPECT_GT(fs::file_size(out / "bench.png"), 1000u);
  const auto doc = nlohmann::json::parse(slurp(out / "bench.json"));
  const auto& cells = doc.at("cells");
  ASSERT_EQ(cells.size(), 15u);  // 3 budgets x 5 policies, none skipped
  int ok = 0, infeasible = 0;
  for (const auto& c : cells) {
    const std::string where = c.at("policy").get<std::string>() + " at " +
                              std::to_string(c.at("percent").get<double>()) + "%";
    if (c.at("status") == "ok") {
      ++ok;
      EXPECT_EQ(c.at("measured_peak").get<std::size_t>(), c.at("predicted_peak").get<std::size_t>())
          << where;
      EXPECT_LE(c.at("measured_peak").get<std::size_t>(), c.at("budget_bytes").get<std::size_t>())
          << where;
      EXPECT_EQ(c.at("measured_ms_each").size(), 2u) << where;
    } else {
      ++infeasible;
      // The smallest feasible budget is above the cell's budget, and the policy is feasible
      // there by definition: its percent is above the cell's.
      EXPECT_GT(c.at("smallest_budget_bytes").get<std::size_t>(),
                c.at("budget_bytes").get<std::size_t>())
          << where;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(infeasible, 0);  // none cannot fit in 40% or 5%
  // none fits only at 100%; adacc fits wherever checkmate or full does.
  auto status = [&](const std::string& policy, double pct) {
    for (const auto& c : cells) {
      if (c.at("policy") == policy && c.at("percent").get<double>() == pct) return c.at("status");
    }
    return nlohmann::json("missing");
  };
  EXPECT_EQ(status("none", 100), "ok");
  EXPECT_EQ(status("none", 40), "infeasible");
  for (double pct : {100.0, 40.0, 5.0}) {
    if (status("full", pct) == "ok" || status("checkmate", pct) == "ok") {
      EXPECT_EQ(status("adacc", pct), "ok") << pct;
    }
  }
  EXPECT_NE(r.out.find("needs "), std::string::npos) << r.out;
}

TEST_F(BenchCommand, BadBudgetListIsAOneLineError) {
  const CommandResult r = adacc("bench --model L=1,C=16,H=2,V=64,T=32 --budgets 50,abc");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--budgets"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
