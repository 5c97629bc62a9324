// --budget-file FILE: a budget that moves while training runs. The trainer reads the file
// at every step boundary; a change of its content (one line: `6GiB` or `30%`) is a new
// budget request (docs/evolution.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "adacc/plan/policy.h"

namespace adacc::evolve {

struct BudgetRequest {
  std::string text;                    // the line as read (trimmed)
  std::optional<plan::Budget> budget;  // parsed; empty when the line is not a budget
  std::string error;                   // why not (one line)
};

class BudgetFile {
 public:
  explicit BudgetFile(std::filesystem::path path) : path_(std::move(path)) {}
  // The request when the file's content differs from the last one seen (the first call
  // sees whatever is there); nothing when unchanged or when the file cannot be read (a
  // file being replaced is read again at the next boundary).
  std::optional<BudgetRequest> poll();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::optional<std::string> last_;
};

}  // namespace adacc::evolve
