// The allocator's budget at its edge: requests that fill it exactly are granted, and the
// next aligned unit beyond it is refused (a `>=` for `>` in the check refuses the first).
#include <gtest/gtest.h>

#include "adacc/core/allocator.h"
#include "adacc/core/error.h"

namespace adacc {
namespace {

constexpr std::size_t kUnit = Allocator::kAlignment;

TEST(AllocatorBudget, ARequestThatFillsTheBudgetExactlyIsGranted) {
  Allocator alloc(Device::cpu, 10 * kUnit);
  Buffer a = alloc.allocate(4 * kUnit, MemCategory::params, "a");
  Buffer b = alloc.allocate(6 * kUnit, MemCategory::activations, "b");  // 10 of 10 units
  EXPECT_EQ(alloc.stats().total_current, 10 * kUnit);
  EXPECT_THROW(alloc.allocate(1, MemCategory::workspace, "c"), OutOfMemory);
}

TEST(AllocatorBudget, OneUnitBeyondTheBudgetIsRefused) {
  Allocator alloc(Device::cpu, 10 * kUnit);
  EXPECT_THROW(alloc.allocate(10 * kUnit + 1, MemCategory::params, "a"), OutOfMemory);
  EXPECT_EQ(alloc.stats().total_current, 0u);
  // A budget the request fills exactly, given after the refusal.
  alloc.set_budget(11 * kUnit);
  Buffer a = alloc.allocate(10 * kUnit + 1, MemCategory::params, "a");  // rounds to 11 units
  EXPECT_EQ(alloc.stats().total_current, 11 * kUnit);
}

}  // namespace
}  // namespace adacc
