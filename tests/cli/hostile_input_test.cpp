// Hostile inputs through the real binary (issue 9, defects 1, 2 and 10): JSON nested
// 100,000 deep in a plan file, a checkpoint.json and a safetensors header (a stack
// overflow, exit 139, before), plans and checkpoint.json of 50,000-100,000 keys (28 s
// and 11 s before), and sizes that overflowed (a budget of 1e19 bytes became 2^63, V=2^31-1
// a negative padded vocabulary). Each is exit code 1, one short stderr line, and the input
// files untouched.
#include <chrono>
#include <iterator>
#include <string>
#include <vector>

#include "cli/cli_fixture.h"

namespace {

class HostileInput : public AdaccCli {
 protected:
  // Exit 1, one line under 300 characters naming `needle`, and every file of `inputs`
  // exactly as before.
  void expect_refused(const std::string& args, const std::string& needle,
                      const std::vector<fs::path>& inputs) {
    std::vector<std::string> before;
    for (const fs::path& p : inputs) before.push_back(slurp(p));
    const CommandResult r = adacc(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err.substr(0, 500);
    EXPECT_EQ(r.err.rfind("adacc: ", 0), 0u) << r.err.substr(0, 500);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err.substr(0, 500);
    EXPECT_LT(r.err.size(), 300u) << r.err.substr(0, 500);
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err.substr(0, 500);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_TRUE(slurp(inputs[i]) == before[i]) << inputs[i] << " changed";
    }
  }

  std::string data() { return write("data.txt", corpus()).string(); }

  // A checkpoint directory whose checkpoint.json is `json`.
  fs::path checkpoint_dir(const std::string& json) {
    fs::create_directories(dir_ / "ckpt");
    write("ckpt/checkpoint.json", json);
    return dir_ / "ckpt";
  }
};

const std::string kDeep = std::string(100000, '[') + std::string(100000, ']');
constexpr const char* kPlanModel = "plan --model L=1,C=16,H=2,V=256,T=32 --batch 2 --seq 16";

std::string checkpoint_json(const std::string& extra) {
  return R"({"step": 3, "model": "model-3.safetensors", "optim": "optim-3.safetensors",
             "config": "L=1,C=16,H=2,V=256,T=32", "rng": ["1", "2", "3", "4"],
             "loader": {"position": 0, "epoch": 0})" +
         extra + "}";
}

TEST_F(HostileInput, DeeplyNestedPlanFile) {
  const fs::path plan = write("deep.json", R"({"tensors": )" + kDeep + "}");
  expect_refused(std::string(kPlanModel) + " --policy " + plan.string(), "nested deeper than 64",
                 {plan});
  expect_refused("train --data " + data() + kTiny + " --policy " + plan.string() + " --out " +
                     (dir_ / "run").string(),
                 "deep.json", {plan});
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(HostileInput, DeeplyNestedCheckpointJson) {
  const fs::path dir = checkpoint_dir(checkpoint_json(R"(, "options": )" + kDeep));
  expect_refused("train --data " + data() + kTiny + " --resume " + dir.string(),
                 "nested deeper than 64", {dir / "checkpoint.json"});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST_F(HostileInput, DeeplyNestedSafetensorsHeader) {
  std::string header = R"({"wte": )" + kDeep + "}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<char>(header.size() >> (8 * i));
  }
  const fs::path init = write("deep-header.safetensors", bytes + header);
  expect_refused("train --data " + data() + kTiny + " --init " + init.string() + " --out " +
                     (dir_ / "run").string(),
                 "nested deeper than 64", {init});
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

TEST_F(HostileInput, PlanFileWithHundredThousandKeysIsRefusedFast) {
  std::string text = R"({"planner": "x", "tensors": {)";
  for (int i = 0; i < 100000; ++i) {
    text += (i ? ", \"h" : "\"h") + std::to_string(i) + R"(.fc.out": "recompute")";
  }
  const fs::path plan = write("many.json", text + "}}");
  ASSERT_GT(fs::file_size(plan), 2400000u);
  const auto start = std::chrono::steady_clock::now();
  // Only h0 exists in this 1-layer model.
  expect_refused(std::string(kPlanModel) + " --policy " + plan.string(),
                 "entry 'h1.fc.out': no tensor of that name", {plan});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
}

TEST_F(HostileInput, CheckpointJsonWithFiftyThousandKeysIsReadFast) {
  std::string extra;
  for (int i = 0; i < 50000; ++i) extra += ", \"x" + std::to_string(i) + "\": " + std::to_string(i);
  const fs::path dir = checkpoint_dir(checkpoint_json(extra));
  const auto start = std::chrono::steady_clock::now();
  // Read in full: what is missing is the model file it names.
  expect_refused("train --data " + data() + kTiny + " --resume " + dir.string(),
                 "model-3.safetensors", {dir / "checkpoint.json"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
}

TEST_F(HostileInput, BudgetBeyond2To63Bytes) {
  for (const char* budget : {"10000000000000000000", "9.3e18"}) {
    expect_refused(std::string(kPlanModel) + " --budget " + budget, "--budget", {});
    expect_refused("train --data " + data() + kTiny + " --budget " + budget + " --out " +
                       (dir_ / "run").string(),
                   "9223372036854775807 bytes", {});
    EXPECT_FALSE(fs::exists(dir_ / "run"));
  }
}

TEST_F(HostileInput, VocabularyWhosePaddingOverflows) {
  const std::string model = " --model L=1,C=16,H=2,V=2147483647,T=32";
  expect_refused("plan" + model, "V (vocabulary) = 2147483647", {});
  expect_refused(
      "train --data " + data() + model + " --batch 2 --seq 16 --out " + (dir_ / "run").string(),
      "at most 2147483520", {});
  expect_refused("plan --model L=1,C=16,H=2,V=99999999999,T=32", "V=99999999999", {});
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

}  // namespace
