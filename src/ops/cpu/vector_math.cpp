// Squared norm and scaling over whole f32 tensors on the CPU (see vector_math.h).
#include "adacc/ops/vector_math.h"

#include <algorithm>

#include "adacc/ops/op_checks.h"

namespace adacc::ops {

double sum_of_squares(Context& ctx, const Tensor& x) {
  require(x.defined() && x.dtype() == DType::f32, "sum_of_squares",
          "input must be f32 but is " + (x.defined() ? x.describe() : "missing"));
  require_cpu("sum_of_squares", {&x});
  const float* p = x.data<float>();
  const std::int64_t n = x.numel();
  double total = 0;
  // x (n): blocks of 4096 summed in float (vectorized), blocks added in double.
  constexpr std::int64_t kBlock = 4096;
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (std::int64_t i = b * kBlock; i < end; ++i) s += p[i] * p[i];
    total += s;
  }
  return total;
}

void scale_inplace(Context& ctx, Tensor& x, float factor) {
  require(x.defined() && x.dtype() == DType::f32, "scale",
          "input must be f32 but is " + (x.defined() ? x.describe() : "missing"));
  require_cpu("scale", {&x});
  float* p = x.data<float>();
  const std::int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) p[i] *= factor;
}

}  // namespace adacc::ops
