// Tensor: a shape and a dtype over (part of) an allocator-owned Buffer.
//
// Tensors share their storage: copies and views refer to the same bytes, which return
// to the allocator when the last Tensor referring to them goes away. Data is dense and
// row-major. Shape letters used across adacc: B batch, T sequence length, C channels,
// H heads, V vocabulary, Vp padded vocabulary, L layers, N = B*T rows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/core/dtype.h"
#include "adacc/core/error.h"

namespace adacc {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& shape);
// "(4,64,768)"
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised storage for `shape` from `allocator`, accounted to `category`.
  static Tensor empty(Allocator& allocator, Shape shape, DType dtype, MemCategory category,
                      std::string_view name);
  static Tensor zeros(Allocator& allocator, Shape shape, DType dtype, MemCategory category,
                      std::string_view name);

  // A tensor of `shape` over this one's storage starting `offset` elements in.
  Tensor view(std::int64_t offset, Shape shape, std::string_view name = {}) const;
  // The same elements with another shape of equal numel.
  Tensor reshape(Shape shape) const;

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Size of dimension i; negative i counts from the back.
  std::int64_t dim(int i) const;
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu; }
  MemCategory category() const { return storage_->category(); }
  const std::string& name() const { return name_; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_bytes_; }
  // Typed pointer; throws InvalidArgument if T does not match the dtype.
  template <class T>
  T* data() const {
    if (dtype_of<T>() != dtype_) throw_dtype_mismatch(dtype_of<T>());
    return static_cast<T*>(raw());
  }

  void zero();
  // "(4,64,768) f32 'ln1'"
  std::string describe() const;

 private:
  [[noreturn]] void throw_dtype_mismatch(DType wanted) const;

  std::shared_ptr<Buffer> storage_;
  std::size_t offset_bytes_ = 0;
  Shape shape_;
  DType dtype_ = DType::f32;
  std::string name_;
};

}  // namespace adacc
