// Parsing of human-written byte sizes (see byte_size.h).
#include "adacc/core/byte_size.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "adacc/core/error.h"

namespace adacc {

std::size_t parse_byte_size(std::string_view text) {
  const std::string s(text);
  auto fail = [&]() -> std::size_t {
    throw InvalidArgument("[size] cannot read '" + s +
                          "' as a byte size; write e.g. 512MiB, 6GiB or 1000000");
  };
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(value >= 0) || !std::isfinite(value)) return fail();
  std::string unit;
  for (const char* p = end; *p; ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p))) {
      unit += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    }
  }
  double scale = 0;
  // One unit per line reads as a table.
  // clang-format off
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "kib" || unit == "k") scale = 1024.0;
  else if (unit == "mib" || unit == "m") scale = 1024.0 * 1024;
  else if (unit == "gib" || unit == "g") scale = 1024.0 * 1024 * 1024;
  else if (unit == "tib" || unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb") scale = 1e3;
  else if (unit == "mb") scale = 1e6;
  else if (unit == "gb") scale = 1e9;
  else if (unit == "tb") scale = 1e12;
  else return fail();
  // clang-format on
  const double bytes = value * scale;
  if (bytes >= 1.8e19) return fail();
  return static_cast<std::size_t>(std::llround(bytes));
}

}  // namespace adacc
