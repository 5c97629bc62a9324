// Byte sizes written by people: "123", "64KiB", "1.5GiB", "512 MB".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace adacc {

// The largest size parse_byte_size returns: 2^63 - 1 bytes (8 EiB), so that every size
// also fits in std::int64_t.
inline constexpr std::size_t kMaxByteSize = INT64_MAX;

// Parses a non-negative size with an optional unit: B, KiB, MiB, GiB, TiB (powers of
// 1024) or KB, MB, GB, TB (powers of 1000); case-insensitive, spaces allowed before the
// unit. Whole numbers are exact; fractions are rounded to the nearest byte. Throws
// InvalidArgument naming the text if it is not such a size or is above kMaxByteSize.
std::size_t parse_byte_size(std::string_view text);

}  // namespace adacc
