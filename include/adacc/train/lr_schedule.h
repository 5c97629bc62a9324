// Learning-rate schedules: linear warmup then cosine decay to a floor, or constant.
#pragma once

#include <cstdint>
#include <string_view>

namespace adacc::train {

enum class ScheduleKind : std::uint8_t { cosine, constant };

// "cosine" or "constant"; throws InvalidArgument otherwise.
ScheduleKind parse_schedule(std::string_view name);

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::cosine;
  float max_lr = 3e-4f;
  float min_lr_fraction = 0.1f;  // cosine ends at max_lr * min_lr_fraction
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;

  // The rate for optimizer step `step` (0-based). Constant: max_lr at every step.
  // Cosine: (step+1)/warmup * max_lr during warmup, then a half cosine from max_lr down
  // to min_lr at the last step.
  float at(std::int64_t step) const;
};

}  // namespace adacc::train
