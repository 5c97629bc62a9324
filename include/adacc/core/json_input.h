// JSON from outside (a safetensors header, checkpoint.json, a plan file): parsed in time
// linear in its size, with bounded nesting and size, and described in error messages in
// one short line.
//
// nlohmann's own parse into ordered_json searches every object linearly for each new key
// (quadratic in an object's size), and dump() of a deeply nested value recurses once per
// level (a stack overflow for a hostile 100,000-deep file). parse_json_input builds the
// same ordered_json (keys in the file's order) through a SAX handler that appends keys and
// checks for duplicates once per object, by sorting.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace adacc {

// Deepest nesting of arrays and objects accepted. adacc's own files nest at most 4 levels
// (safetensors: header > tensor > data_offsets); 64 leaves room for anything a person
// writes by hand.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` (a whole JSON document). Throws FormatError with a one-line message of at
// most a few hundred bytes and no layer tag (callers add theirs and the file name) if
// the text is longer than `max_bytes` (checked before parsing; the message names the
// limit, described as `limit_name`, e.g. "plan files are limited to 64 MiB"), is not valid
// JSON, nests deeper than kMaxJsonDepth, or has an object with a key given twice.
nlohmann::ordered_json parse_json_input(std::string_view text, std::size_t max_bytes,
                                        std::string_view limit_name);

// `value` for an error message, without recursion and in at most about 80 bytes:
// "null", "true", "12.5", "a string \"abc...\"", "an array of 3 elements",
// "an object of 2 keys".
std::string describe_json(const nlohmann::ordered_json& value);

}  // namespace adacc
