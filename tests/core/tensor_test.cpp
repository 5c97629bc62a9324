// Tensor: allocation through the allocator, views, reshape, typed access, errors.
#include "adacc/core/tensor.h"

#include <gtest/gtest.h>

#include "adacc/core/context.h"
#include "adacc/core/rng.h"

namespace adacc {
namespace {

TEST(Tensor, AllocatesThroughAllocatorAndSharesStorage) {
  Allocator alloc;
  {
    Tensor t = Tensor::zeros(alloc, {2, 3, 4}, DType::f32, MemCategory::activations, "x");
    EXPECT_EQ(t.numel(), 24);
    EXPECT_EQ(t.nbytes(), 96u);
    EXPECT_EQ(t.dim(-1), 4);
    EXPECT_EQ(t.data<float>()[23], 0.0f);
    Tensor v = t.view(12, {3, 4}, "x1");
    v.data<float>()[0] = 5.0f;
    EXPECT_EQ(t.data<float>()[12], 5.0f);
    t = Tensor();
    // The view keeps the storage alive.
    EXPECT_EQ(alloc.stats().current_of(MemCategory::activations), 128u);
  }
  EXPECT_EQ(alloc.stats().total_current, 0u);
}

TEST(Tensor, RejectsBadViewsShapesAndTypes) {
  Allocator alloc;
  Tensor t = Tensor::empty(alloc, {4, 4}, DType::f32, MemCategory::workspace, "t");
  EXPECT_THROW(t.view(10, {2, 4}), InvalidArgument);
  EXPECT_THROW(t.reshape({3, 5}), InvalidArgument);
  EXPECT_THROW(t.data<std::int32_t>(), InvalidArgument);
  EXPECT_THROW(t.dim(2), InvalidArgument);
  EXPECT_THROW(Tensor::empty(alloc, {-1}, DType::f32, MemCategory::workspace, "neg"),
               InvalidArgument);
  EXPECT_EQ(t.reshape({16}).dim(0), 16);
  EXPECT_EQ(shape_str({4, 64, 768}), "(4,64,768)");
}

TEST(Rng, IsDeterministicAndRestorable) {
  Rng a(42), b(42);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  const Rng::State s = a.state();
  const float x = a.normal();
  a.set_state(s);
  EXPECT_EQ(a.normal(), x);
  // Moments of the normal sampler.
  double sum = 0, sum2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = b.normal();
    sum += z;
    sum2 += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
  for (int i = 0; i < 1000; ++i) {
    const float u = b.uniform();
    EXPECT_GE(u, 0.0f);
    EXPECT_LT(u, 1.0f);
  }
}

TEST(Context, CarriesAllocatorAndThreads) {
  Allocator alloc;
  Context ctx(alloc, 1, 7);
  EXPECT_EQ(&ctx.allocator(), &alloc);
  EXPECT_EQ(ctx.threads(), 1);
  Rng r(7);
  EXPECT_EQ(ctx.rng().next_u64(), r.next_u64());
}

}  // namespace
}  // namespace adacc
