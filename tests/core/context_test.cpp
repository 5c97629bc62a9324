// Context: threads are resolved (0 = every core), and creating a Context makes the calling
// thread and every OpenMP thread flush subnormal floats to zero (inputs and results), the
// slow path that made training steps several times slower once attention probabilities
// drifted below 2^-126.
#include "adacc/core/context.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <limits>
#include <vector>

namespace adacc {
namespace {

// Arithmetic the compiler cannot fold: the values come through volatile.
float product(float a, float b) {
  volatile float x = a, y = b;
  return x * y;
}

TEST(Context, ResolvesThreads) {
  EXPECT_EQ(Context::resolve_threads(3), 3);
  EXPECT_EQ(Context::resolve_threads(0), omp_get_num_procs());
}

TEST(Context, FlushesSubnormalsOnEveryComputeThread) {
  const float tiny = std::numeric_limits<float>::min();  // 2^-126, the smallest normal
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  EXPECT_EQ(product(tiny, 0.5f), 0.0f) << "result flushed (FTZ)";
  const float subnormal = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(product(subnormal, 2.0f), 0.0f) << "input treated as zero (DAZ)";
  std::vector<float> per_thread(2, 1.0f);
#pragma omp parallel num_threads(2)
  per_thread[static_cast<std::size_t>(omp_get_thread_num())] = product(tiny, 0.5f);
  EXPECT_EQ(per_thread[0], 0.0f);
  EXPECT_EQ(per_thread[1], 0.0f);
  EXPECT_EQ(product(tiny, 2.0f), 2.0f * tiny) << "normal numbers are untouched";
}

}  // namespace
}  // namespace adacc
