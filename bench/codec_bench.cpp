// Encode and decode throughput of every registered codec on fp32 tensors of 16 and 64 MiB
// (normal data, shape (rows, 768); for softmax-u8 causal attention probabilities, shape
// (1, H, 1024, 1024)), side by side with memcpy of the same tensor in the same run. Rates
// are GB/s of fp32 input; the "x_memcpy" counters are the codec's rate divided by memcpy's.
//
//   build/release/bench/codec_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"

namespace {

using namespace adacc;

constexpr std::int64_t kC = 768;

Tensor normal_tensor(Allocator& alloc, std::int64_t mib) {
  const std::int64_t rows = mib * (1 << 20) / 4 / kC;
  Tensor t = Tensor::empty(alloc, {rows, kC}, DType::f32, MemCategory::activations, "x");
  Rng rng(1);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = rng.normal();
  return t;
}

// Causal probabilities (1, H, T, T) of mib MiB: row i holds uniform / (i + 1) for j <= i,
// zeros above the diagonal.
Tensor softmax_tensor(Allocator& alloc, std::int64_t mib) {
  constexpr std::int64_t t = 1024;
  const std::int64_t h = mib * (1 << 20) / 4 / (t * t);
  Tensor x = Tensor::empty(alloc, {1, h, t, t}, DType::f32, MemCategory::activations, "att");
  Rng rng(1);
  float* p = x.data<float>();
  for (std::int64_t r = 0; r < h * t; ++r) {
    const std::int64_t i = r % t;
    for (std::int64_t j = 0; j < t; ++j) {
      p[r * t + j] = j <= i ? rng.uniform() / static_cast<float>(i + 1) : 0.0f;
    }
  }
  return x;
}

double gbps(std::size_t bytes, double seconds) {
  return static_cast<double>(bytes) / seconds / 1e9;
}

// Times memcpy, encode and decode of one tensor (median of 5 each, after a warm-up).
void BM_Codec(benchmark::State& state, std::string codec_name, std::int64_t mib) {
  Allocator alloc;
  Context ctx(alloc, 0, 1);
  const compress::Codec& codec = compress::codec_by_name(codec_name);
  Tensor x = codec_name == "softmax-u8" ? softmax_tensor(alloc, mib) : normal_tensor(alloc, mib);
  Tensor y = Tensor::empty(alloc, x.shape(), DType::f32, MemCategory::workspace, "y");
  auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (auto _ : state) {
    std::vector<double> copy, enc, dec;
    Tensor encoded = codec.encode(ctx, x);
    codec.decode(ctx, encoded, y);
    for (int r = 0; r < 5; ++r) {
      auto t0 = Clock::now();
      std::memcpy(y.raw(), x.raw(), x.nbytes());
      benchmark::ClobberMemory();
      copy.push_back(seconds(t0));
      encoded = Tensor();
      t0 = Clock::now();
      encoded = codec.encode(ctx, x);
      enc.push_back(seconds(t0));
      t0 = Clock::now();
      codec.decode(ctx, encoded, y);
      dec.push_back(seconds(t0));
    }
    const double c = median_of(copy), e = median_of(enc), d = median_of(dec);
    state.SetIterationTime(e + d);
    state.counters["memcpy_GBps"] = gbps(x.nbytes(), c);
    state.counters["encode_GBps"] = gbps(x.nbytes(), e);
    state.counters["decode_GBps"] = gbps(x.nbytes(), d);
    state.counters["encode_decode_x_memcpy"] = (2 * c) / (e + d);
    state.counters["ratio"] =
        static_cast<double>(x.nbytes()) / static_cast<double>(encoded.nbytes());
  }
}

const int kRegistered = [] {
  for (const std::string& name : compress::codec_names()) {
    for (std::int64_t mib : {16, 64}) {
      benchmark::RegisterBenchmark(("BM_Codec/" + name + "/" + std::to_string(mib) + "MiB").c_str(),
                                   BM_Codec, name, mib)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
