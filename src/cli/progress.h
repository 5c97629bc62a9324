// The training progress display: one line rewritten in place on a terminal, plain lines
// (every log_every steps) when stdout is a file or a pipe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "adacc/train/trainer.h"

namespace adacc::cli {

class ProgressDisplay {
 public:
  // interactive: rewrite one line with '\r'; else print every `log_every` steps.
  ProgressDisplay(std::FILE* out, bool interactive, std::int64_t log_every);

  void step(const train::StepReport& r);
  void validation(const train::ValReport& v);
  void message(const std::string& text);
  // Ends the in-place line, if any.
  void finish();

  static std::string format_duration(double seconds);

 private:
  std::FILE* out_;
  bool interactive_;
  std::int64_t log_every_;
  bool line_open_ = false;
  std::int64_t first_step_ = -1;  // first step of this run, for the ETA
  double first_elapsed_ = 0;
};

}  // namespace adacc::cli
