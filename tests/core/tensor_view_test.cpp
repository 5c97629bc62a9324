// Tensor::view at the end of its storage: a view that ends exactly there fits, one that
// reaches one element further is refused (it would read past the allocation).
#include <gtest/gtest.h>

#include "adacc/core/allocator.h"
#include "adacc/core/error.h"
#include "adacc/core/tensor.h"

namespace adacc {
namespace {

TEST(TensorView, AViewEndingAtTheLastElementFits) {
  Allocator alloc;
  // 16 floats: exactly the accounted 64 bytes, so the storage ends at the last element.
  Tensor t = Tensor::zeros(alloc, {16}, DType::f32, MemCategory::activations, "t");
  const Tensor tail = t.view(12, {4});
  EXPECT_EQ(tail.numel(), 4);
  EXPECT_EQ(tail.data<float>(), t.data<float>() + 12);
  EXPECT_NO_THROW(t.view(0, {4, 4}));
}

TEST(TensorView, AViewOneElementPastTheEndIsRefused) {
  Allocator alloc;
  Tensor t = Tensor::zeros(alloc, {16}, DType::f32, MemCategory::activations, "t");
  EXPECT_THROW(t.view(13, {4}), InvalidArgument);
  EXPECT_THROW(t.view(0, {17}), InvalidArgument);
  // Views of views count from the view's own start.
  const Tensor back = t.view(8, {8});
  EXPECT_NO_THROW(back.view(4, {4}));
  EXPECT_THROW(back.view(5, {4}), InvalidArgument);
}

}  // namespace
}  // namespace adacc
