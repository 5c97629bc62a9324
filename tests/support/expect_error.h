// Checks on the errors code throws: the exception's type, that its message is one short
// line (the CLI prints it as the user's one line of stderr), and what the message names.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <initializer_list>
#include <string>

#include "adacc/core/error.h"

namespace adacc::test {

// Runs f expecting it to throw E. Returns the message, after checking that it is one line
// of at most max_chars characters; returns "(no error)" when f returns (which then fails
// the caller's checks on the message) and records a failure when another exception
// escapes.
template <class E, class F>
std::string error_of(F&& f, std::size_t max_chars = 400) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_LE(msg.size(), max_chars) << msg.substr(0, 500);
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg.substr(0, 500);
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << std::string(e.what()).substr(0, 300);
    return e.what();
  }
  return "(no error)";
}

// Runs f expecting it to throw E, one line, whose message contains every one of `parts`.
template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> parts, std::size_t max_chars = 400) {
  const std::string msg = error_of<E>(std::forward<F>(f), max_chars);
  for (const std::string& p : parts) {
    EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
  }
}

// Runs f expecting InvalidArgument whose message names the op ("[op]") and contains
// `part` (when given).
template <class F>
void expect_invalid(F&& f, const std::string& op, const std::string& part = {}) {
  expect_error<InvalidArgument>(std::forward<F>(f), {"[" + op + "]", part});
}

}  // namespace adacc::test

// EXPECT_ERROR(Type, statement, needle): `statement` throws Type, one line, naming `needle`.
#define EXPECT_ERROR(Type, statement, needle) \
  ::adacc::test::expect_error<Type>([&] { statement; }, {needle})
