// Residual add on the CPU: out = a + b, and its backward da += dout, db += dout.
//
// Both are one streaming pass over the data, threaded over contiguous chunks and
// vectorized. In-place use is allowed: out may be a or b (each element is read before
// it is written, and `omp simd` only rules out overlaps that are shifted), and da may be
// db (x + x), which gets 2*dout.
#include "adacc/ops/residual.h"

#include <cstdint>

#include "adacc/ops/op_checks.h"

namespace adacc::ops {
namespace cpu {
namespace {

// Below this many elements the thread team costs more than it saves.
constexpr std::int64_t kParallelMin = 1 << 14;

// a (n), b (n) -> out (n)
void residual_forward(const float* a, const float* b, float* out, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// dout (n) -> da (n) +=, db (n) += (da and db distinct)
void residual_backward(const float* dout, float* __restrict da, float* __restrict db,
                       std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float d = dout[i];
    da[i] += d;
    db[i] += d;
  }
}

// dout (n) -> d (n) += 2 dout, for da and db being the same tensor
void residual_backward_same(const float* dout, float* d, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) d[i] += 2.0f * dout[i];
}

}  // namespace
}  // namespace cpu

void residual_forward(Context& ctx, const Tensor& a, const Tensor& b, Tensor& out) {
  constexpr const char* op = "residual_forward";
  require(a.defined(), op, "a is missing");
  require_tensor(op, "a", a, a.shape());
  require_tensor(op, "b", b, a.shape());
  require_tensor(op, "out", out, a.shape());
  require_cpu(op, {&a, &b, &out});
  cpu::residual_forward(a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
}

void residual_backward(Context& ctx, const Tensor& dout, Tensor& da, Tensor& db) {
  constexpr const char* op = "residual_backward";
  require(dout.defined(), op, "dout is missing");
  require_tensor(op, "dout", dout, dout.shape());
  require_tensor(op, "da", da, dout.shape());
  require_tensor(op, "db", db, dout.shape());
  require_cpu(op, {&dout, &da, &db});
  if (da.raw() == db.raw()) {
    cpu::residual_backward_same(dout.data<float>(), da.data<float>(), dout.numel());
  } else {
    cpu::residual_backward(dout.data<float>(), da.data<float>(), db.data<float>(), dout.numel());
  }
}

}  // namespace adacc::ops
