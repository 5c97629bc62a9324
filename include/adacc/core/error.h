// Typed errors of adacc. Library code throws these; only the CLI's main turns them
// into a one-line message and an exit code. Messages name the thing and the numbers,
// e.g. "[layernorm] weight C=768 but input is (4,64,1024)", plus a hint where the user
// can act.
#pragma once

#include <stdexcept>
#include <string>

namespace adacc {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A shape, value or option that does not fit what the callee requires.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// An allocation would exceed the allocator's byte budget (or the system refused it).
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

// No plan fits the requested budget.
class PlanInfeasible : public Error {
 public:
  using Error::Error;
};

// A file's content is not what its format requires (corrupt, truncated, wrong magic).
class FormatError : public Error {
 public:
  using Error::Error;
};

// A backend library (oneDNN, cuBLAS, CBC, the OS) reported a failure.
class BackendError : public Error {
 public:
  using Error::Error;
};

// Training produced NaN or inf (in the loss or the gradients) too often to go on.
class NumericalError : public Error {
 public:
  using Error::Error;
};

}  // namespace adacc
