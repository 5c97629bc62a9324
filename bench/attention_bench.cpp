// Causal attention on GPT-2 124M shapes (B=4, C=768, H=12; T = 64, 256, 1024): forward
// and backward of the naive and the flash form, with the rate of the causal matmul work
// (forward 2 matmuls of B*H*T(T+1)/2*hs multiply-adds; backward 4, the flash backward
// also recomputes the scores, counted as a 5th) next to ops::sgemm on a GPT-2 linear
// layer (1024,768)x(768,2304) measured in the same run as the baseline.
//
//   ./attention_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>

#include "adacc/core/allocator.h"
#include "adacc/core/context.h"
#include "adacc/core/rng.h"
#include "adacc/core/tensor.h"
#include "adacc/ops/attention.h"
#include "adacc/ops/matmul.h"

namespace {

using namespace adacc;

constexpr int kB = 4, kC = 768, kH = 12;

Tensor random_tensor(Allocator& alloc, Shape shape, Rng& rng, MemCategory cat) {
  Tensor t = Tensor::empty(alloc, std::move(shape), DType::f32, cat, "x");
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = rng.normal();
  return t;
}

// Multiply-adds of one causal T x T x hs matmul over all heads, times 2 (FLOPs).
double causal_flops(int T) {
  return 2.0 * kB * kH * (static_cast<double>(T) * (T + 1) / 2) * (kC / kH);
}

enum Which { naive_fwd, naive_bwd, flash_fwd, flash_bwd };

void BM_attention(benchmark::State& state) {
  const auto which = static_cast<Which>(state.range(0));
  const int T = static_cast<int>(state.range(1));
  Allocator alloc;
  Context ctx(alloc);
  Rng rng(1);
  const Tensor qkv = random_tensor(alloc, {kB, T, 3 * kC}, rng, MemCategory::activations);
  const Tensor dout = random_tensor(alloc, {kB, T, kC}, rng, MemCategory::activations);
  Tensor out = Tensor::empty(alloc, {kB, T, kC}, DType::f32, MemCategory::activations, "out");
  Tensor dqkv = Tensor::zeros(alloc, {kB, T, 3 * kC}, DType::f32, MemCategory::grads, "dqkv");
  Tensor saved;
  double matmuls = 2;
  if (which == naive_fwd || which == naive_bwd) {
    saved = Tensor::empty(alloc, {kB, kH, T, T}, DType::f32, MemCategory::activations, "probs");
    ops::attention_naive_forward(ctx, qkv, kH, out, saved);
    if (which == naive_bwd) matmuls = 4;
  } else {
    saved = Tensor::empty(alloc, {kB, kH, T}, DType::f32, MemCategory::activations, "lse");
    ops::attention_flash_forward(ctx, qkv, kH, out, saved);
    if (which == flash_bwd) matmuls = 5;
  }
  alloc.reset_peak();
  for (auto _ : state) {
    switch (which) {
      case naive_fwd:
        ops::attention_naive_forward(ctx, qkv, kH, out, saved);
        break;
      case naive_bwd:
        ops::attention_naive_backward(ctx, dout, qkv, saved, kH, dqkv);
        break;
      case flash_fwd:
        ops::attention_flash_forward(ctx, qkv, kH, out, saved);
        break;
      case flash_bwd:
        ops::attention_flash_backward(ctx, dout, qkv, out, saved, kH, dqkv);
        break;
    }
    benchmark::DoNotOptimize(dqkv.raw());
  }
  const char* names[] = {"naive fwd", "naive bwd", "flash fwd", "flash bwd"};
  state.SetLabel(names[which]);
  state.counters["FLOP/s"] = benchmark::Counter(matmuls * causal_flops(T) * state.iterations(),
                                                benchmark::Counter::kIsRate);
  state.counters["saved_MiB"] = static_cast<double>(saved.nbytes()) / (1 << 20);
  state.counters["workspace_MiB"] =
      static_cast<double>(alloc.stats().peak_of(MemCategory::workspace)) / (1 << 20);
}
BENCHMARK(BM_attention)
    ->ArgsProduct({{naive_fwd, naive_bwd, flash_fwd, flash_bwd}, {64, 256, 1024}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Baseline: the qkv projection of GPT-2 at B*T=1024, out (1024,2304) = inp (1024,768) W^T.
void BM_sgemm_baseline(benchmark::State& state) {
  const int M = 1024, N = 3 * kC, K = kC;
  Allocator alloc;
  Context ctx(alloc);
  Rng rng(2);
  const Tensor a = random_tensor(alloc, {M, K}, rng, MemCategory::activations);
  const Tensor w = random_tensor(alloc, {N, K}, rng, MemCategory::params);
  Tensor c = Tensor::empty(alloc, {M, N}, DType::f32, MemCategory::activations, "c");
  for (auto _ : state) {
    ops::sgemm(ctx, ops::Trans::no, ops::Trans::yes, M, N, K, 1.0f, a.data<float>(), K,
               w.data<float>(), K, 0.0f, c.data<float>(), N);
    benchmark::DoNotOptimize(c.raw());
  }
  state.counters["FLOP/s"] = benchmark::Counter(ops::sgemm_flops(M, N, K) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_sgemm_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
