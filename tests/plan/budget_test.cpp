// --budget: byte sizes and percentages, and their limits: sizes beyond 2^63 - 1 bytes
// (which became 2^63 before) and absurd percentages are refused naming --budget, and a
// percentage resolves with checked arithmetic.
#include <gtest/gtest.h>

#include <string>

#include "adacc/core/byte_size.h"
#include "adacc/core/error.h"
#include "adacc/plan/policy.h"
#include "support/expect_error.h"

namespace adacc::plan {
namespace {

// The message parse_budget throws for `text`: one line of at most 300 characters.
std::string error_of(const std::string& text) {
  return test::error_of<InvalidArgument>([&] { parse_budget(text); }, 300);
}

TEST(Budget, ReadsBytesAndPercentages) {
  EXPECT_EQ(parse_budget("6GiB").bytes, std::size_t{6} << 30);
  EXPECT_FALSE(parse_budget("6GiB").percent);
  EXPECT_EQ(parse_budget("9223372036854775807").bytes, kMaxByteSize);
  const Budget p = parse_budget("30%");
  EXPECT_TRUE(p.percent);
  EXPECT_DOUBLE_EQ(p.share, 0.3);
}

TEST(Budget, SizesBeyond2To63AreRefusedNamingTheOption) {
  for (const char* big : {"10000000000000000000", "9.3e18", "18446744073709551615"}) {
    const std::string msg = error_of(big);
    EXPECT_EQ(msg.rfind("[budget] --budget: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("9223372036854775807 bytes"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of("lots").find("--budget"), std::string::npos);
  EXPECT_NE(error_of("lots").find("30%"), std::string::npos);
}

TEST(Budget, AbsurdPercentagesAreRefused) {
  EXPECT_NE(error_of("1e7%").find("above 1000000%"), std::string::npos);
  EXPECT_NE(error_of("-5%").find("as a percentage"), std::string::npos);
  EXPECT_NE(error_of("inf%").find("as a percentage"), std::string::npos);
  EXPECT_TRUE(parse_budget("1000000%").percent);
}

TEST(Budget, PercentagesResolveWithCheckedArithmetic) {
  runtime::MemoryPrediction none;
  none.fixed = 1000;
  none.total_peak = 3000;
  EXPECT_EQ(resolve_budget(parse_budget("50%"), none), 2000u);
  none.fixed = std::size_t{1} << 40;
  none.total_peak = none.fixed + (std::size_t{1} << 60);
  EXPECT_THROW(resolve_budget(parse_budget("1000%"), none), InvalidArgument);
  none.total_peak = none.fixed + (std::size_t{1} << 62);
  EXPECT_THROW(resolve_budget(parse_budget("201%"), none), InvalidArgument);
}

}  // namespace
}  // namespace adacc::plan
