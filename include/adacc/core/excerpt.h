// Text from outside (a file's key, a user's spec) quoted in an error message: one short
// line whatever the input holds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace adacc {

// `text` for a one-line message: control characters shown as \n, \t or \xNN, and, when
// longer than `max_chars`, its first max_chars bytes (not cutting a UTF-8 sequence)
// followed by "... (N bytes)". The result is at most about max_chars * 4 + 24 bytes.
std::string excerpt(std::string_view text, std::size_t max_chars = 40);

}  // namespace adacc
