// sgemm throughput on GPT-2 124M shapes: oneDNN (ops::sgemm, the engine's matmul) against
// OpenBLAS's cblas_sgemm, to back the choice documented in docs/matmul.md.
//
// OpenBLAS is loaded at run time with dlopen("libopenblas.so.0"), so this program links
// nothing beyond the engine; when the library is missing its benchmarks are skipped.
// OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE if set: run the
// program twice, once plainly and once with OPENBLAS_CORETYPE=SkylakeX, to compare
// its autodetected kernels with the AVX-512 ones. The label shows the core it chose.
//
// Shapes, for a linear layer inp (M,K) @ W^T, W (N,K), and its backward:
//   fwd   out (M,N)   = inp (M,K) @ W^T        sgemm(N,T) M,N,K
//   dinp  dinp (M,K) += dout (M,N) @ W (N,K)   sgemm(N,N) M,K,N
//   dW    dW (N,K)   += dout^T (N,M) @ inp     sgemm(T,N) N,K,M
// for (M,N,K) = (1024,2304,768) qkv, (1024,768,3072) fc-proj, (256,50304,768) lm-head.
//
//   ./sgemm_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   OPENBLAS_CORETYPE=SkylakeX ./sgemm_bench ...
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "adacc/core/allocator.h"
#include "adacc/core/context.h"
#include "adacc/core/rng.h"
#include "adacc/core/tensor.h"
#include "adacc/ops/matmul.h"

namespace {

using adacc::ops::Trans;

constexpr int kThreads = 2;

// The CBLAS entry points we need, with CBLAS's enum values (cblas.h) as plain ints.
constexpr int kCblasRowMajor = 101;
constexpr int kCblasNoTrans = 111;
constexpr int kCblasTrans = 112;
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float* A, int lda, const float* B, int ldb, float beta, float* C,
                            int ldc);
using OpenblasSetNumThreads = void (*)(int);
using OpenblasGetCorename = char* (*)();

struct OpenBlas {
  CblasSgemm sgemm = nullptr;
  std::string core;
};

// Loads OpenBLAS once; sgemm stays null if it is not installed.
const OpenBlas& openblas() {
  static const OpenBlas lib = [] {
    OpenBlas result;
    void* handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return result;
    result.sgemm = reinterpret_cast<CblasSgemm>(dlsym(handle, "cblas_sgemm"));
    if (auto set_threads =
            reinterpret_cast<OpenblasSetNumThreads>(dlsym(handle, "openblas_set_num_threads"))) {
      set_threads(kThreads);
    }
    if (auto corename =
            reinterpret_cast<OpenblasGetCorename>(dlsym(handle, "openblas_get_corename"))) {
      result.core = corename();
    }
    return result;
  }();
  return lib;
}

enum class Library { onednn, openblas };

struct Gemm {
  std::string name;
  Trans trans_a, trans_b;
  std::int64_t M, N, K;
  float beta;
};

// The three matmuls of a linear layer (M rows, K inputs, N outputs).
std::vector<Gemm> layer_gemms(const std::string& layer, std::int64_t M, std::int64_t N,
                              std::int64_t K) {
  return {{layer + "/fwd", Trans::no, Trans::yes, M, N, K, 0.0f},
          {layer + "/dinp", Trans::no, Trans::no, M, K, N, 1.0f},
          {layer + "/dW", Trans::yes, Trans::no, N, K, M, 1.0f}};
}

void run_gemm(benchmark::State& state, Library library, const Gemm& g) {
  if (library == Library::openblas && openblas().sgemm == nullptr) {
    state.SkipWithError("libopenblas.so.0 not found");
    return;
  }
  adacc::Allocator alloc;
  adacc::Context ctx(alloc, kThreads);
  // A is op(A) (M,K) stored (M,K) or (K,M); B is op(B) (K,N) stored (K,N) or (N,K).
  const std::int64_t lda = g.trans_a == Trans::no ? g.K : g.M;
  const std::int64_t ldb = g.trans_b == Trans::no ? g.N : g.K;
  auto make = [&](std::int64_t n, const char* name) {
    adacc::Tensor t =
        adacc::Tensor::empty(alloc, {n}, adacc::DType::f32, adacc::MemCategory::workspace, name);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = ctx.rng().uniform() - 0.5f;
    return t;
  };
  adacc::Tensor a = make(g.M * g.K, "A");
  adacc::Tensor b = make(g.K * g.N, "B");
  adacc::Tensor c = make(g.M * g.N, "C");
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* C = c.data<float>();
  // Small alpha keeps C bounded over many accumulating iterations.
  const float alpha = 1e-3f;
  for (auto _ : state) {
    if (library == Library::onednn) {
      adacc::ops::sgemm(ctx, g.trans_a, g.trans_b, g.M, g.N, g.K, alpha, A, lda, B, ldb, g.beta, C,
                        g.N);
    } else {
      openblas().sgemm(kCblasRowMajor, g.trans_a == Trans::yes ? kCblasTrans : kCblasNoTrans,
                       g.trans_b == Trans::yes ? kCblasTrans : kCblasNoTrans, static_cast<int>(g.M),
                       static_cast<int>(g.N), static_cast<int>(g.K), alpha, A,
                       static_cast<int>(lda), B, static_cast<int>(ldb), g.beta, C,
                       static_cast<int>(g.N));
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(adacc::ops::sgemm_flops(g.M, g.N, g.K) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  if (library == Library::openblas) state.SetLabel("core=" + openblas().core);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Gemm> gemms;
  for (auto& list : {layer_gemms("qkv", 1024, 2304, 768), layer_gemms("fcproj", 1024, 768, 3072),
                     layer_gemms("lmhead", 256, 50304, 768)}) {
    gemms.insert(gemms.end(), list.begin(), list.end());
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const std::string openblas_name =
      std::string("openblas") + (coretype != nullptr ? std::string("[") + coretype + "]" : "");
  for (const Gemm& g : gemms) {
    const std::string shape =
        "/" + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K);
    benchmark::RegisterBenchmark(("onednn/" + g.name + shape).c_str(), run_gemm, Library::onednn, g)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((openblas_name + "/" + g.name + shape).c_str(), run_gemm,
                                 Library::openblas, g)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
