// Progress display (see progress.h).
#include "progress.h"

#include <cmath>

#include "adacc/core/allocator.h"

namespace adacc::cli {

ProgressDisplay::ProgressDisplay(std::FILE* out, bool interactive, std::int64_t log_every)
    : out_(out), interactive_(interactive), log_every_(log_every > 0 ? log_every : 1) {}

std::string ProgressDisplay::format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s % 3600 / 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lds", s);
  }
  return text;
}

void ProgressDisplay::step(const train::StepReport& r) {
  if (first_step_ < 0) {
    first_step_ = r.step;
    first_elapsed_ = r.elapsed_s - r.ms / 1e3;
  }
  const bool last = r.step == r.total;
  if (!interactive_ && r.step % log_every_ != 0 && !last && r.step != first_step_) return;
  const double done = static_cast<double>(r.step - first_step_ + 1);
  const double per_step = (r.elapsed_s - first_elapsed_) / done;
  const double eta = per_step * static_cast<double>(r.total - r.step);
  char tok[32];
  if (r.tok_s >= 1e4) {
    std::snprintf(tok, sizeof tok, "%.1fk", r.tok_s / 1e3);
  } else {
    std::snprintf(tok, sizeof tok, "%.0f", r.tok_s);
  }
  char line[256];
  std::snprintf(
      line, sizeof line,
      "step %lld/%lld | loss %.4f%s | lr %.2e | %s tok/s | %.0f ms/step | peak %s | ETA %s",
      static_cast<long long>(r.step), static_cast<long long>(r.total), r.loss,
      r.skipped ? " (skipped)" : "", r.lr, tok, r.ms, format_bytes(r.peak_bytes).c_str(),
      format_duration(eta).c_str());
  if (interactive_) {
    std::fprintf(out_, "\r%s\033[K", line);
    line_open_ = true;
  } else {
    std::fprintf(out_, "%s\n", line);
  }
  std::fflush(out_);
}

void ProgressDisplay::validation(const train::ValReport& v) {
  finish();
  std::fprintf(out_, "step %lld: validation loss %.4f\n", static_cast<long long>(v.step),
               v.val_loss);
  std::fflush(out_);
}

void ProgressDisplay::message(const std::string& text) {
  finish();
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void ProgressDisplay::finish() {
  if (line_open_) {
    std::fputc('\n', out_);
    line_open_ = false;
  }
}

}  // namespace adacc::cli
