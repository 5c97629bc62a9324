// The metrics JSONL file (see metrics_log.h).
#include "adacc/train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "adacc/core/error.h"
#include "adacc/train/atomic_file.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

// The step a metrics line belongs to, or -1 for a line that is not a complete object
// with a step (a torn last line).
std::int64_t line_step(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return -1;
  const auto it = j.find("step");
  if (it == j.end() || !it->is_number_integer()) return -1;
  return it->get<std::int64_t>();
}

}  // namespace

MetricsLog::MetricsLog(fs::path path, std::int64_t resume_step) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::error_code ec;
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path(), ec);
  if (resume_step >= 0 && fs::exists(path_, ec) && fs::is_regular_file(path_, ec)) {
    // Keep what the checkpoint covers; the rest is written again by this run.
    std::ifstream in(path_, std::ios::binary);
    std::string kept, line;
    bool dropped = false;
    while (std::getline(in, line)) {
      const std::int64_t step = line_step(line);
      if (step >= 0 && step <= resume_step) {
        kept += line;
        kept += '\n';
      } else {
        dropped = true;
      }
    }
    if (dropped) {
      AtomicFile f(path_);
      f.write(kept.data(), kept.size());
      f.commit();
    }
  }
  file_ = std::fopen(path_.c_str(), resume_step >= 0 ? "ab" : "wb");
  if (file_ == nullptr) fail("cannot open", errno);
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::write(const std::string& json_line) {
  if (file_ == nullptr) return;
  errno = 0;
  if (std::fwrite(json_line.data(), 1, json_line.size(), file_) != json_line.size() ||
      std::fputc('\n', file_) == EOF || std::fflush(file_) != 0) {
    fail("cannot write to", errno);
  }
}

void MetricsLog::fail(const std::string& what, int err) const {
  throw BackendError("[train] " + what + " the metrics file '" + path_.string() +
                     "': " + (err != 0 ? std::strerror(err) : "write error") +
                     "; free space or choose another --metrics");
}

}  // namespace adacc::train
