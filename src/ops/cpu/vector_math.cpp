// Squared norm and scaling over whole f32 tensors on the CPU (see vector_math.h).
#include "adacc/ops/vector_math.h"

#include "adacc/ops/op_checks.h"

namespace adacc::ops {

double sum_of_squares(Context& ctx, const Tensor& x) {
  require(x.defined() && x.dtype() == DType::f32, "sum_of_squares",
          "input must be f32 but is " + (x.defined() ? x.describe() : "missing"));
  require_cpu("sum_of_squares", {&x});
  const float* p = x.data<float>();
  const std::int64_t n = x.numel();
  double total = 0;
  // x (n) -> sum in double (vectorized, 8 lanes; the pass is memory-bound anyway, and a
  // float running sum would lose digits on long tensors).
#pragma omp parallel for simd reduction(+ : total) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = p[i];
    total += v * v;
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
