// Every baseline memory policy on one model, side by side in one run: measured peak
// (total and above the fixed part), the memory model's prediction, and ms/step (median
// of 5 steps, the policies interleaved step by step so that machine noise spreads evenly).
//
//   build/release/bench/policy_bench
//
// Prints a markdown table per model and reports the same numbers as counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/adamw_optimizer.h"

namespace {

using namespace adacc;
using Clock = std::chrono::steady_clock;

void BM_Policies(benchmark::State& state, const char* model_name, int B, int T,
                 ops::AttentionKind attention) {
  const std::vector<std::string> policies = {"none", "selective", "llmc", "full", "every-2"};
  Allocator alloc;
  Context ctx(alloc, 0, 1);
  model::ModelConfig config = model::named_config(model_name);
  config.attention = attention;
  model::Gpt2 gpt(config, alloc);
  Rng rng(1);
  gpt.init_weights(rng);
  train::AdamWOptimizer opt(gpt.config(), alloc, ops::AdamWConfig{});
  const model::StepGraph graph = gpt.build_graph(B, T);
  Tensor tokens = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "tokens");
  Tensor targets = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "targets");
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 50257);
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 50257);
  }
  const MemStats fixed = alloc.stats();
  std::vector<runtime::StepExecutor> execs;
  std::vector<runtime::MemoryPrediction> predicted;
  for (const std::string& p : policies) {
    execs.emplace_back(graph, gpt.params(), gpt.grads(), ctx, plan::baseline_plan(graph, p));
    predicted.push_back(
        runtime::predict_step_memory(graph, execs.back().plan(), ctx.threads(), fixed.current));
  }
  const std::size_t n = policies.size();
  std::vector<std::vector<double>> ms(n);
  std::vector<std::size_t> peak(n, 0);
  for (auto _ : state) {
    for (int rep = 0; rep < 6; ++rep) {  // the first round warms up
      for (std::size_t k = 0; k < n; ++k) {
        alloc.reset_peak();
        const auto t0 = Clock::now();
        benchmark::DoNotOptimize(execs[k].forward_backward(tokens, targets));
        opt.step(ctx, gpt.params(), gpt.grads(), 1e-5f);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        peak[k] = alloc.stats().total_peak;
        if (rep > 0) ms[k].push_back(s * 1e3);
      }
    }
  }
  std::printf("\n%s B=%d T=%d, %s attention, %d threads (fixed part %.1f MiB)\n\n", model_name, B,
              T, std::string(ops::attention_kind_name(attention)).c_str(), ctx.threads(),
              static_cast<double>(fixed.total_current) / (1 << 20));
  std::printf(
      "| policy | peak above fixed (MiB) | total peak (MiB) | predicted (MiB) | ms/step | "
      "overhead vs none |\n|---|---|---|---|---|---|\n");
  double none_ms = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::sort(ms[k].begin(), ms[k].end());
    const double median = ms[k][ms[k].size() / 2];
    if (k == 0) none_ms = median;
    const double mib = 1 << 20;
    std::printf("| %s | %.1f | %.1f | %.1f | %.0f | %+.1f%% |\n", policies[k].c_str(),
                static_cast<double>(peak[k] - fixed.total_current) / mib, peak[k] / mib,
                predicted[k].total_peak / mib, median, 100.0 * (median / none_ms - 1.0));
    state.counters[policies[k] + "_ms"] = median;
    state.counters[policies[k] + "_act_mib"] =
        static_cast<double>(peak[k] - fixed.total_current) / mib;
  }
  std::fflush(stdout);
}

BENCHMARK_CAPTURE(BM_Policies, gpt2_B4_T256, "gpt2", 4, 256, ops::AttentionKind::flash)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Policies, gpt2_tiny_B8_T512, "gpt2-tiny", 8, 512, ops::AttentionKind::flash)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Policies, gpt2_B4_T256_naive, "gpt2", 4, 256, ops::AttentionKind::naive)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
