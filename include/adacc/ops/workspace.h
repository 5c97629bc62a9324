// Workspace sizes as the allocator accounts them.
//
// A memory model that predicts a step's peak must know, for every kernel call, how many
// bytes it takes from the allocator as workspace. Each op that allocates workspace
// exposes `<op>_workspace_bytes(shapes..., threads)` in its header; those functions and
// the kernels compute the buffer shapes with the same helper, and these two functions turn
// a shape into the bytes the allocator accounts (Allocator::allocate: the request rounded
// up to Allocator::kAlignment, at least one alignment unit).
#pragma once

#include <algorithm>
#include <cstddef>

#include "adacc/core/allocator.h"
#include "adacc/core/dtype.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

// Bytes the allocator accounts for a request of `bytes` (0 counts as 1).
inline std::size_t accounted_bytes(std::size_t bytes) {
  constexpr std::size_t align = Allocator::kAlignment;
  return (std::max<std::size_t>(bytes, 1) + align - 1) / align * align;
}

// Bytes the allocator accounts for Tensor::empty/zeros(shape, dtype).
inline std::size_t accounted_tensor_bytes(const Shape& shape, DType dtype) {
  return accounted_bytes(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype));
}

}  // namespace adacc::ops
