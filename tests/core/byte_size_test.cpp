// Byte sizes with binary and decimal units; bad text is rejected.
#include "adacc/core/byte_size.h"

#include <gtest/gtest.h>

#include <string>

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

TEST(ByteSize, WholeNumbersAreExactUpToTheLimit) {
  EXPECT_EQ(parse_byte_size("9223372036854775807"), kMaxByteSize);
  EXPECT_EQ(parse_byte_size("9007199254740993"), 9007199254740993u);  // not a double
  EXPECT_EQ(parse_byte_size("8388607TiB"), 8388607ull << 40);
  EXPECT_EQ(parse_byte_size("4.5 KiB"), 4608u);
}

TEST(ByteSize, SizesBeyond2To63AreRefusedNamingTheLimit) {
  // Before: 1e19 and 1.8e19 became 2^63 (llround's overflow), 9.3e18 too.
  for (const char* big : {"9223372036854775808", "10000000000000000000", "18446744073709551616",
                          "99999999999999999999999", "8388608TiB", "1.8e19", "9.3e18",
                          "9223372036854775807KiB", "1e300"}) {
    try {
      parse_byte_size(big);
      ADD_FAILURE() << big << " was accepted";
    } catch (const InvalidArgument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("9223372036854775807 bytes"), std::string::npos) << msg;
      EXPECT_NE(msg.find(big), std::string::npos) << msg;
    }
  }
}

TEST(ByteSize, MessagesAreOneShortLine) {
  try {
    parse_byte_size(std::string(10000, '1') + "\nGiB");
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace adacc
