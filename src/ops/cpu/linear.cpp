// Linear layer on the CPU: out = inp @ weight^T + bias, weight stored (OC,IC).
//
// The three matmuls go to ops::sgemm (oneDNN). The bias is folded into the forward
// matmul: out is first filled with the broadcast bias (a write-only pass) and sgemm adds
// the product with beta = 1, which is cheaper than a separate read-modify-write pass
// afterwards. Backward is two sgemm calls with beta = 1 (they accumulate) and the column
// sums of dout for dbias, threaded over bands of output channels so that every thread
// owns its dbias entries: no atomics, deterministic.
#include "adacc/ops/linear.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "adacc/ops/matmul.h"
#include "adacc/ops/op_checks.h"

namespace adacc::ops {
namespace cpu {
namespace {

constexpr std::int64_t kParallelMin = 1 << 14;
// Channels per dbias band: at most a small stack accumulator, a multiple of the vector
// width, and narrow enough that every thread gets a band.
constexpr std::int64_t kBandMax = 256;
constexpr std::int64_t kBandAlign = 16;

// bias (OC) -> out (N,OC), every row a copy of bias
void broadcast_rows(const float* __restrict bias, float* __restrict out, std::int64_t N,
                    std::int64_t OC) {
#pragma omp parallel for schedule(static) if (N * OC >= kParallelMin)
  for (std::int64_t n = 0; n < N; ++n) {
    float* y = out + n * OC;  // (OC)
#pragma omp simd
    for (std::int64_t o = 0; o < OC; ++o) y[o] = bias[o];
  }
}

// dout (N,OC) -> dbias (OC) += sum over rows
void column_sums(const float* __restrict dout, float* __restrict dbias, std::int64_t N,
                 std::int64_t OC, int threads) {
  const std::int64_t per_thread = std::max<std::int64_t>(1, (OC + threads - 1) / threads);
  const std::int64_t band =
      std::min(kBandMax, (per_thread + kBandAlign - 1) / kBandAlign * kBandAlign);
  const std::int64_t bands = (OC + band - 1) / band;
#pragma omp parallel for schedule(static) num_threads(threads) if (N * OC >= kParallelMin)
  for (std::int64_t k = 0; k < bands; ++k) {
    const std::int64_t o0 = k * band;
    const std::int64_t width = std::min(band, OC - o0);
    float acc[kBandMax] = {};  // (width)
    for (std::int64_t n = 0; n < N; ++n) {
      const float* g = dout + n * OC + o0;  // (width)
#pragma omp simd
      for (std::int64_t j = 0; j < width; ++j) acc[j] += g[j];
    }
#pragma omp simd
    for (std::int64_t j = 0; j < width; ++j) dbias[o0 + j] += acc[j];
  }
}

}  // namespace
}  // namespace cpu

namespace {

// The shapes of a linear layer, after checking weight (OC,IC) and inp (...,IC).
struct LinearShape {
  std::int64_t OC, IC, N;
  Shape out;  // inp's shape with the last dimension OC
};

LinearShape check_linear(const char* op, const Tensor& inp, const Tensor& weight) {
  require(weight.defined() && weight.ndim() == 2, op,
          "weight must be (OC,IC) but is " + (weight.defined() ? weight.describe() : "missing"));
  LinearShape s{weight.dim(0), weight.dim(1), 0, {}};
  require_tensor(op, "weight", weight, {s.OC, s.IC});
  require(s.OC > 0 && s.IC > 0, op, "weight " + weight.describe() + " is empty");
  require(inp.defined() && inp.ndim() >= 1 && inp.dim(-1) == s.IC, op,
          "inp must be (...," + std::to_string(s.IC) + ") for weight " + weight.describe() +
              " but is " + (inp.defined() ? inp.describe() : "missing"));
  require_tensor(op, "inp", inp, inp.shape());
  s.out = inp.shape();
  s.out.back() = s.OC;
  s.N = inp.numel() / s.IC;
  return s;
}

}  // namespace

void linear_forward(Context& ctx, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                    Tensor& out) {
  constexpr const char* op = "linear_forward";
  const LinearShape shape = check_linear(op, inp, weight);
  const std::int64_t OC = shape.OC, IC = shape.IC, N = shape.N;
  const Shape& out_shape = shape.out;
  if (bias.defined()) require_tensor(op, "bias", bias, {OC});
  require_tensor(op, "out", out, out_shape);
  require_cpu(op, {&inp, &weight, &bias, &out});

  // inp (N,IC) @ weight^T (IC,OC) [+ bias (OC)] -> out (N,OC)
  float beta = 0.0f;
  if (bias.defined()) {
    cpu::broadcast_rows(bias.data<float>(), out.data<float>(), N, OC);
    beta = 1.0f;
  }
  sgemm(ctx, Trans::no, Trans::yes, N, OC, IC, 1.0f, inp.data<float>(), IC, weight.data<float>(),
        IC, beta, out.data<float>(), OC);
}

void linear_backward(Context& ctx, const Tensor& dout, const Tensor& inp, const Tensor& weight,
                     Tensor& dinp, Tensor& dweight, Tensor& dbias) {
  constexpr const char* op = "linear_backward";
  const LinearShape shape = check_linear(op, inp, weight);
  const std::int64_t OC = shape.OC, IC = shape.IC, N = shape.N;
  const Shape& out_shape = shape.out;
  require_tensor(op, "dout", dout, out_shape);
  require_tensor(op, "dinp", dinp, inp.shape());
  require_tensor(op, "dweight", dweight, {OC, IC});
  if (dbias.defined()) require_tensor(op, "dbias", dbias, {OC});
  require_cpu(op, {&dout, &inp, &weight, &dinp, &dweight, &dbias});
  if (N == 0) return;

  // dout (N,OC) @ weight (OC,IC) -> dinp (N,IC) +=
  sgemm(ctx, Trans::no, Trans::no, N, IC, OC, 1.0f, dout.data<float>(), OC, weight.data<float>(),
        IC, 1.0f, dinp.data<float>(), IC);
  // dout^T (OC,N) @ inp (N,IC) -> dweight (OC,IC) +=
  sgemm(ctx, Trans::yes, Trans::no, OC, IC, N, 1.0f, dout.data<float>(), OC, inp.data<float>(), IC,
        1.0f, dweight.data<float>(), IC);
  // column sums of dout (N,OC) -> dbias (OC) +=
  if (dbias.defined())
    cpu::column_sums(dout.data<float>(), dbias.data<float>(), N, OC, ctx.threads());
}

}  // namespace adacc::ops
