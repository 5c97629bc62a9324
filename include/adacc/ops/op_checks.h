// Argument checks shared by the ops of every backend. Each failed check throws
// InvalidArgument with the op's name, what was expected and what was given, e.g.
// "[layernorm] weight must be (768) but is (1024) f32 'ln1w'".
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "adacc/core/error.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

[[noreturn]] inline void fail(std::string_view op, const std::string& message) {
  throw InvalidArgument("[" + std::string(op) + "] " + message);
}

inline void require(bool condition, std::string_view op, const std::string& message) {
  if (!condition) fail(op, message);
}

// `t` is defined, f32 (or `dtype`) and has exactly `shape`.
inline void require_tensor(std::string_view op, std::string_view what, const Tensor& t,
                           const Shape& shape, DType dtype = DType::f32) {
  if (!t.defined()) fail(op, std::string(what) + " is missing");
  if (t.shape() != shape || t.dtype() != dtype) {
    fail(op, std::string(what) + " must be " + shape_str(shape) + " " +
                 std::string(dtype_name(dtype)) + " but is " + t.describe());
  }
}

// All given tensors that are defined live on the CPU.
inline void require_cpu(std::string_view op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (t->defined() && t->device() != Device::cpu) {
      fail(op, t->describe() + " is on " + std::string(device_name(t->device())) +
                   " but this op runs on the cpu");
    }
  }
}

}  // namespace adacc::ops
