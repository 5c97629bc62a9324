// Text from outside (a file's key, a user's spec) quoted in an error message: one short
// line whatever the input holds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace adacc {

// `text` for a one-line message: control characters shown as \n, \t or \xNN and, when
// that is longer than `max_chars`, as much of it as fits in max_chars (not cutting an
// escape or a UTF-8 sequence) followed by "... (N bytes)". The result is at most
// max_chars + 30 bytes.
std::string excerpt(std::string_view text, std::size_t max_chars = 40);

}  // namespace adacc
