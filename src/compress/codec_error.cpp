// Codec error measures (see codec_error.h). The round trip runs through the codec as the
// runtime would run it (encode to a compressed buffer, decode into a workspace buffer);
// norms are accumulated in double so that the measure itself adds no visible error.
//
// The weight-gradient error is computed as ||dyᵀ (x̂ - x)|| / ||dyᵀ x||, which equals
// ||dyᵀ x̂ - dyᵀ x|| / ||dyᵀ x|| but does not lose the (small) difference to the
// cancellation of two nearly equal f32 products: x̂ - x is formed exactly or nearly so,
// and a lossless codec gives exactly 0.
#include "adacc/compress/codec_error.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "adacc/ops/matmul.h"
#include "adacc/ops/op_checks.h"

namespace adacc::compress {

namespace {

// a (n) -> sum a_i^2 in double
double squared_norm(const float* a, std::int64_t n) {
  double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * a[i];
  return s;
}

// ||num|| / ||den||, 0 for 0/0 and infinity for a nonzero over 0.
double ratio(double num_sq, double den_sq) {
  if (num_sq == 0) return 0;
  if (den_sq == 0) return std::numeric_limits<double>::infinity();
  return std::sqrt(num_sq / den_sq);
}

// x (any shape, f32) -> x̂ - x (same shape), a workspace tensor
Tensor round_trip_difference(Context& ctx, const Codec& codec, const Tensor& x) {
  Tensor diff = Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace,
                              x.name() + ".codec_diff");
  {
    const Tensor encoded = codec.encode(ctx, x);
    codec.decode(ctx, encoded, diff);
  }  // the encoded buffer is released here
  const float* xp = x.data<float>();
  float* d = diff.data<float>();
  const std::int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) d[i] -= xp[i];
  return diff;
}

void require_f32(std::string_view op, std::string_view what, const Tensor& t) {
  ops::require(t.defined() && t.dtype() == DType::f32 && t.ndim() >= 1, op,
               std::string(what) + " must be an f32 tensor of at least one dimension but is " +
                   (t.defined() ? t.describe() : std::string("missing")));
}

}  // namespace

double relative_l2_error(Context& ctx, const Codec& codec, const Tensor& x) {
  constexpr std::string_view op = "codec_error";
  ops::require(x.defined() && x.dtype() == DType::f32, op,
               "x must be f32 but is " + (x.defined() ? x.describe() : std::string("missing")));
  ops::require_cpu(op, {&x});
  const Tensor diff = round_trip_difference(ctx, codec, x);
  return ratio(squared_norm(diff.data<float>(), diff.numel()),
               squared_norm(x.data<float>(), x.numel()));
}

double linear_weight_grad_error(Context& ctx, const Codec& codec, const Tensor& x,
                                const Tensor& dy) {
  constexpr std::string_view op = "linear_weight_grad_error";
  require_f32(op, "x", x);
  require_f32(op, "dy", dy);
  ops::require_cpu(op, {&x, &dy});
  const Shape lead_x(x.shape().begin(), x.shape().end() - 1);
  const Shape lead_dy(dy.shape().begin(), dy.shape().end() - 1);
  ops::require(lead_x == lead_dy, op,
               "x " + x.describe() + " and dy " + dy.describe() +
                   " must agree on every dimension but the last, (N,IC) and (N,OC)");
  const std::int64_t ic = x.dim(-1);
  const std::int64_t oc = dy.dim(-1);
  const std::int64_t n = shape_numel(lead_x);

  // dW = dyᵀ x: dy (N,OC), x (N,IC) -> dw (OC,IC)
  Tensor dw = Tensor::empty(ctx.allocator(), {oc, ic}, DType::f32, MemCategory::workspace,
                            "codec_error.dw");
  ops::sgemm(ctx, ops::Trans::yes, ops::Trans::no, oc, ic, n, 1.0f, dy.data<float>(), oc,
             x.data<float>(), ic, 0.0f, dw.data<float>(), ic);
  const double dw_sq = squared_norm(dw.data<float>(), dw.numel());

  // E = dyᵀ (x̂ - x): dy (N,OC), diff (N,IC) -> dw (OC,IC), reusing dw's buffer
  const Tensor diff = round_trip_difference(ctx, codec, x);
  ops::sgemm(ctx, ops::Trans::yes, ops::Trans::no, oc, ic, n, 1.0f, dy.data<float>(), oc,
             diff.data<float>(), ic, 0.0f, dw.data<float>(), ic);
  return ratio(squared_norm(dw.data<float>(), dw.numel()), dw_sq);
}

}  // namespace adacc::compress
