// --budget-file (see budget_file.h).
#include "adacc/evolve/budget_file.h"

#include <fstream>
#include <sstream>

#include "adacc/core/error.h"

namespace adacc::evolve {

std::optional<BudgetRequest> BudgetFile::poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text;
  char c = 0;
  // At most a short line: a budget file is one line.
  while (text.size() < 256 && in.get(c)) text += c;
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  if (last_ && *last_ == text) return std::nullopt;
  last_ = text;
  BudgetRequest r;
  r.text = text;
  try {
    if (text.find('\n') != std::string::npos) {
      throw InvalidArgument("a budget file holds one line (like 6GiB or 30%)");
    }
    r.budget = plan::parse_budget(text);
  } catch (const Error& e) {
    r.error = e.what();
  }
  return r;
}

}  // namespace adacc::evolve
