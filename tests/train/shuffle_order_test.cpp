// The shuffled batch loader's epoch order is a uniform random permutation of the windows:
// over many seeds every ordering of a few windows turns up about equally often, windows
// included that stay in their place (a Fisher-Yates that picks from [0, i) instead of
// [0, i] yields only cyclic orders, in which no window ever stays).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

#include "adacc/train/data.h"

namespace adacc::train {
namespace {

// Epoch 0's order of the windows of a loader with T=1, B=1 over tokens 0..windows: the
// input of each batch is the index of its window.
std::vector<std::int32_t> first_epoch_order(int windows, std::uint64_t seed) {
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(windows) + 1);
  std::iota(tokens.begin(), tokens.end(), 0);
  BatchLoader loader(tokens, 1, 1, Shuffle::on, seed);
  std::vector<std::int32_t> order;
  for (int i = 0; i < windows; ++i) {
    std::int32_t input = -1, target = -1;
    loader.next(&input, &target);
    EXPECT_EQ(target, input + 1);
    order.push_back(input);
  }
  return order;
}

TEST(ShuffleOrder, EveryPermutationOfFourWindowsIsAboutEquallyLikely) {
  constexpr int kWindows = 4, kPermutations = 24, kSeeds = 2400;
  std::map<std::vector<std::int32_t>, int> seen;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    std::vector<std::int32_t> order = first_epoch_order(kWindows, seed);
    std::vector<std::int32_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted, (std::vector<std::int32_t>{0, 1, 2, 3})) << "seed " << seed;
    ++seen[order];
  }
  // 100 expected per permutation; a binomial standard deviation is ~10.
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kPermutations));
  for (const auto& [order, count] : seen) {
    EXPECT_GT(count, 50) << ::testing::PrintToString(order);
    EXPECT_LT(count, 150) << ::testing::PrintToString(order);
  }
}

TEST(ShuffleOrder, AWindowStaysInItsPlaceAboutOnceInNWindows) {
  constexpr int kWindows = 6, kSeeds = 1200;
  int stays = 0;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    const std::vector<std::int32_t> order = first_epoch_order(kWindows, seed);
    for (int i = 0; i < kWindows; ++i) stays += order[static_cast<std::size_t>(i)] == i ? 1 : 0;
  }
  // Expected kSeeds (each position keeps its window with probability 1/kWindows).
  EXPECT_GT(stays, kSeeds * 3 / 4);
  EXPECT_LT(stays, kSeeds * 5 / 4);
}

}  // namespace
}  // namespace adacc::train
