// Tensor construction, views and descriptions (see tensor.h).
#include "adacc/core/tensor.h"

#include <cstring>

namespace adacc {

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + ")";
}

Tensor Tensor::empty(Allocator& allocator, Shape shape, DType dtype, MemCategory category,
                     std::string_view name) {
  for (std::int64_t d : shape) {
    if (d < 0) {
      throw InvalidArgument("[tensor] '" + std::string(name) + "' has a negative dimension " +
                            shape_str(shape));
    }
  }
  Tensor t;
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  t.storage_ = std::make_shared<Buffer>(allocator.allocate(bytes, category, name));
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.name_ = name;
  return t;
}

Tensor Tensor::zeros(Allocator& allocator, Shape shape, DType dtype, MemCategory category,
                     std::string_view name) {
  Tensor t = empty(allocator, std::move(shape), dtype, category, name);
  t.zero();
  return t;
}

Tensor Tensor::view(std::int64_t offset, Shape shape, std::string_view name) const {
  const std::int64_t n = shape_numel(shape);
  const std::size_t elem = dtype_size(dtype_);
  const std::size_t end_bytes = offset_bytes_ + static_cast<std::size_t>(offset + n) * elem;
  if (!defined() || offset < 0 || end_bytes > storage_->bytes()) {
    throw InvalidArgument("[tensor] view " + shape_str(shape) + " at offset " +
                          std::to_string(offset) + " does not fit in " + describe());
  }
  Tensor t = *this;
  t.offset_bytes_ = offset_bytes_ + static_cast<std::size_t>(offset) * elem;
  t.shape_ = std::move(shape);
  if (!name.empty()) t.name_ = name;
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel()) {
    throw InvalidArgument("[tensor] cannot reshape " + describe() + " to " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

std::int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int k = i < 0 ? i + n : i;
  if (k < 0 || k >= n) {
    throw InvalidArgument("[tensor] dimension " + std::to_string(i) + " of " + describe());
  }
  return shape_[static_cast<std::size_t>(k)];
}

void Tensor::zero() {
  if (defined()) std::memset(raw(), 0, nbytes());
}

std::string Tensor::describe() const {
  return shape_str(shape_) + " " + std::string(dtype_name(dtype_)) + " '" + name_ + "'";
}

void Tensor::throw_dtype_mismatch(DType wanted) const {
  throw InvalidArgument("[tensor] " + describe() + " accessed as " +
                        std::string(dtype_name(wanted)));
}

}  // namespace adacc
