// Byte sizes with binary and decimal units; bad text is rejected.
#include "adacc/core/byte_size.h"

#include <gtest/gtest.h>

#include "adacc/core/error.h"

namespace adacc {
namespace {

TEST(ByteSize, ParsesUnits) {
  EXPECT_EQ(parse_byte_size("123"), 123u);
  EXPECT_EQ(parse_byte_size("64KiB"), 65536u);
  EXPECT_EQ(parse_byte_size("1.5GiB"), 1610612736u);
  EXPECT_EQ(parse_byte_size("512 MB"), 512000000u);
  EXPECT_EQ(parse_byte_size("2g"), 2147483648u);
  EXPECT_EQ(parse_byte_size("0"), 0u);
}

TEST(ByteSize, RejectsBadText) {
  for (const char* bad : {"", "abc", "-5MiB", "12 parsecs", "1e30GiB", "nan"}) {
    EXPECT_THROW(parse_byte_size(bad), InvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace adacc
