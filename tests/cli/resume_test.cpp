// `adacc train --resume` through the real binary: a run stopped with --stop-after k and
// resumed with nothing but --resume DIR ends with the files of an uninterrupted run, byte
// for byte (checkpoint.json, the model and moments it names, model.safetensors), the same
// metrics (but the timings) and the same sampled text: under keep-all, a recompute
// baseline, the four-codec compress baseline, a compress plan read from a file written
// by `adacc plan --out`, and with --threads 2.
#include <cstdlib>
#include <map>
#include <regex>
#include <vector>

#include "cli/cli_fixture.h"

namespace {

struct ResumeCase {
  const char* name;    // the ctest name's suffix
  const char* policy;  // a baseline, or "plan-file:BASELINE" for a file from `adacc plan`
  int threads;
};

// What gtest (and so ctest's test name) shows for a case: its name, not its bytes.
void PrintTo(const ResumeCase& c, std::ostream* os) {
  *os << c.name;
}

class CliResume : public AdaccCli, public ::testing::WithParamInterface<ResumeCase> {
 protected:
  static constexpr int kSteps = 12;
  static constexpr int kStop = 5;
  static constexpr const char* kShape = " --model L=1,C=16,H=2,V=256,T=32 --batch 2 --seq 16";

  // Every file under `dir` but the lock, by name.
  static std::map<std::string, std::string> files(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().filename() != ".adacc.lock") {
        out[e.path().filename().string()] = slurp(e.path());
      }
    }
    return out;
  }

  // The metrics lines without the fields that measure time and memory of the process.
  static std::vector<std::string> metrics_without_timings(const fs::path& p) {
    static const std::regex timing(R"re("(ms|tok_s|peak_bytes)":[^,}]*,?)re");
    std::vector<std::string> lines;
    std::istringstream in(slurp(p));
    for (std::string line; std::getline(in, line);) {
      lines.push_back(std::regex_replace(line, timing, ""));
    }
    return lines;
  }

  static std::string sampled_text(const std::string& stdout_text) {
    const std::size_t at = stdout_text.find("sample:\n");
    return at == std::string::npos ? std::string() : stdout_text.substr(at);
  }

  CommandResult run_ok(const std::string& args) {
    const CommandResult r = adacc(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out << r.err;
    return r;
  }
};

TEST_P(CliResume, StoppedAndResumedRunEndsWithTheUninterruptedRunsFiles) {
  const ResumeCase& c = GetParam();
  std::string policy = c.policy;
  const std::string file_prefix = "plan-file:";
  if (policy.rfind(file_prefix, 0) == 0) {
    const fs::path plan = dir_ / "plan.json";
    run_ok("plan" + std::string(kShape) + " --threads " + std::to_string(c.threads) + " --policy " +
           policy.substr(file_prefix.size()) + " --out " + plan.string());
    ASSERT_TRUE(fs::exists(plan));
    policy = plan.string();
  }
  const fs::path metrics = dir_ / "metrics.jsonl";
  const std::string common = "train --data " + write("corpus.txt", corpus()).string() + kShape +
                             " --steps " + std::to_string(kSteps) + " --threads " +
                             std::to_string(c.threads) + " --policy " + policy +
                             " --val-every 4 --val-batches 1 --metrics " + metrics.string();

  // The uninterrupted run; its metrics move away so that both runs record one path.
  const CommandResult whole = run_ok(common + " --sample 24 --out " + (dir_ / "whole").string());
  fs::rename(metrics, dir_ / "whole.jsonl");

  const fs::path part = dir_ / "part";
  const CommandResult stopped =
      run_ok(common + " --stop-after " + std::to_string(kStop) + " --out " + part.string());
  EXPECT_NE(stopped.out.find("resume with: adacc train --resume " + part.string()),
            std::string::npos)
      << stopped.out;
  EXPECT_TRUE(fs::exists(part / ("model-" + std::to_string(kStop) + ".safetensors")));
  EXPECT_FALSE(fs::exists(part / "model.safetensors"));
  const CommandResult resumed = run_ok("train --resume " + part.string() + " --sample 24");

  const auto want = files(dir_ / "whole");
  const auto got = files(part);
  for (const char* name : {"checkpoint.json", "model.safetensors"}) {
    EXPECT_EQ(want.count(name), 1u) << name;
  }
  EXPECT_EQ(want.size(), got.size());
  for (const auto& [name, content] : want) {
    const auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << name << " missing after the resume";
    EXPECT_TRUE(it->second == content) << name << " differs from the uninterrupted run's";
  }
  const std::vector<std::string> want_metrics = metrics_without_timings(dir_ / "whole.jsonl");
  EXPECT_EQ(want_metrics.size(), kSteps + kSteps / 4u);  // a line per step and validation
  EXPECT_EQ(metrics_without_timings(metrics), want_metrics);
  EXPECT_FALSE(sampled_text(whole.out).empty()) << whole.out;
  EXPECT_EQ(sampled_text(resumed.out), sampled_text(whole.out));
}

INSTANTIATE_TEST_SUITE_P(Plans, CliResume,
                         ::testing::Values(ResumeCase{"KeepAll", "none", 1},
                                           ResumeCase{"RecomputeFull", "full", 1},
                                           ResumeCase{"RecomputeSelective", "selective", 1},
                                           ResumeCase{"CompressFourCodecs", "compress", 1},
                                           ResumeCase{"CompressPlanFile", "plan-file:compress", 1},
                                           ResumeCase{"KeepAllTwoThreads", "none", 2},
                                           ResumeCase{"CompressTwoThreads", "compress", 2}),
                         [](const ::testing::TestParamInfo<ResumeCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
