// AdamW on the CPU (see adamw.h): one fused, threaded, vectorized pass over param, grad
// and the two moments, optionally zeroing the gradient in the same pass.
//
// The update is memory-bound (7 floats of traffic per parameter, 8 when it zeroes the
// gradient, against ~15 flops), so everything happens in a single sweep; the bias
// corrections are computed once per call in double and folded into two float factors.
#include "adacc/ops/adamw.h"

#include <immintrin.h>

#include <cmath>
#include <string>

#include "adacc/ops/op_checks.h"

namespace adacc::ops::cpu {

// param, grad, m, v (n) updated in place; grad set to 0 if kZeroGrad.
// lr_m = lr / (1 - beta1^t), v_scale = 1 / (1 - beta2^t).
//
// The loop is written with AVX-512 intrinsics where available: GCC does not vectorize
// std::sqrt without -fno-math-errno (it keeps a scalar errno path), and a scalar sqrt
// made this pass compute-bound: 275 ms against 72 ms on 124M parameters. (maskz_sqrt
// because _mm512_sqrt_ps trips GCC 12's -Wmaybe-uninitialized inside its own header.)
template <bool kZeroGrad>
void adamw_update(float* param, float* grad, float* m, float* v, std::int64_t n, float lr,
                  float lr_m, float v_scale, float beta1, float beta2, float eps,
                  float weight_decay) {
  const float one_minus_b1 = 1.0f - beta1;
  const float one_minus_b2 = 1.0f - beta2;
  const float decay = lr * weight_decay;
#if defined(__AVX512F__)
  constexpr std::int64_t kW = 16;
  const std::int64_t blocks = (n + kW - 1) / kW;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t i = b * kW;
    const std::int64_t left = n - i;
    const __mmask16 k = left >= kW ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1u);
    const __m512 g = _mm512_maskz_loadu_ps(k, grad + i);
    __m512 mi = _mm512_maskz_loadu_ps(k, m + i);
    __m512 vi = _mm512_maskz_loadu_ps(k, v + i);
    __m512 pi = _mm512_maskz_loadu_ps(k, param + i);
    mi = _mm512_fmadd_ps(_mm512_set1_ps(beta1), mi, _mm512_mul_ps(_mm512_set1_ps(one_minus_b1), g));
    vi = _mm512_fmadd_ps(_mm512_set1_ps(beta2), vi,
                         _mm512_mul_ps(_mm512_set1_ps(one_minus_b2), _mm512_mul_ps(g, g)));
    const __m512 denom = _mm512_add_ps(
        _mm512_maskz_sqrt_ps(k, _mm512_mul_ps(vi, _mm512_set1_ps(v_scale))), _mm512_set1_ps(eps));
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(lr_m), mi), denom);
    pi = _mm512_sub_ps(pi, _mm512_fmadd_ps(_mm512_set1_ps(decay), pi, step));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    _mm512_mask_storeu_ps(param + i, k, pi);
    if constexpr (kZeroGrad) _mm512_mask_storeu_ps(grad + i, k, _mm512_setzero_ps());
  }
#else
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + one_minus_b1 * g;
    const float vi = beta2 * v[i] + one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    // p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)
    param[i] -= lr_m * mi / (std::sqrt(vi * v_scale) + eps) + decay * param[i];
    if constexpr (kZeroGrad) grad[i] = 0.0f;
  }
#endif
}

}  // namespace adacc::ops::cpu

namespace adacc::ops {

void adamw_update(Context& ctx, Tensor& param, Tensor& grad, Tensor& m, Tensor& v,
                  std::int64_t step, const AdamWConfig& config, ZeroGrad zero_grad) {
  constexpr std::string_view kOp = "adamw";
  require(param.defined() && param.dtype() == DType::f32, kOp,
          "param must be f32 but is " + (param.defined() ? param.describe() : "missing"));
  require_cpu(kOp, {&param, &grad, &m, &v});
  require_tensor(kOp, "grad", grad, param.shape());
  require_tensor(kOp, "m", m, param.shape());
  require_tensor(kOp, "v", v, param.shape());
  require(step >= 1, kOp, "step must count from 1 but is " + std::to_string(step));
  // Bias corrections in double: 1 - beta2^t is ~1e-3 at t=1 and loses digits in float.
  const double bias1 = 1.0 - std::pow(static_cast<double>(config.beta1), static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(static_cast<double>(config.beta2), static_cast<double>(step));
  const float lr_m = static_cast<float>(static_cast<double>(config.lr) / bias1);
  const float v_scale = static_cast<float>(1.0 / bias2);
  auto* kernel = zero_grad == ZeroGrad::yes ? &cpu::adamw_update<true> : &cpu::adamw_update<false>;
  kernel(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), param.numel(),
         config.lr, lr_m, v_scale, config.beta1, config.beta2, config.eps, config.weight_decay);
}

}  // namespace adacc::ops
