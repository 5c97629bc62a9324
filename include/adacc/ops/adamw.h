// AdamW with bias correction and decoupled weight decay:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t)
//   param -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * param)
// param, grad, m, v: same shape, f32. step t counts from 1.
#pragma once

#include <cstdint>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::ops {

struct AdamWConfig {
  float lr = 3e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

// Whether the update also sets grad to zero (saves a separate pass over the gradients).
enum class ZeroGrad : std::uint8_t { no, yes };

void adamw_update(Context& ctx, Tensor& param, Tensor& grad, Tensor& m, Tensor& v,
                  std::int64_t step, const AdamWConfig& config, ZeroGrad zero_grad);

}  // namespace adacc::ops
