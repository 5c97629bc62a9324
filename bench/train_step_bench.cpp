// Times one training step (forward, backward, AdamW) and compares its FLOP rate with
// sgemm's rate on the same step's matmul shapes, measured in the same run.
//
//   build/release/bench/train_step_bench --benchmark_repetitions=3
//       (add --benchmark_report_aggregates_only=true for medians only)
//
// Counters: ms_step, tok_s, step_gflops (model FLOPs / step time), sgemm_gflops (the
// flop-weighted rate of sgemm on this step's forward and backward matmul shapes, timed
// just before), frac_of_sgemm = step_gflops / sgemm_gflops, peak_mib (allocator peak),
// and ms_<op kind> / ms_adamw: the time of each kind of op in one profiled step.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "adacc/model/gpt2.h"
#include "adacc/ops/matmul.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/adamw_optimizer.h"

namespace {

using namespace adacc;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Gemm {
  ops::Trans ta, tb;
  std::int64_t M, N, K;
};

// The matmuls of one step: per linear (N rows, IC -> OC) the forward N x OC x IC, the
// input gradient N x IC x OC and the weight gradient OC x IC x N; the lm-head's three.
std::vector<Gemm> step_gemms(const model::ModelConfig& c, std::int64_t rows) {
  const std::int64_t C = c.n_embd, V = c.vocab;
  std::vector<Gemm> g;
  const std::int64_t shapes[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
  for (const auto& s : shapes) {
    const std::int64_t IC = s[0], OC = s[1];
    g.push_back({ops::Trans::no, ops::Trans::yes, rows, OC, IC});
    g.push_back({ops::Trans::no, ops::Trans::no, rows, IC, OC});
    g.push_back({ops::Trans::yes, ops::Trans::no, OC, IC, rows});
  }
  const std::int64_t chunk = std::min<std::int64_t>(rows, 256);  // lm-head row chunks
  g.push_back({ops::Trans::no, ops::Trans::yes, chunk, V, C});
  g.push_back({ops::Trans::no, ops::Trans::no, chunk, C, V});
  g.push_back({ops::Trans::yes, ops::Trans::no, V, C, chunk});
  return g;
}

// Flop-weighted sgemm rate (GFLOP/s) over the shapes: total flops / total time, each
// shape timed as the median of 3 runs after a warm-up.
double sgemm_rate(Context& ctx, const std::vector<Gemm>& gemms) {
  double flops = 0, secs = 0;
  for (const Gemm& g : gemms) {
    const std::int64_t a_rows = g.ta == ops::Trans::no ? g.M : g.K;
    const std::int64_t a_cols = g.ta == ops::Trans::no ? g.K : g.M;
    const std::int64_t b_rows = g.tb == ops::Trans::no ? g.K : g.N;
    const std::int64_t b_cols = g.tb == ops::Trans::no ? g.N : g.K;
    std::vector<float> A(static_cast<std::size_t>(a_rows * a_cols), 0.01f);
    std::vector<float> B(static_cast<std::size_t>(b_rows * b_cols), 0.02f);
    std::vector<float> C(static_cast<std::size_t>(g.M * g.N), 0.0f);
    std::vector<double> t;
    for (int r = 0; r < 4; ++r) {
      const auto t0 = Clock::now();
      ops::sgemm(ctx, g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), a_cols, B.data(), b_cols, 0.0f,
                 C.data(), g.N);
      if (r > 0) t.push_back(seconds_since(t0));
    }
    std::sort(t.begin(), t.end());
    flops += ops::sgemm_flops(g.M, g.N, g.K);
    secs += t[1];
  }
  return flops / secs / 1e9;
}

void BM_TrainStep(benchmark::State& state, const char* model_name, int B, int T) {
  Allocator alloc;
  Context ctx(alloc, 0, 1);
  model::Gpt2 gpt(model::named_config(model_name), alloc);
  Rng rng(1);
  gpt.init_weights(rng);
  train::AdamWOptimizer opt(gpt.config(), alloc, ops::AdamWConfig{});
  const model::StepGraph graph = gpt.build_graph(B, T);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  Tensor tokens = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "tokens");
  Tensor targets = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, "targets");
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 50257);
    targets.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next_u64() % 50257);
  }
  double step_flops = 0;
  for (const auto& op : graph.ops()) step_flops += op->forward_flops() + op->backward_flops();

  const double sgemm_gflops = sgemm_rate(ctx, step_gemms(gpt.config(), std::int64_t{B} * T));
  exec.forward_backward(tokens, targets);  // warm-up: fills the allocator's cache
  opt.step(ctx, gpt.params(), gpt.grads(), 1e-4f);
  alloc.reset_peak();
  std::vector<double> times;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    benchmark::DoNotOptimize(exec.forward_backward(tokens, targets));
    opt.step(ctx, gpt.params(), gpt.grads(), 1e-4f);
    const double s = seconds_since(t0);
    times.push_back(s);
    state.SetIterationTime(s);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double step_gflops = step_flops / median / 1e9;
  state.counters["ms_step"] = median * 1e3;
  state.counters["tok_s"] = B * T / median;
  state.counters["step_gflops"] = step_gflops;
  state.counters["sgemm_gflops"] = sgemm_gflops;
  state.counters["frac_of_sgemm"] = step_gflops / sgemm_gflops;
  state.counters["peak_mib"] = static_cast<double>(alloc.stats().total_peak) / (1 << 20);
  state.counters["threads"] = ctx.threads();

  // Where the time goes: one profiled step, by op kind, and the optimizer.
  exec.set_profiling(true);
  exec.forward_backward(tokens, targets);
  const auto t_opt = Clock::now();
  opt.step(ctx, gpt.params(), gpt.grads(), 1e-4f);
  state.counters["ms_adamw"] = seconds_since(t_opt) * 1e3;
  for (std::size_t o = 0; o < graph.ops().size(); ++o) {
    const auto& t = exec.op_timings()[o];
    state.counters["ms_" + std::string(graph.op(static_cast<int>(o)).kind())] +=
        (t.forward + t.backward) * 1e3;
  }
}

BENCHMARK_CAPTURE(BM_TrainStep, gpt2_B4_T64, "gpt2", 4, 64)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, gpt2_tiny_B8_T256, "gpt2-tiny", 8, 256)
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
