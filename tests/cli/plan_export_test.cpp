// `adacc plan --export-mps/--export-lp` as a user runs it: the files hold the model that was
// solved (glpsol solves them to the objective `adacc plan` printed, within its proven gap;
// at depths otherwise planned by blocks the whole step is solved) with variables named by
// tensor and policy; other policies are refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "cli/cli_fixture.h"
#include "support/glpsol.h"

namespace {

// Op times of about a millisecond: glpsol's objective tolerance is 1e-7 absolute.
constexpr const char* kModel = " --model L=1,C=128,H=4,V=256,T=128 --batch 4 --seq 128 --threads 1";

struct Solved {
  double objective = -1;  // the solver's objective, seconds
  double gap = -1;        // proven, of the predicted step
  double step = -1;       // predicted step, seconds
};

// From "solved by CBC (the whole step) in 0.99 s to objective 0.000146 (time over none
// ...; predicted step 9.92 ms), proven gap 1e-09% (optimal)".
Solved parse_solved(const std::string& out) {
  Solved s;
  const std::size_t at = out.find("solved by CBC (the whole step)");
  if (at == std::string::npos) return s;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  const std::size_t o = line.find("to objective "), p = line.find("predicted step "),
                    g = line.find("proven gap ");
  if (o == std::string::npos || p == std::string::npos || g == std::string::npos) return s;
  s.objective = std::stod(line.substr(o + 13));
  s.step = std::stod(line.substr(p + 15)) * 1e-3;
  s.gap = std::stod(line.substr(g + 11)) / 100;
  return s;
}

class PlanExport : public AdaccCli {};

TEST_F(PlanExport, GlpsolSolvesTheExportedFilesToThePrintedObjective) {
  const std::string profile = (dir_ / "profile.json").string();
  const CommandResult p = adacc(std::string("profile") + kModel + " --out " + profile);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  for (const char* policy : {"adacc", "checkmate"}) {
    SCOPED_TRACE(policy);
    const std::string mps = (dir_ / "step.mps").string(), lp = (dir_ / "step.lp").string();
    std::string args = std::string("plan") + kModel + " --profile " + profile + " --policy ";
    args += policy;
    args += " --budget 75% --gap 0 --export-mps " + mps;
    args += " --export-lp " + lp;
    const CommandResult r = adacc(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("MILP written to " + mps), std::string::npos) << r.out;
    const Solved s = parse_solved(r.out);
    ASSERT_GT(s.objective, 0) << "no objective printed (or the budget binds nothing):\n" << r.out;
    ASSERT_GE(s.gap, 0) << r.out;
    // The exported optimum lies within CBC's proven gap below its objective (gap 0 unless
    // CBC's time limit stopped it), and cannot beat what CBC found... by more than glpsol's
    // tolerance.
    const double slack = 2e-7 + 1e-6 * s.objective;
    for (const auto& [flag, file] : {std::pair{"--freemps", mps}, std::pair{"--lp", lp}}) {
      SCOPED_TRACE(flag);
      const double glpk = adacc::test::glpsol_objective(flag, file, dir_ / "report.txt");
      EXPECT_LE(glpk, s.objective + slack);
      EXPECT_GE(glpk, s.objective - s.gap * s.step - slack);
    }
    const std::string text = slurp(mps);
    EXPECT_NE(text.find("h0.fc.out__recompute"), std::string::npos);
    EXPECT_NE(text.find("h0.fc.out__keep"), std::string::npos);
    const bool has_codec_column = text.find("h0.fc.out__gelu_deriv_u8") != std::string::npos ||
                                  text.find("h0.fc.out__bf16") != std::string::npos ||
                                  text.find("h0.fc.out__int8") != std::string::npos;
    EXPECT_EQ(has_codec_column, std::string(policy) == "adacc");
  }
}

// At a depth planned by blocks, an export makes `adacc plan` solve the whole step's model
// (the file's) instead, and says so.
TEST_F(PlanExport, AtADepthPlannedByBlocksTheExportedWholeStepIsSolved) {
  const std::string model = " --model L=13,C=16,H=2,V=64,T=16 --batch 1 --seq 16 --threads 1";
  const std::string profile = (dir_ / "profile.json").string();
  ASSERT_EQ(adacc("profile" + model + " --out " + profile).exit_code, 0);
  const std::string plan = "plan" + model + " --profile " + profile +
                           " --policy checkmate --budget 80% --gap 0.01 --time-limit 1";
  const CommandResult blocks = adacc(plan);
  ASSERT_EQ(blocks.exit_code, 0) << blocks.err;
  EXPECT_NE(blocks.out.find("solved by CBC (by blocks"), std::string::npos) << blocks.out;
  const CommandResult whole = adacc(plan + " --export-lp " + (dir_ / "step.lp").string());
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_NE(whole.out.find("solved by CBC (the whole step)"), std::string::npos) << whole.out;
  EXPECT_NE(whole.out.find("instead of planning by blocks"), std::string::npos) << whole.out;
  EXPECT_TRUE(fs::exists(dir_ / "step.lp"));
}

TEST_F(PlanExport, OnlyTheMilpPoliciesExport) {
  const CommandResult r = adacc(std::string("plan") + kModel + " --policy full --export-lp " +
                                (dir_ / "x.lp").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("adacc: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--export-mps and --export-lp"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.lp"));
  for (const char* bad : {"--gap -1", "--gap 1", "--time-limit 0"}) {
    const CommandResult g = adacc(std::string("plan") + kModel + " --policy adacc " + bad);
    EXPECT_EQ(g.exit_code, 1) << bad;
    EXPECT_NE(g.err.find(std::string(bad).substr(0, std::string(bad).find(' '))), std::string::npos)
        << g.err;
  }
}

}  // namespace
