// GLPK's solver run on an exported model: the objective it proves optimal. Tests compare
// it with CBC's to show that the exported file is the model that was solved.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace adacc::test {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// glpsol's objective from its -o report ("Objective:  obj = 1.23e-02 (MINimum)"); `flag`
// is --lp or --freemps. A failure is reported, and 0 returned.
inline double glpsol_objective(const std::string& flag, const std::filesystem::path& model,
                               const std::filesystem::path& report) {
  if (std::system("command -v glpsol > /dev/null 2>&1") != 0) {
    ADD_FAILURE() << "glpsol not found on PATH: install glpk-utils (tools/setup.sh does)";
    return 0;
  }
  const std::string cmd = "glpsol " + flag + " '" + model.string() + "' -o '" + report.string() +
                          "' > '" + report.string() + ".log' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_text(report.string() + ".log");
  const std::string text = read_text(report);
  const std::size_t at = text.find("Objective:");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no objective in glpsol's report:\n" << text;
    return 0;
  }
  EXPECT_NE(text.find("INTEGER OPTIMAL"), std::string::npos) << text.substr(0, 600);
  const std::size_t eq = text.find('=', at);
  return std::stod(text.substr(eq + 1));
}

}  // namespace adacc::test
