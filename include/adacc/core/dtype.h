// Element types and devices a Tensor can have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace adacc {

enum class DType : std::uint8_t { f32, bf16, f16, int8, uint8, int32 };

enum class Device : std::uint8_t { cpu, cuda };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::string_view device_name(Device device);

// The DType matching a C++ element type, for typed access checks.
template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
  return DType::int8;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::uint8;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::int32;
}

}  // namespace adacc
