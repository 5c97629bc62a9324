// Linear-time, depth-bounded parsing of outside JSON (see json_input.h).
#include "adacc/core/json_input.h"

#include <algorithm>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"

namespace adacc {
namespace {

using Json = nlohmann::ordered_json;
using Object = Json::object_t;
// ordered_map is a std::vector of (key, value) pairs; its own emplace searches for the
// key first, the vector's emplace_back does not.
using ObjectItems = Object::Container;

// nlohmann's SAX interface, building an ordered_json as json_sax_dom_parser does but
// appending object keys in O(1), refusing depth beyond kMaxJsonDepth and duplicate keys.
class Builder {
 public:
  explicit Builder(Json& root) : root_(root) {}

  bool null() { return add(Json(nullptr)); }
  bool boolean(bool v) { return add(Json(v)); }
  bool number_integer(Json::number_integer_t v) { return add(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return add(Json(v)); }
  bool number_float(Json::number_float_t v, const Json::string_t&) { return add(Json(v)); }
  bool string(Json::string_t& v) { return add(Json(std::move(v))); }
  bool binary(Json::binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return open(Json::object()); }
  bool key(Json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    const ObjectItems& items = stack_.back()->get_ref<Object&>();
    if (!check_unique_keys(items)) return false;
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> "parse ..."
    if (const std::size_t close = what.find("] ");
        what.rfind("[json.", 0) == 0 && close != std::string::npos) {
      what.erase(0, close + 2);
    }
    return fail("not valid JSON: " + excerpt(what, 120));
  }

  const std::string& error() const { return error_; }

 private:
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  // Places `v` in the open container (or as the root); returns false to stop parsing.
  bool add(Json&& v) { return place(std::move(v)) != nullptr; }

  Json* place(Json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      Json::array_t& items = parent.get_ref<Json::array_t&>();
      items.push_back(std::move(v));
      return &items.back();
    }
    ObjectItems& items = parent.get_ref<Object&>();
    items.emplace_back(std::move(key_), std::move(v));
    return &items.back().second;
  }

  bool open(Json&& container) {
    if (stack_.size() >= static_cast<std::size_t>(kMaxJsonDepth)) {
      return fail("JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                  " levels of arrays and objects");
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool check_unique_keys(const ObjectItems& items) {
    if (items.size() < 2) return true;
    std::vector<std::string_view> keys;
    keys.reserve(items.size());
    for (const auto& item : items) keys.emplace_back(item.first);
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup == keys.end()) return true;
    return fail("JSON object has the key \"" + excerpt(*dup) + "\" twice");
  }

  Json& root_;
  std::vector<Json*> stack_;  // the open containers, outermost first
  Json::string_t key_;        // the key of the next value in the innermost object
  std::string error_;
};

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

nlohmann::ordered_json parse_json_input(std::string_view text, std::size_t max_bytes,
                                        std::string_view limit_name) {
  if (text.size() > max_bytes) {
    throw FormatError("JSON of " + std::to_string(text.size()) + " bytes is too large (" +
                      std::string(limit_name) + ")");
  }
  Json root;
  Builder builder(root);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    // The parser reports through parse_error; anything else is malformed input too.
    throw FormatError("not valid JSON: " + excerpt(e.what(), 120));
  }
  if (!ok) {
    throw FormatError(builder.error().empty() ? std::string("not valid JSON") : builder.error());
  }
  return root;
}

std::string describe_json(const nlohmann::ordered_json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      return "an object of " + plural(value.size(), "key", "keys");
    case Json::value_t::array:
      return "an array of " + plural(value.size(), "element", "elements");
    case Json::value_t::string:
      return "a string \"" + excerpt(value.get_ref<const Json::string_t&>()) + "\"";
    case Json::value_t::binary:
      return "binary data";
    case Json::value_t::discarded:
      return "nothing";
    default:
      return value.dump();  // null, a boolean or a number: short, and no recursion
  }
}

}  // namespace adacc
