// The *_workspace_bytes functions against the allocator: for every kernel that takes
// workspace, over edge and ragged shapes and 1 and 2 threads, the peak of the workspace
// category during one call, above its value before the call, must equal the function's
// value exactly, and the workspace must be returned afterwards. Inputs and outputs live in
// other categories, so only the kernel's own workspace is measured. A few values are also
// checked against sizes worked out by hand from the buffer layouts.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adacc/core/context.h"
#include "adacc/ops/attention.h"
#include "adacc/ops/layernorm.h"
#include "adacc/ops/lm_head_loss.h"
#include "adacc/ops/workspace.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

constexpr MemCategory kWs = MemCategory::workspace;

// Runs `call` and returns the workspace it took at its peak, above the workspace live
// before it; checks that the call gives all of it (and nothing else) back.
template <class F>
std::size_t measure_workspace(Allocator& alloc, F&& call) {
  const MemStats before = alloc.stats();
  alloc.reset_peak();
  call();
  const MemStats after = alloc.stats();
  EXPECT_EQ(after.current_of(kWs), before.current_of(kWs)) << "workspace not returned";
  EXPECT_EQ(after.total_current, before.total_current) << "the call kept memory";
  return after.peak_of(kWs) - before.current_of(kWs);
}

Tensor random_tensor(Allocator& alloc, Rng& rng, Shape shape, const char* name,
                     MemCategory category = MemCategory::activations) {
  const auto n = static_cast<std::size_t>(shape_numel(shape));
  return test::to_tensor(alloc, test::normal_vec(rng, n), std::move(shape), name, category);
}

Tensor zero_tensor(Allocator& alloc, Shape shape, const char* name,
                   MemCategory category = MemCategory::activations) {
  return Tensor::zeros(alloc, std::move(shape), DType::f32, category, name);
}

TEST(WorkspaceBytes, AccountedBytesMatchTheAllocator) {
  Allocator alloc;
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64},
                            std::size_t{65}, std::size_t{1000}, std::size_t{65535},
                            std::size_t{65536}, std::size_t{65537}, std::size_t{1} << 20}) {
    const std::size_t before = alloc.stats().current_of(kWs);
    Buffer b = alloc.allocate(bytes, kWs, "probe");
    EXPECT_EQ(alloc.stats().current_of(kWs) - before, ops::accounted_bytes(bytes)) << bytes;
  }
  EXPECT_EQ(ops::accounted_bytes(0), 64u);
  EXPECT_EQ(ops::accounted_bytes(65), 128u);
  EXPECT_EQ(ops::accounted_tensor_bytes({0, 5}, DType::f32), 64u);
  EXPECT_EQ(ops::accounted_tensor_bytes({3, 5}, DType::f32), 64u);
  EXPECT_EQ(ops::accounted_tensor_bytes({3, 6}, DType::f32), 128u);
}

TEST(WorkspaceBytes, LayerNormBackward) {
  struct Case {
    std::int64_t N, C;
  };
  for (const Case& c : {Case{1, 1}, Case{5, 13}, Case{300, 20}, Case{64, 768}}) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE("N=" + std::to_string(c.N) + " C=" + std::to_string(c.C) +
                   " threads=" + std::to_string(threads));
      Allocator alloc;
      Context ctx(alloc, threads);
      Rng rng(7);
      // Workspace that is live around the call (as in a step): measured from above it.
      Tensor outer = zero_tensor(alloc, {17}, "outer", kWs);
      const Tensor inp = random_tensor(alloc, rng, {c.N, c.C}, "inp");
      const Tensor dout = random_tensor(alloc, rng, {c.N, c.C}, "dout");
      const Tensor weight = random_tensor(alloc, rng, {c.C}, "w", MemCategory::params);
      const Tensor bias = random_tensor(alloc, rng, {c.C}, "b", MemCategory::params);
      Tensor out = zero_tensor(alloc, {c.N, c.C}, "out");
      Tensor mean = zero_tensor(alloc, {c.N}, "mean");
      Tensor rstd = zero_tensor(alloc, {c.N}, "rstd");
      Tensor dinp = zero_tensor(alloc, {c.N, c.C}, "dinp");
      Tensor dw = zero_tensor(alloc, {c.C}, "dw", MemCategory::grads);
      Tensor db = zero_tensor(alloc, {c.C}, "db", MemCategory::grads);
      EXPECT_EQ(
          measure_workspace(
              alloc, [&] { ops::layernorm_forward(ctx, inp, weight, bias, out, mean, rstd); }),
          0u);
      EXPECT_EQ(
          measure_workspace(
              alloc,
              [&] { ops::layernorm_backward(ctx, dout, inp, weight, mean, rstd, dinp, dw, db); }),
          ops::layernorm_backward_workspace_bytes(c.C, ctx.threads()));
    }
  }
  // (threads,2,C) f32 rounded up to 64 bytes.
  EXPECT_EQ(ops::layernorm_backward_workspace_bytes(13, 2), 256u);  // 208 B
  EXPECT_EQ(ops::layernorm_backward_workspace_bytes(768, 2), 12288u);
  EXPECT_EQ(ops::layernorm_backward_workspace_bytes(1, 1), 64u);
}

struct AttnCase {
  int B, T, C, H;
};

std::string attn_trace(const AttnCase& c, int threads) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" + std::to_string(c.C) +
         " H=" + std::to_string(c.H) + " threads=" + std::to_string(threads);
}

// T = 1, odd T inside one tile, exactly one tile, one past a tile, several ragged tiles;
// hs not a multiple of 16; one head with two threads (fewer heads than threads); no rows
// and no batch (nothing to do, no workspace).
const std::vector<AttnCase> kAttnCases = {
    {1, 1, 8, 2},    {2, 13, 24, 3},  {1, 64, 32, 2}, {1, 65, 20, 4},
    {2, 130, 48, 2}, {1, 200, 16, 1}, {2, 0, 8, 2},   {0, 5, 8, 2},
};

TEST(WorkspaceBytes, AttentionNaive) {
  for (const AttnCase& c : kAttnCases) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(attn_trace(c, threads));
      Allocator alloc;
      Context ctx(alloc, threads);
      Rng rng(11);
      Tensor outer = zero_tensor(alloc, {5}, "outer", kWs);
      const Tensor qkv = random_tensor(alloc, rng, {c.B, c.T, 3 * c.C}, "qkv");
      const Tensor dout = random_tensor(alloc, rng, {c.B, c.T, c.C}, "dout");
      Tensor out = zero_tensor(alloc, {c.B, c.T, c.C}, "out");
      Tensor probs = zero_tensor(alloc, {c.B, c.H, c.T, c.T}, "probs");
      Tensor dqkv = zero_tensor(alloc, {c.B, c.T, 3 * c.C}, "dqkv", MemCategory::grads);
      EXPECT_EQ(measure_workspace(alloc,
                                  [&] { ops::attention_naive_forward(ctx, qkv, c.H, out, probs); }),
                ops::attention_naive_forward_workspace_bytes(c.B, c.T, c.C, c.H, ctx.threads()));
      EXPECT_EQ(
          measure_workspace(
              alloc, [&] { ops::attention_naive_backward(ctx, dout, qkv, probs, c.H, dqkv); }),
          ops::attention_naive_backward_workspace_bytes(c.B, c.T, c.C, c.H, ctx.threads()));
    }
  }
}

TEST(WorkspaceBytes, AttentionFlash) {
  for (const AttnCase& c : kAttnCases) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(attn_trace(c, threads));
      Allocator alloc;
      Context ctx(alloc, threads);
      Rng rng(13);
      Tensor outer = zero_tensor(alloc, {5}, "outer", kWs);
      const Tensor qkv = random_tensor(alloc, rng, {c.B, c.T, 3 * c.C}, "qkv");
      const Tensor dout = random_tensor(alloc, rng, {c.B, c.T, c.C}, "dout");
      Tensor out = zero_tensor(alloc, {c.B, c.T, c.C}, "out");
      Tensor lse = zero_tensor(alloc, {c.B, c.H, c.T}, "lse");
      Tensor dqkv = zero_tensor(alloc, {c.B, c.T, 3 * c.C}, "dqkv", MemCategory::grads);
      EXPECT_EQ(
          measure_workspace(alloc, [&] { ops::attention_flash_forward(ctx, qkv, c.H, out, lse); }),
          ops::attention_flash_forward_workspace_bytes(c.B, c.T, c.C, c.H, ctx.threads()));
      EXPECT_EQ(
          measure_workspace(
              alloc, [&] { ops::attention_flash_backward(ctx, dout, qkv, out, lse, c.H, dqkv); }),
          ops::attention_flash_backward_workspace_bytes(c.B, c.T, c.C, c.H, ctx.threads()));
    }
  }
}

// Sizes worked out by hand from the buffer lists in attention_naive.cpp and
// attention_flash.cpp: B=1, T=1, C=8, 2 heads of hs=4, 2 threads (one head each). Every
// buffer is rounded up to 16 floats; a key-block pack is kBlock*hs = 256 floats.
TEST(WorkspaceBytes, AttentionByHand) {
  // naive fwd: qs 16 + kt 256 + vp 16 = 288 floats per thread.
  EXPECT_EQ(ops::attention_naive_forward_workspace_bytes(1, 1, 8, 2, 2), 2u * 288 * 4);
  // naive bwd: 6 x 16 (qs kp dop dq dk dv) + vt 256 + dp 64*padded_ld(1)=64*32.
  EXPECT_EQ(ops::attention_naive_backward_workspace_bytes(1, 1, 8, 2, 2),
            2u * (6 * 16 + 256 + 64 * 32) * 4);
  // flash fwd: qt 256 + kp, vp 16 + st 4096 + o 256 + m, l 64.
  EXPECT_EQ(ops::attention_flash_forward_workspace_bytes(1, 1, 8, 2, 2),
            2u * (256 + 2 * 16 + 4096 + 256 + 2 * 64) * 4);
  // flash bwd: 6 x 16 (qs kp dop dq dk dv) + kt, vt 256 + dd 16 + s, dp 4096.
  EXPECT_EQ(ops::attention_flash_backward_workspace_bytes(1, 1, 8, 2, 2),
            2u * (6 * 16 + 2 * 256 + 16 + 2 * 4096) * 4);
  // One head: one slice whatever the thread count.
  EXPECT_EQ(ops::attention_flash_backward_workspace_bytes(1, 1, 8, 1, 2),
            ops::attention_flash_backward_workspace_bytes(1, 1, 8, 1, 1));
  EXPECT_EQ(ops::attention_naive_forward_workspace_bytes(1, 0, 8, 2, 2), 0u);
  test::expect_invalid([] { ops::attention_naive_forward_workspace_bytes(1, 4, 10, 3, 1); },
                       "attention_naive_forward_workspace_bytes", "heads=3");
}

TEST(WorkspaceBytes, LmHeadLoss) {
  struct Case {
    std::int64_t B, T;
    int vocab, Vp;
  };
  // N = 0, 1, odd, one chunk exactly, one past a chunk, several ragged chunks; vocab a
  // multiple of 16 or not.
  const std::int64_t C = 16;
  for (const Case& c :
       {Case{1, 0, 37, 40}, Case{1, 1, 37, 40}, Case{1, 13, 64, 64}, Case{2, 128, 37, 48},
        Case{1, 257, 5, 16}, Case{2, 150, 37, 40}, Case{3, 200, 1, 1}}) {
    for (int threads : {1, 2}) {
      const std::int64_t N = c.B * c.T;
      SCOPED_TRACE("N=" + std::to_string(N) + " vocab=" + std::to_string(c.vocab) +
                   " threads=" + std::to_string(threads));
      Allocator alloc;
      Context ctx(alloc, threads);
      Rng rng(17);
      Tensor outer = zero_tensor(alloc, {3}, "outer", kWs);
      const Tensor inp = random_tensor(alloc, rng, {c.B, c.T, C}, "inp");
      const Tensor wte = random_tensor(alloc, rng, {c.Vp, C}, "wte", MemCategory::params);
      std::vector<int> tg(static_cast<std::size_t>(N));
      for (std::size_t i = 0; i < tg.size(); ++i) tg[i] = static_cast<int>(i * 7 % c.vocab);
      const Tensor targets = test::to_int_tensor(alloc, tg, {c.B, c.T}, "targets");
      Tensor losses = zero_tensor(alloc, {c.B, c.T}, "losses");
      Tensor dinp = zero_tensor(alloc, {c.B, c.T, C}, "dinp");
      Tensor dwte = zero_tensor(alloc, {c.Vp, C}, "dwte", MemCategory::grads);
      const std::size_t expected = ops::lm_head_loss_workspace_bytes(N, c.vocab);
      EXPECT_EQ(
          measure_workspace(
              alloc, [&] { ops::lm_head_loss_forward(ctx, inp, wte, targets, c.vocab, losses); }),
          expected);
      EXPECT_EQ(measure_workspace(alloc,
                                  [&] {
                                    ops::lm_head_loss_forward_backward(ctx, inp, wte, targets,
                                                                       c.vocab, 1.0f / N, losses,
                                                                       dinp, dwte);
                                  }),
                expected);
    }
  }
  // (min(N,256), vocab rounded up to 16) f32.
  EXPECT_EQ(ops::lm_head_loss_workspace_bytes(0, 37), 0u);
  EXPECT_EQ(ops::lm_head_loss_workspace_bytes(1, 37), 192u);
  EXPECT_EQ(ops::lm_head_loss_workspace_bytes(300, 37), 256u * 48 * 4);
  EXPECT_EQ(ops::lm_head_loss_workspace_bytes(4096, 50257), 256u * 50272 * 4);
}

}  // namespace
}  // namespace adacc
