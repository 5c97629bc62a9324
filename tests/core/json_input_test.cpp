// Outside JSON: nesting beyond kMaxJsonDepth and oversized texts are refused with one
// short line (no stack overflow at 100,000 levels), objects of 100,000 keys read in linear
// time and keep their order, duplicate keys are refused, and values and texts are
// described in bounded lines.
#include "adacc/core/json_input.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"
#include "support/expect_error.h"

namespace adacc {
namespace {

std::string nested(int depth, const std::string& inner = "1") {
  return std::string(static_cast<std::size_t>(depth), '[') + inner +
         std::string(static_cast<std::size_t>(depth), ']');
}

// The message parse_json_input throws for `text`: one line.
std::string error_of(std::string_view text, std::size_t max_bytes = 1 << 30) {
  return test::error_of<FormatError>(
      [&] { parse_json_input(text, max_bytes, "the limit of the test"); });
}

TEST(JsonInput, ParsesDocumentsInTheFilesOrder) {
  const nlohmann::ordered_json j =
      parse_json_input(R"({"b": [1, 2.5, "x", null, true], "a": {"z": 1, "y": -2}})", 100, "");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.dump(), R"({"b":[1,2.5,"x",null,true],"a":{"z":1,"y":-2}})");
  EXPECT_EQ(j.begin().key(), "b");
  EXPECT_EQ(parse_json_input("7", 1, "").get<int>(), 7);
}

TEST(JsonInput, NestingUpToTheLimitIsReadAndBeyondIsRefused) {
  EXPECT_EQ(parse_json_input(nested(kMaxJsonDepth), 1 << 20, "").dump(), nested(kMaxJsonDepth));
  const std::string deeper = error_of(nested(kMaxJsonDepth + 1));
  EXPECT_NE(deeper.find("nested deeper than 64"), std::string::npos) << deeper;
  // Objects count as levels as well as arrays.
  std::string objects;
  for (int i = 0; i <= kMaxJsonDepth; ++i) objects += "{\"k\":";
  objects += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_NE(error_of(objects).find("nested deeper"), std::string::npos);
}

TEST(JsonInput, HundredThousandLevelsAreRefusedInOneShortLine) {
  for (const std::string& text : {nested(100000), nested(100000, "") + "x", "[" + nested(100000)}) {
    const std::string msg = error_of(text);
    EXPECT_NE(msg.find("nested deeper"), std::string::npos) << msg.substr(0, 300);
    EXPECT_LT(msg.size(), 300u);
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(JsonInput, OversizedTextIsRefusedBeforeParsingNamingTheLimit) {
  const std::string msg = error_of("[1, 2, 3]", 5);
  EXPECT_NE(msg.find("9 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the limit of the test"), std::string::npos) << msg;
  EXPECT_EQ(parse_json_input("[1, 2, 3]", 9, "").size(), 3u);
}

TEST(JsonInput, SyntaxErrorsAreOneShortLineEvenAfterAHugeToken) {
  const std::string huge_string = "[\"" + std::string(1 << 20, 'a') + "\n\"]";
  for (const std::string& text : {std::string("{\"a\": }"), std::string(""), huge_string,
                                  std::string("[1e999]"), std::string("[1] [2]")}) {
    const std::string msg = error_of(text);
    EXPECT_EQ(msg.rfind("not valid JSON", 0), 0u) << msg.substr(0, 300);
    EXPECT_LT(msg.size(), 300u);
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(JsonInput, DuplicateKeysAreRefused) {
  EXPECT_NE(error_of(R"({"a": 1, "b": 2, "a": 3})").find("\"a\" twice"), std::string::npos);
  EXPECT_NE(error_of(R"([{"x": {"q": 1, "q": 1}}])").find("\"q\" twice"), std::string::npos);
  EXPECT_EQ(parse_json_input(R"([{"a": 1}, {"a": 2}])", 100, "").size(), 2u);
}

TEST(JsonInput, ManyKeysAreReadInLinearTime) {
  // nlohmann's ordered_json takes about 10 s for 100,000 keys (a search per key).
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) {
    if (i) text += ",";
    text += "\"key" + std::to_string(i) + "\":" + std::to_string(i);
  }
  text += "}";
  const auto start = std::chrono::steady_clock::now();
  const nlohmann::ordered_json j = parse_json_input(text, text.size(), "");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 3.0);
  ASSERT_EQ(j.size(), 100000u);
  EXPECT_EQ(j.begin().key(), "key0");
  EXPECT_EQ((--j.end()).key(), "key99999");
  EXPECT_EQ(j.at("key4242").get<int>(), 4242);
  // The last of many keys given twice is still found.
  text.back() = ',';
  text += "\"key99999\":0}";
  EXPECT_NE(error_of(text).find("key99999\" twice"), std::string::npos);
}

TEST(JsonInput, DescriptionsAreShortWhateverTheValue) {
  using Json = nlohmann::ordered_json;
  EXPECT_EQ(describe_json(Json::parse(R"({"a": 1, "b": 2})")), "an object of 2 keys");
  EXPECT_EQ(describe_json(Json::parse("[[1]]")), "an array of 1 element");
  EXPECT_EQ(describe_json(Json::parse("-3")), "-3");
  EXPECT_EQ(describe_json(Json::parse("null")), "null");
  EXPECT_EQ(describe_json(Json::parse("\"abc\"")), "a string \"abc\"");
  const std::string long_text(100000, 'x');
  const std::string d = describe_json(Json(long_text + "\n"));
  EXPECT_LT(d.size(), 80u) << d;
  EXPECT_NE(d.find("(100001 bytes)"), std::string::npos) << d;
  // A value as deep as the parser allows is described without recursion.
  EXPECT_EQ(describe_json(parse_json_input(nested(kMaxJsonDepth), 1 << 20, "")),
            "an array of 1 element");
}

TEST(Excerpt, ShowsControlCharactersAndCutsLongTextAtACharacter) {
  EXPECT_EQ(excerpt("plain"), "plain");
  EXPECT_EQ(excerpt("a\nb\tc\x01"), "a\\nb\\tc\\x01");
  EXPECT_EQ(excerpt(std::string(50, 'y'), 10), "yyyyyyyyyy... (50 bytes)");
  // "é" is two bytes; a cut inside it backs off to before it.
  EXPECT_EQ(excerpt("abcdefghi\xC3\xA9xyz", 10), "abcdefghi... (14 bytes)");
  EXPECT_EQ(excerpt("abcdefgh\xC3\xA9xyz", 10), "abcdefgh\xC3\xA9... (13 bytes)");
  // The limit counts escapes as shown (found by fuzzing: 200 DEL bytes became 800
  // characters), and never cuts one.
  EXPECT_EQ(excerpt(std::string(1000, '\x7F'), 10), "\\x7F\\x7F... (1000 bytes)");
  EXPECT_EQ(excerpt(std::string(3, '\0'), 40), "\\x00\\x00\\x00");
  EXPECT_LE(excerpt(std::string(100000, '\n')).size(), 40u + 30u);
}

}  // namespace
}  // namespace adacc
