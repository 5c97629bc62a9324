// Allocator: budget enforcement, accounting by category, peaks, cache reuse.
#include "adacc/core/allocator.h"

#include <gtest/gtest.h>

#include "adacc/core/error.h"

namespace adacc {
namespace {

TEST(Allocator, AccountsByCategoryAndTracksPeaks) {
  Allocator alloc;
  {
    Buffer p = alloc.allocate(1000, MemCategory::params, "p");
    Buffer a = alloc.allocate(4096, MemCategory::activations, "a");
    MemStats s = alloc.stats();
    EXPECT_EQ(s.current_of(MemCategory::params), 1024u);  // rounded to 64
    EXPECT_EQ(s.current_of(MemCategory::activations), 4096u);
    EXPECT_EQ(s.total_current, 1024u + 4096u);
    { Buffer w = alloc.allocate(64, MemCategory::workspace, "w"); }
    s = alloc.stats();
    EXPECT_EQ(s.current_of(MemCategory::workspace), 0u);
    EXPECT_EQ(s.peak_of(MemCategory::workspace), 64u);
    EXPECT_EQ(s.total_peak, 1024u + 4096u + 64u);
    EXPECT_EQ(s.at_peak[static_cast<int>(MemCategory::workspace)], 64u);
  }
  MemStats s = alloc.stats();
  EXPECT_EQ(s.total_current, 0u);
  EXPECT_EQ(s.total_peak, 1024u + 4096u + 64u);
  alloc.reset_peak();
  EXPECT_EQ(alloc.stats().total_peak, 0u);
}

TEST(Allocator, IntervalPeaksAreASecondWindowThatResetPeakLeavesAlone) {
  Allocator alloc;
  const auto act = static_cast<int>(MemCategory::activations);
  const auto ws = static_cast<int>(MemCategory::workspace);
  Buffer p = alloc.allocate(1024, MemCategory::params, "p");
  { Buffer big = alloc.allocate(8192, MemCategory::activations, "big"); }
  alloc.start_interval();
  MemStats s = alloc.stats();
  EXPECT_EQ(s.interval_peak, 1024u);  // the interval starts at the current state
  EXPECT_EQ(s.total_peak, 1024u + 8192u);
  Buffer a = alloc.allocate(2048, MemCategory::activations, "a");
  { Buffer w = alloc.allocate(512, MemCategory::workspace, "w"); }
  { Buffer w = alloc.allocate(256, MemCategory::workspace, "w"); }
  s = alloc.stats();
  EXPECT_EQ(s.interval_peak, 1024u + 2048u + 512u);
  EXPECT_EQ(s.at_interval_peak[act], 2048u);
  EXPECT_EQ(s.at_interval_peak[ws], 512u);
  EXPECT_EQ(s.interval_category_peak[act], 2048u);
  EXPECT_EQ(s.interval_category_peak[ws], 512u);
  // reset_peak's window and the interval are independent.
  alloc.reset_peak();
  EXPECT_EQ(alloc.stats().interval_peak, 1024u + 2048u + 512u);
  alloc.start_interval();
  s = alloc.stats();
  EXPECT_EQ(s.interval_peak, 1024u + 2048u);
  EXPECT_EQ(s.interval_category_peak[ws], 0u);
  EXPECT_EQ(s.total_peak, 1024u + 2048u);
}

TEST(Allocator, EnforcesBudgetWithBreakdown) {
  Allocator alloc(Device::cpu, 10000);
  Buffer p = alloc.allocate(6000, MemCategory::params, "wte");
  try {
    Buffer a = alloc.allocate(5000, MemCategory::activations, "layer0.fch");
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layer0.fch"), std::string::npos) << msg;
    EXPECT_NE(msg.find("activations"), std::string::npos) << msg;
    EXPECT_NE(msg.find("params"), std::string::npos) << msg;
  }
  // The failed request left the accounting untouched; a request that fits succeeds.
  EXPECT_EQ(alloc.stats().total_current, 6016u);
  Buffer a = alloc.allocate(3000, MemCategory::activations, "small");
  EXPECT_TRUE(a);
  EXPECT_THROW(alloc.set_budget(100), InvalidArgument);
}

TEST(Allocator, ReusesFreedBlocksWithoutSystemCalls) {
  Allocator alloc;
  for (int step = 0; step < 5; ++step) {
    Buffer a = alloc.allocate(1 << 20, MemCategory::activations, "a");
    Buffer b = alloc.allocate(3 << 20, MemCategory::activations, "b");
    Buffer c = alloc.allocate(1 << 20, MemCategory::workspace, "c");
  }
  // Three distinct live blocks at most; later steps are served from the cache.
  EXPECT_EQ(alloc.stats().system_allocations, 3u);
  alloc.release_cache();
  EXPECT_EQ(alloc.stats().reserved, 0u);
}

TEST(Allocator, BuffersAreAlignedAndMovable) {
  Allocator alloc;
  Buffer a = alloc.allocate(100, MemCategory::workspace, "a");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % Allocator::kAlignment, 0u);
  Buffer b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  EXPECT_EQ(alloc.stats().total_current, 128u);
  b = Buffer();
  EXPECT_EQ(alloc.stats().total_current, 0u);
}

TEST(Allocator, TightBudgetReleasesCacheBeforeGrowing) {
  Allocator alloc(Device::cpu, 8 << 20);
  { Buffer a = alloc.allocate(6 << 20, MemCategory::activations, "a"); }
  // A different size cannot reuse the cached 6 MiB block; the cache is trimmed so the
  // reserved bytes stay within the budget.
  Buffer b = alloc.allocate(4 << 20, MemCategory::activations, "b");
  EXPECT_LE(alloc.stats().reserved, 8u << 20);
}

TEST(Allocator, FormatsBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(3 * 1024), "3.00 KiB");
  EXPECT_EQ(format_bytes(1536ull << 20), "1.50 GiB");
}

}  // namespace
}  // namespace adacc
