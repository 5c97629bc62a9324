// LayerNorm over the last dimension on the CPU (GPT-2: eps 1e-5, biased variance).
//
// Forward: one row (C floats, a few KiB) at a time, so the three sweeps over a row —
// mean, variance around that mean (two-pass, no cancellation), normalise — hit L1 and
// the op reads inp once and writes out once. Threaded over rows.
// Backward: dinp is per row; dweight and dbias sum over all rows, so each thread sums its
// rows into a private (2,C) slice of an allocator workspace and the slices are added in
// thread order at the end: no atomics, and deterministic for a given thread count.
#include "adacc/ops/layernorm.h"

#include <omp.h>

#include <cmath>
#include <cstdint>

#include "adacc/ops/op_checks.h"
#include "adacc/ops/workspace.h"

namespace adacc::ops {
namespace cpu {
namespace {

// Below this many rows one thread is faster than waking the team.
constexpr std::int64_t kParallelRowsMin = 16;
// Independent partial sums per row reduction: four AVX-512 registers, so that the adds
// overlap instead of each waiting on the previous one's latency (a single accumulator
// made the reductions, not memory, the bottleneck).
constexpr std::int64_t kLanes = 64;

// sum over c of f(c), c in [0,C), in kLanes independent partial sums.
template <class F>
inline float row_sum(std::int64_t C, F f) {
  float acc[kLanes] = {};
  std::int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
#pragma omp simd
    for (std::int64_t j = 0; j < kLanes; ++j) acc[j] += f(c + j);
  }
  for (std::int64_t j = 0; c + j < C; ++j) acc[j] += f(c + j);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

// inp (N,C), weight (C), bias (C) -> out (N,C), mean (N), rstd (N)
void layernorm_forward(const float* __restrict inp, const float* __restrict weight,
                       const float* __restrict bias, float* __restrict out, float* __restrict mean,
                       float* __restrict rstd, std::int64_t N, std::int64_t C) {
  const float inv_c = 1.0f / static_cast<float>(C);
#pragma omp parallel for schedule(static) if (N >= kParallelRowsMin)
  for (std::int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    const float m = row_sum(C, [x](std::int64_t c) { return x[c]; }) * inv_c;
    const float sq = row_sum(C, [x, m](std::int64_t c) {
      const float d = x[c] - m;
      return d * d;
    });
    const float s = 1.0f / std::sqrt(sq * inv_c + kLayerNormEps);
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

// dout (N,C), inp (N,C), weight (C), mean (N), rstd (N)
//   -> dinp (N,C) +=, dweight (C) +=, dbias (C) +=
// partial: workspace (threads,2,C), one (dweight, dbias) slice per thread.
void layernorm_backward(const float* __restrict dout, const float* __restrict inp,
                        const float* __restrict weight, const float* __restrict mean,
                        const float* __restrict rstd, float* __restrict dinp,
                        float* __restrict dweight, float* __restrict dbias,
                        float* __restrict partial, int threads, std::int64_t N, std::int64_t C) {
  const float inv_c = 1.0f / static_cast<float>(C);
  int team = 1;
#pragma omp parallel num_threads(threads) if (N >= kParallelRowsMin)
  {
    const int tid = omp_get_thread_num();
#pragma omp single nowait
    team = omp_get_num_threads();
    float* dw = partial + static_cast<std::int64_t>(tid) * 2 * C;  // (C)
    float* db = dw + C;                                            // (C)
#pragma omp simd
    for (std::int64_t c = 0; c < 2 * C; ++c) dw[c] = 0.0f;

#pragma omp for schedule(static)
    for (std::int64_t n = 0; n < N; ++n) {
      const float* g = dout + n * C;  // (C)
      const float* x = inp + n * C;   // (C)
      float* dx = dinp + n * C;       // (C)
      const float m = mean[n];
      const float s = rstd[n];
      // Means over the row of w*g and of w*g*xhat, xhat = (x - mean) * rstd.
      float sum_wg = 0.0f, sum_wgx = 0.0f;
#pragma omp simd reduction(+ : sum_wg, sum_wgx)
      for (std::int64_t c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * s;
        const float wg = weight[c] * g[c];
        sum_wg += wg;
        sum_wgx += wg * xhat;
      }
      const float mean_wg = sum_wg * inv_c;
      const float mean_wgx = sum_wgx * inv_c;
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * s;
        const float wg = weight[c] * g[c];
        db[c] += g[c];
        dw[c] += g[c] * xhat;
        dx[c] += (wg - mean_wg - xhat * mean_wgx) * s;
      }
    }
  }
  // Sum the per-thread slices in thread order.
#pragma omp parallel for schedule(static) num_threads(threads) if (C * team >= (1 << 14))
  for (std::int64_t c = 0; c < C; ++c) {
    float w = 0.0f, b = 0.0f;
    for (int t = 0; t < team; ++t) {
      w += partial[static_cast<std::int64_t>(t) * 2 * C + c];
      b += partial[static_cast<std::int64_t>(t) * 2 * C + C + c];
    }
    dweight[c] += w;
    dbias[c] += b;
  }
}

// The backward's workspace: partial (threads,2,C), one (dweight, dbias) slice per thread.
// Both the backward and layernorm_backward_workspace_bytes size it here.
Shape layernorm_backward_partial_shape(std::int64_t C, int threads) {
  return {threads, 2, C};
}

}  // namespace
}  // namespace cpu

namespace {

// mean and rstd may be (N) or shaped like inp without its last dimension, e.g. (B,T).
void require_row_stats(const char* op, const char* what, const Tensor& t, const Shape& rows,
                       std::int64_t N) {
  if (t.defined() && t.dtype() == DType::f32 && t.shape() == Shape{N}) return;
  require_tensor(op, what, t, rows);
}

}  // namespace

void layernorm_forward(Context& ctx, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                       Tensor& out, Tensor& mean, Tensor& rstd) {
  constexpr const char* op = "layernorm_forward";
  require(inp.defined() && inp.ndim() >= 1, op, "inp is missing");
  require_tensor(op, "inp", inp, inp.shape());
  const std::int64_t C = inp.dim(-1);
  const std::int64_t N = inp.numel() / (C > 0 ? C : 1);
  const Shape rows(inp.shape().begin(), inp.shape().end() - 1);
  require(C > 0, op, "inp " + inp.describe() + " has no channels");
  require_tensor(op, "weight", weight, {C});
  require_tensor(op, "bias", bias, {C});
  require_tensor(op, "out", out, inp.shape());
  require_row_stats(op, "mean", mean, rows, N);
  require_row_stats(op, "rstd", rstd, rows, N);
  require_cpu(op, {&inp, &weight, &bias, &out, &mean, &rstd});
  cpu::layernorm_forward(inp.data<float>(), weight.data<float>(), bias.data<float>(),
                         out.data<float>(), mean.data<float>(), rstd.data<float>(), N, C);
}

void layernorm_backward(Context& ctx, const Tensor& dout, const Tensor& inp, const Tensor& weight,
                        const Tensor& mean, const Tensor& rstd, Tensor& dinp, Tensor& dweight,
                        Tensor& dbias) {
  constexpr const char* op = "layernorm_backward";
  require(inp.defined() && inp.ndim() >= 1, op, "inp is missing");
  require_tensor(op, "inp", inp, inp.shape());
  const std::int64_t C = inp.dim(-1);
  const std::int64_t N = inp.numel() / (C > 0 ? C : 1);
  const Shape rows(inp.shape().begin(), inp.shape().end() - 1);
  require(C > 0, op, "inp " + inp.describe() + " has no channels");
  require_tensor(op, "dout", dout, inp.shape());
  require_tensor(op, "weight", weight, {C});
  require_row_stats(op, "mean", mean, rows, N);
  require_row_stats(op, "rstd", rstd, rows, N);
  require_tensor(op, "dinp", dinp, inp.shape());
  require_tensor(op, "dweight", dweight, {C});
  require_tensor(op, "dbias", dbias, {C});
  require_cpu(op, {&dout, &inp, &weight, &mean, &rstd, &dinp, &dweight, &dbias});
  const int threads = ctx.threads();
  // (threads,2,C): per-thread partial sums of dweight and dbias.
  Tensor partial = Tensor::empty(ctx.allocator(), cpu::layernorm_backward_partial_shape(C, threads),
                                 DType::f32, MemCategory::workspace, "layernorm_dw_partial");
  cpu::layernorm_backward(dout.data<float>(), inp.data<float>(), weight.data<float>(),
                          mean.data<float>(), rstd.data<float>(), dinp.data<float>(),
                          dweight.data<float>(), dbias.data<float>(), partial.data<float>(),
                          threads, N, C);
}

std::size_t layernorm_backward_workspace_bytes(std::int64_t C, int threads) {
  require(
      C > 0 && threads > 0, "layernorm_backward_workspace_bytes",
      "C=" + std::to_string(C) + " and threads=" + std::to_string(threads) + " must be positive");
  return accounted_tensor_bytes(cpu::layernorm_backward_partial_shape(C, threads), DType::f32);
}

}  // namespace adacc::ops
