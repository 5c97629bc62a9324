// Warmup + cosine and constant schedules.
#include "adacc/train/lr_schedule.h"

#include <gtest/gtest.h>

#include "adacc/core/error.h"

namespace adacc::train {
namespace {

TEST(LrSchedule, WarmupThenCosineToTheFloor) {
  LrSchedule s{ScheduleKind::cosine, 1.0f, 0.1f, 10, 110};
  EXPECT_FLOAT_EQ(s.at(0), 0.1f);
  EXPECT_FLOAT_EQ(s.at(4), 0.5f);
  EXPECT_FLOAT_EQ(s.at(9), 1.0f);
  EXPECT_FLOAT_EQ(s.at(10), 1.0f);      // decay starts at the peak
  EXPECT_NEAR(s.at(59), 0.55f, 0.01f);  // about halfway: the mean of max and min
  EXPECT_FLOAT_EQ(s.at(109), 0.1f);     // the last step reaches the floor
  for (int i = 11; i < 110; ++i) EXPECT_LT(s.at(i), s.at(i - 1));
}

TEST(LrSchedule, ConstantIgnoresWarmup) {
  LrSchedule s{ScheduleKind::constant, 0.003f, 0.1f, 10, 100};
  EXPECT_EQ(s.at(0), 0.003f);
  EXPECT_EQ(s.at(99), 0.003f);
  EXPECT_EQ(parse_schedule("constant"), ScheduleKind::constant);
  EXPECT_THROW(parse_schedule("linear"), InvalidArgument);
}

}  // namespace
}  // namespace adacc::train
