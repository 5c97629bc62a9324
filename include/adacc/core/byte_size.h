// Byte sizes written by people: "123", "64KiB", "1.5GiB", "512 MB".
#pragma once

#include <cstddef>
#include <string_view>

namespace adacc {

// Parses a non-negative size with an optional unit: B, KiB, MiB, GiB, TiB (powers of
// 1024) or KB, MB, GB, TB (powers of 1000); case-insensitive, spaces allowed before the
// unit. Throws InvalidArgument naming the text otherwise.
std::size_t parse_byte_size(std::string_view text);

}  // namespace adacc
