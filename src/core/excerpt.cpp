// Bounded, one-line quotations of outside text (see excerpt.h).
#include "adacc/core/excerpt.h"

#include <cstdio>

namespace adacc {

std::string excerpt(std::string_view text, std::size_t max_chars) {
  std::string out;
  std::size_t boundary = 0;  // out.size() where the last character (not a UTF-8 tail) began
  std::size_t i = 0;
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    char piece[8] = {static_cast<char>(c), '\0'};
    if (c == '\n') {
      std::snprintf(piece, sizeof piece, "\\n");
    } else if (c == '\t') {
      std::snprintf(piece, sizeof piece, "\\t");
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(piece, sizeof piece, "\\x%02X", c);
    }
    const std::string_view shown(piece);  // c is never 0 here: 0 is escaped
    // The limit counts what is shown: escapes take up to 4 characters each.
    if (out.size() + shown.size() > max_chars) break;
    if ((c & 0xC0) != 0x80) boundary = out.size();
    out += shown;
  }
  if (i < text.size()) {
    // Do not cut a UTF-8 sequence: drop its first bytes too.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) out.resize(boundary);
    out += "... (" + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

}  // namespace adacc
