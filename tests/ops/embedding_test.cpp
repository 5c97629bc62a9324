// Embedding: the fp32 kernel against the float64 reference, the reference's backward
// against finite differences, accumulation, determinism across thread counts, errors.
#include "adacc/ops/embedding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "adacc/core/context.h"
#include "reference/embedding_ref.h"
#include "reference/test_util.h"

namespace adacc {
namespace {

using test::Vec;

struct Dims {
  int B, T, C, Vp, maxT;
};

std::vector<int> random_tokens(Rng& rng, int n, int Vp) {
  std::vector<int> t(n);
  for (auto& x : t) x = static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(Vp));
  return t;
}

// Runs forward and backward (into gradients starting at g0) of kernel and reference.
void check_against_reference(const Dims& d, int threads, std::uint64_t seed) {
  SCOPED_TRACE("B=" + std::to_string(d.B) + " T=" + std::to_string(d.T) +
               " C=" + std::to_string(d.C) + " threads=" + std::to_string(threads));
  Allocator alloc;
  Context ctx(alloc, threads);
  Rng rng(seed);
  const std::vector<int> tokens = random_tokens(rng, d.B * d.T, d.Vp);
  const Vec wte = test::round_to_float(test::random_vec(rng, std::size_t(d.Vp) * d.C));
  const Vec wpe = test::round_to_float(test::random_vec(rng, std::size_t(d.maxT) * d.C));
  const Vec dout = test::round_to_float(test::random_vec(rng, std::size_t(d.B) * d.T * d.C));
  // Gradients start nonzero so that overwriting instead of adding is caught.
  const Vec dwte0 = test::round_to_float(test::random_vec(rng, wte.size()));
  const Vec dwpe0 = test::round_to_float(test::random_vec(rng, wpe.size()));

  Tensor t_tokens = test::to_int_tensor(alloc, tokens, {d.B, d.T});
  Tensor t_wte = test::to_tensor(alloc, wte, {d.Vp, d.C}, "wte");
  Tensor t_wpe = test::to_tensor(alloc, wpe, {d.maxT, d.C}, "wpe");
  Tensor t_out = Tensor::empty(alloc, {d.B, d.T, d.C}, DType::f32, MemCategory::activations, "o");
  ops::embedding_forward(ctx, t_tokens, t_wte, t_wpe, t_out);

  Vec out;
  ref::embedding_forward(tokens, wte, wpe, d.B, d.T, d.C, out);
  EXPECT_LT(test::rel_error(test::to_vec(t_out), out), 1e-7);

  Tensor t_dout = test::to_tensor(alloc, dout, {d.B, d.T, d.C}, "dout");
  Tensor t_dwte = test::to_tensor(alloc, dwte0, {d.Vp, d.C}, "dwte");
  Tensor t_dwpe = test::to_tensor(alloc, dwpe0, {d.maxT, d.C}, "dwpe");
  ops::embedding_backward(ctx, t_tokens, t_dout, t_dwte, t_dwpe);

  Vec dwte = dwte0, dwpe = dwpe0;
  ref::embedding_backward(tokens, dout, d.B, d.T, d.C, dwte, dwpe);
  EXPECT_LT(test::rel_error(test::to_vec(t_dwte), dwte), 1e-6);
  EXPECT_LT(test::rel_error(test::to_vec(t_dwpe), dwpe), 1e-6);
}

TEST(Embedding, MatchesReferenceOnEdgeAndRealisticShapes) {
  check_against_reference({1, 7, 13, 11, 9}, 2, 1);     // B=1, odd T and C, repeated tokens
  check_against_reference({3, 5, 20, 4, 5}, 2, 2);      // T == maxT, many repeats
  check_against_reference({2, 64, 96, 128, 80}, 2, 3);  // realistic
  check_against_reference({2, 33, 771, 50, 40}, 3, 4);  // C not a multiple of the bands
  check_against_reference({1, 1, 1, 1, 1}, 1, 5);
}

TEST(Embedding, BackwardIsIdenticalForAnyThreadCount) {
  const int B = 4, T = 64, C = 100, Vp = 7;  // few ids: many rows of dwte shared
  Rng rng(11);
  const std::vector<int> tokens = random_tokens(rng, B * T, Vp);
  const Vec dout = test::random_vec(rng, std::size_t(B) * T * C);
  Vec first_wte, first_wpe;
  for (int threads : {1, 2, 3, 5}) {
    Allocator alloc;
    Context ctx(alloc, threads);
    Tensor t_tokens = test::to_int_tensor(alloc, tokens, {B, T});
    Tensor t_dout = test::to_tensor(alloc, dout, {B, T, C}, "dout");
    Tensor dwte = Tensor::zeros(alloc, {Vp, C}, DType::f32, MemCategory::grads, "dwte");
    Tensor dwpe = Tensor::zeros(alloc, {T, C}, DType::f32, MemCategory::grads, "dwpe");
    ops::embedding_backward(ctx, t_tokens, t_dout, dwte, dwpe);
    if (first_wte.empty()) {
      first_wte = test::to_vec(dwte);
      first_wpe = test::to_vec(dwpe);
    } else {
      EXPECT_EQ(test::to_vec(dwte), first_wte) << "threads=" << threads;
      EXPECT_EQ(test::to_vec(dwpe), first_wpe) << "threads=" << threads;
    }
  }
}

TEST(EmbeddingReference, BackwardMatchesFiniteDifferences) {
  const int B = 2, T = 3, C = 5, Vp = 4, maxT = 4;
  Rng rng(7);
  const std::vector<int> tokens = {0, 2, 2, 3, 0, 2};
  Vec wte = test::random_vec(rng, std::size_t(Vp) * C);
  Vec wpe = test::random_vec(rng, std::size_t(maxT) * C);
  const Vec w = test::random_vec(rng, std::size_t(B) * T * C);
  auto loss = [&] {
    Vec out;
    ref::embedding_forward(tokens, wte, wpe, B, T, C, out);
    return test::dot(w, out);
  };
  Vec dwte(wte.size(), 0.0), dwpe(wpe.size(), 0.0);
  ref::embedding_backward(tokens, w, B, T, C, dwte, dwpe);
  Vec fd_wte(wte.size()), fd_wpe(wpe.size());
  for (std::size_t i = 0; i < wte.size(); ++i) fd_wte[i] = test::finite_difference(loss, wte, i);
  for (std::size_t i = 0; i < wpe.size(); ++i) fd_wpe[i] = test::finite_difference(loss, wpe, i);
  EXPECT_LT(test::rel_error(dwte, fd_wte), 1e-6);
  EXPECT_LT(test::rel_error(dwpe, fd_wpe), 1e-6);
  // Row 1 of wte (never used) and row 3 of wpe (t >= T) get no gradient.
  for (int c = 0; c < C; ++c) {
    EXPECT_EQ(dwte[1 * C + c], 0.0);
    EXPECT_EQ(dwpe[3 * C + c], 0.0);
  }
}

TEST(Embedding, RejectsTokenIdsOutsideTheVocabulary) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 1, T = 4, C = 8, Vp = 6;
  Tensor wte = Tensor::zeros(alloc, {Vp, C}, DType::f32, MemCategory::params, "wte");
  Tensor wpe = Tensor::zeros(alloc, {T, C}, DType::f32, MemCategory::params, "wpe");
  Tensor out = Tensor::zeros(alloc, {B, T, C}, DType::f32, MemCategory::activations, "out");
  Tensor dout = Tensor::zeros(alloc, {B, T, C}, DType::f32, MemCategory::activations, "dout");
  for (int bad : {-1, Vp, 1 << 30}) {
    Tensor tokens = test::to_int_tensor(alloc, {0, 1, bad, 2}, {B, T});
    test::expect_invalid([&] { ops::embedding_forward(ctx, tokens, wte, wpe, out); },
                         "embedding_forward", "token id " + std::to_string(bad));
    test::expect_invalid([&] { ops::embedding_backward(ctx, tokens, dout, wte, wpe); },
                         "embedding_backward", "token id " + std::to_string(bad));
  }
  // The largest valid id is fine.
  Tensor tokens = test::to_int_tensor(alloc, {0, Vp - 1, 3, 2}, {B, T});
  EXPECT_NO_THROW(ops::embedding_forward(ctx, tokens, wte, wpe, out));
}

TEST(Embedding, RejectsWrongShapes) {
  Allocator alloc;
  Context ctx(alloc, 2);
  const int B = 2, T = 4, C = 8, Vp = 6;
  auto f32 = [&](Shape s) {
    return Tensor::zeros(alloc, std::move(s), DType::f32, MemCategory::activations, "x");
  };
  Tensor tokens = test::to_int_tensor(alloc, std::vector<int>(B * T, 1), {B, T});
  Tensor wte = f32({Vp, C}), wpe = f32({T, C}), out = f32({B, T, C});
  test::expect_invalid(
      [&] {
        ops::embedding_forward(ctx, tokens, wte, f32({T - 1, C}), out);
      },
      "embedding_forward", "wpe");
  test::expect_invalid(
      [&] {
        ops::embedding_forward(ctx, tokens, wte, f32({T, C + 1}), out);
      },
      "embedding_forward", "wpe");
  Tensor short_out = f32({B, T, C - 1});
  test::expect_invalid([&] { ops::embedding_forward(ctx, tokens, wte, wpe, short_out); },
                       "embedding_forward", "out");
  test::expect_invalid([&] { ops::embedding_forward(ctx, tokens, f32({Vp * C}), wpe, out); },
                       "embedding_forward", "wte");
  Tensor float_tokens = f32({B, T});
  test::expect_invalid([&] { ops::embedding_forward(ctx, float_tokens, wte, wpe, out); },
                       "embedding_forward", "tokens");
  test::expect_invalid(
      [&] {
        ops::embedding_backward(ctx, tokens, f32({B, T + 1, C}), wte, wpe);
      },
      "embedding_backward", "dout");
  Tensor narrow_dwpe = f32({T, C - 2});
  test::expect_invalid([&] { ops::embedding_backward(ctx, tokens, out, wte, narrow_dwpe); },
                       "embedding_backward", "dwpe");
}

}  // namespace
}  // namespace adacc
