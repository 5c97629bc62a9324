// The fixture of the tests that run the adacc binary as a user would: a fresh directory
// per test (named with the process id and the test), the binary run through the shell
// with stdout and stderr captured, and the checks of a one-line error.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

class AdaccCli : public ::testing::Test {
 protected:
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  CommandResult adacc(const std::string& args) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd =
        std::string(ADACC_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
  }

  fs::path write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  // A one-line error naming `needle`, exit code 1, and the run's outputs not created.
  void expect_error(const std::string& args, const std::string& needle) {
    const CommandResult r = adacc(args + " --out " + (dir_ / "run").string() + " --metrics " +
                                  (dir_ / "run" / "m.jsonl").string());
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("adacc: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "run")) << args;
  }

  std::string corpus() const {
    std::string text;
    for (int i = 0; i < 60; ++i) text += "In the beginning God created the heaven and the earth. ";
    return text;
  }

  adacc::test::TempDir tmp_{"cli_test"};

  fs::path dir_ = tmp_.path();
};

constexpr const char* kTiny = " --model L=1,C=16,H=2,V=256,T=32 --batch 2 --seq 16 --threads 1";

}  // namespace
