// The metrics file of a training run (--metrics FILE): one JSON object per line, written
// and flushed as each step ends, so that a crash loses at most the line being written.
//
// A new run truncates the file. A resumed run continues it: lines of steps after the
// checkpoint's step (written before a crash, and about to be written again) and a torn
// last line are dropped first (the file is rewritten atomically), so every step appears
// once. Every write is checked: a full disk or an unwritable file is a BackendError
// naming the file, not a silently missing record.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace adacc::train {

class MetricsLog {
 public:
  // An empty path writes nothing. `resume_step` < 0: a new run; otherwise the step the
  // run resumes after.
  MetricsLog(std::filesystem::path path, std::int64_t resume_step);
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  // Appends one line (a compact JSON object without the newline) and flushes it.
  void write(const std::string& json_line);

 private:
  [[noreturn]] void fail(const std::string& what, int err) const;

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace adacc::train
