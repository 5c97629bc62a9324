// `adacc profile` as a user runs it: the table, --json (valid, the same profile), --out
// writing a file that --profile prints back identically, and one-line errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_fixture.h"

namespace {

constexpr const char* kSmall =
    " --model L=3,C=32,H=2,V=64,T=16 --batch 2 --seq 16 --threads 1 --steps 1 --codec-repeats 1";

class ProfileCli : public AdaccCli {
 protected:
  // A one-line error naming `needle`, exit code 1.
  void expect_one_line_error(const std::string& args, const std::string& needle) {
    const CommandResult r = adacc(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("adacc: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
};

TEST_F(ProfileCli, PrintsTheTableWritesTheFileAndReadsItBack) {
  const fs::path file = dir_ / "cache" / "p.json";
  const CommandResult r =
      adacc(std::string("profile") + kSmall + " --attention naive --out " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"| embed | embedding |", "| h0.attn | attention |", "| loss |",
                          "| step (keep everything) |", "| h0.fc.out | gelu_in | 16384 |",
                          "| h0.attn.probs | attn_probs |"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("| h1."), std::string::npos) << "one block is profiled";
  EXPECT_NE(r.err.find("[profile] timing 1 step(s)"), std::string::npos) << r.err;
  ASSERT_TRUE(fs::exists(file));

  // --profile prints the same table from the file.
  const CommandResult back = adacc("profile --profile " + file.string());
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, r.out);

  // --json is the file's content, and valid JSON.
  const CommandResult json = adacc("profile --json --profile " + file.string());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, slurp(file));
  const nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["format"], "adacc-profile");
  EXPECT_EQ(j["key"]["attention"], "naive");
  EXPECT_EQ(j["key"]["threads"], 1);
  EXPECT_EQ(j["ops"].size(), 13u);  // embed, 10 ops of h0, lnf, loss
}

TEST_F(ProfileCli, JsonOfAMeasuredProfileParses) {
  const CommandResult r = adacc(std::string("profile") + kSmall + " --json --codecs bf16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["key"]["attention"], "flash");
  EXPECT_EQ(j["measured"]["tokens"], "random");
  EXPECT_TRUE(j["measured"]["budget"].is_null());
  for (const auto& t : j["tensors"]) {
    for (const auto& c : t["codecs"]) EXPECT_EQ(c["codec"], "bf16");
  }
}

TEST_F(ProfileCli, ProfilesWithinABudget) {
  const CommandResult r = adacc(std::string("profile") + kSmall + " --budget 64MiB --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["measured"]["budget"], 64u << 20);
  EXPECT_LE(j["measured"]["peak_bytes"].get<std::size_t>(), 64u << 20);
  expect_one_line_error(std::string("profile") + kSmall + " --budget 4KiB", "needs at least");
}

TEST_F(ProfileCli, ErrorsAreOneLine) {
  expect_one_line_error(std::string("profile") + kSmall + " --attention fast", "--attention");
  expect_one_line_error(std::string("profile") + kSmall + " --codecs nope", "nope");
  expect_one_line_error("profile --profile " + (dir_ / "missing.json").string(), "missing.json");
  expect_one_line_error(
      "profile --profile " + write("bad.json", "{\"format\": \"adacc-profile\"").string(),
      "bad.json");
  expect_one_line_error(std::string("profile") + kSmall + " --seq 17", "--seq");
}

}  // namespace
