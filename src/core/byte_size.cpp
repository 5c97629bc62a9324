// Parsing of human-written byte sizes (see byte_size.h). Whole numbers are read exactly
// as integers and scaled with checked arithmetic; fractions ("1.5GiB") through double.
#include "adacc/core/byte_size.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"

namespace adacc {

std::size_t parse_byte_size(std::string_view text) {
  static_assert(sizeof(std::size_t) == sizeof(std::uint64_t));
  const std::string s(text);
  auto fail = [&]() -> std::size_t {
    throw InvalidArgument("[size] cannot read '" + excerpt(s) +
                          "' as a byte size; write e.g. 512MiB, 6GiB or 1000000");
  };
  auto too_large = [&]() -> std::size_t {
    throw InvalidArgument("[size] '" + excerpt(s) + "' is more than " +
                          std::to_string(kMaxByteSize) +
                          " bytes (8 EiB), the largest size adacc counts");
  };
  if (s.find('\0') != std::string::npos) return fail();  // strtod would stop there
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(value >= 0) || !std::isfinite(value)) {
    // strtod gives inf for digits beyond double's range: too large, not unreadable.
    if (end != s.c_str() && std::isinf(value) && !s.empty() && std::isdigit(s[0])) {
      return too_large();
    }
    return fail();
  }
  std::string unit;
  for (const char* p = end; *p; ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p))) {
      unit += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    }
  }
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "kib" || unit == "k")
    scale = std::uint64_t{1} << 10;
  else if (unit == "mib" || unit == "m")
    scale = std::uint64_t{1} << 20;
  else if (unit == "gib" || unit == "g")
    scale = std::uint64_t{1} << 30;
  else if (unit == "tib" || unit == "t")
    scale = std::uint64_t{1} << 40;
  else if (unit == "kb")
    scale = 1'000;
  else if (unit == "mb")
    scale = 1'000'000;
  else if (unit == "gb")
    scale = 1'000'000'000;
  else if (unit == "tb")
    scale = 1'000'000'000'000;
  else
    return fail();

  // A plain run of digits: exact integer arithmetic.
  std::uint64_t whole = 0;
  const auto [int_end, ec] = std::from_chars(s.c_str(), end, whole);
  if (int_end == end) {
    std::uint64_t bytes = 0;
    if (ec == std::errc::result_out_of_range || __builtin_mul_overflow(whole, scale, &bytes) ||
        bytes > kMaxByteSize) {
      return too_large();
    }
    return bytes;
  }
  // A fraction or an exponent: through double. kMaxByteSize + 1 = 2^63 is exact in double.
  const double bytes = value * static_cast<double>(scale);
  if (!(bytes < 0x1p63)) return too_large();
  return static_cast<std::size_t>(std::llround(bytes));
}

}  // namespace adacc
