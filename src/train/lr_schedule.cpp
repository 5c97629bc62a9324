// Learning-rate schedules (see lr_schedule.h).
#include "adacc/train/lr_schedule.h"

#include <cmath>
#include <string>

#include "adacc/core/error.h"

namespace adacc::train {

ScheduleKind parse_schedule(std::string_view name) {
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "constant") return ScheduleKind::constant;
  throw InvalidArgument("[train] unknown schedule '" + std::string(name) +
                        "'; use cosine or constant");
}

float LrSchedule::at(std::int64_t step) const {
  if (kind == ScheduleKind::constant) return max_lr;
  if (step < warmup_steps) {
    return max_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  }
  const std::int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 1) return max_lr;
  const double progress = std::min(
      1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps - 1));
  const double min_lr = static_cast<double>(max_lr) * min_lr_fraction;
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return static_cast<float>(min_lr + (max_lr - min_lr) * cosine);
}

}  // namespace adacc::train
