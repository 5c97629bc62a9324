// GPU encode and decode throughput of every codec on a 64 MiB fp32 tensor (normal data,
// (rows, 768); softmax-u8: causal probabilities (1, 16, 1024, 1024)), beside a device-to-
// device copy of the same tensor in the same run. Rates are GB/s of fp32 input; each is
// the mean of 20 launches between CUDA events, after a warm-up. Without a GPU every
// benchmark reports an error and nothing runs. tools/device_check.sh runs this on a lent
// GPU.
//
//   build/release/bench/cuda_codec_bench --benchmark_filter=int4
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/compress/cuda_codecs.h"
#include "adacc/core/rng.h"

namespace {

using namespace adacc;
namespace cu = compress::cuda;

std::vector<float> host_data(const std::string& codec, const Shape& s) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
  Rng rng(1);
  if (codec != "softmax-u8") {
    for (float& x : v) x = rng.normal();
    return v;
  }
  const std::int64_t t = s.back();
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(v.size()) / t; ++r) {
    const std::int64_t i = r % t;
    for (std::int64_t j = 0; j < t; ++j) {
      v[r * t + j] = j <= i ? rng.uniform() / static_cast<float>(i + 1) : 0.0f;
    }
  }
  return v;
}

void BM_CudaCodec(benchmark::State& state, std::string name) {
  if (!cu::device_available()) {
    state.SkipWithError("no CUDA device");
    for (auto _ : state) {
    }
    return;
  }
  const Shape shape = name == "softmax-u8" ? Shape{1, 16, 1024, 1024} : Shape{21845, 768};
  const std::vector<float> host = host_data(name, shape);
  const std::size_t bytes = host.size() * 4;
  const std::size_t enc_bytes = compress::codec_by_name(name).encoded_bytes(shape);
  cu::CudaCodecs gpu;
  cu::DeviceBuffer x(bytes), y(bytes), enc(enc_bytes);
  x.upload(host.data(), bytes);
  gpu.encode(name, static_cast<const float*>(x.data()), shape, enc.data());  // checks, warms up
  gpu.decode(name, enc.data(), shape, static_cast<float*>(y.data()));
  constexpr int kReps = 20;
  for (auto _ : state) {
    const double copy = gpu.milliseconds([&] { y.copy_async(x, bytes); }, kReps);
    const double e = gpu.milliseconds(
        [&] { gpu.encode_async(name, static_cast<const float*>(x.data()), shape, enc.data()); },
        kReps);
    const double d = gpu.milliseconds(
        [&] { gpu.decode_async(name, enc.data(), shape, static_cast<float*>(y.data())); }, kReps);
    state.SetIterationTime((e + d) / 1e3);
    const auto gbps = [&](double ms) { return static_cast<double>(bytes) / (ms / 1e3) / 1e9; };
    state.counters["copy_GBps"] = gbps(copy);
    state.counters["encode_GBps"] = gbps(e);
    state.counters["decode_GBps"] = gbps(d);
    state.counters["encode_decode_x_copy"] = 2 * copy / (e + d);
    state.counters["ratio"] = static_cast<double>(bytes) / static_cast<double>(enc_bytes);
  }
}

const int kRegistered = [] {
  for (const std::string& name : compress::codec_names()) {
    benchmark::RegisterBenchmark(("BM_CudaCodec/" + name).c_str(), BM_CudaCodec, name)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
