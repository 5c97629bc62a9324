// A codec's error and a tensor's outlier statistics on a sample (see codec_sample.h).
#include "adacc/evolve/codec_sample.h"

#include <algorithm>
#include <cmath>

#include "adacc/core/error.h"
#include "adacc/ops/gelu_math.h"

namespace adacc::evolve {

namespace {

// value (d0, ..., dn-1) -> the leading slices that fit in max_elements: (k, d1, ..., dn-1)
// for n <= 3 (rows of the last dimension, flattened), (k, d1... ) of whole (T,T) matrices
// for n = 4.
Tensor sample_view(const Tensor& value, std::int64_t max_elements) {
  const Shape& s = value.shape();
  if (s.empty()) return value;
  std::int64_t unit = s.back();
  Shape unit_shape{s.back()};
  if (s.size() == 4) {  // (B,H,T,T): whole matrices
    unit = s[2] * s[3];
    unit_shape = {1, 1, s[2], s[3]};
  }
  if (unit <= 0) return value;
  const std::int64_t units =
      std::max<std::int64_t>(1, std::min(value.numel() / unit, max_elements / unit));
  if (s.size() == 4) return value.view(0, {units, 1, s[2], s[3]});
  return value.view(0, {units, s.back()});
}

}  // namespace

CodecSample sample_codec(Context& ctx, const compress::Codec& codec, const Tensor& value,
                         std::int64_t max_elements) {
  if (value.dtype() != DType::f32) {
    throw InvalidArgument("[evolve] codecs are sampled on f32 tensors; got " + value.describe());
  }
  const Tensor x = sample_view(value, max_elements);
  const std::int64_t n = x.numel();
  CodecSample out;
  out.elements = n;
  if (n == 0) return out;
  const float* v = x.data<float>();

  // Outliers: against the sample's mean and sigma, and per group of kSampleGroup.
  double sum = 0, sq = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    sum += v[i];
    sq += static_cast<double>(v[i]) * v[i];
  }
  const double mean = sum / static_cast<double>(n);
  const double sigma = std::sqrt(std::max(0.0, sq / static_cast<double>(n) - mean * mean));
  std::int64_t beyond = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (sigma > 0 && std::abs(v[i] - mean) > kOutlierSigmas * sigma) ++beyond;
  }
  out.outlier_share = static_cast<double>(beyond) / static_cast<double>(n);
  for (std::int64_t g = 0; g < n; g += kSampleGroup) {
    const std::int64_t e = std::min(n, g + kSampleGroup);
    double gs = 0, gq = 0, gmax = 0;
    for (std::int64_t i = g; i < e; ++i) {
      gs += v[i];
      gq += static_cast<double>(v[i]) * v[i];
    }
    const double m = gs / static_cast<double>(e - g);
    const double sd = std::sqrt(std::max(0.0, gq / static_cast<double>(e - g) - m * m));
    for (std::int64_t i = g; i < e; ++i) gmax = std::max(gmax, std::abs(v[i] - m));
    if (sd > 0) out.max_over_sigma = std::max(out.max_over_sigma, gmax / sd);
  }

  // The codec's error, in the form it decodes to.
  const Tensor enc = codec.encode(ctx, x);
  Tensor dec =
      Tensor::empty(ctx.allocator(), x.shape(), DType::f32, MemCategory::workspace, "sample");
  codec.decode(ctx, enc, dec);
  const bool derivative = codec.decodes_to() == model::SavedForm::gelu_derivative;
  const float* d = dec.data<float>();
  auto relative = [](double diff, double ref) {
    return ref > 0 ? std::sqrt(diff / ref) : (diff > 0 ? INFINITY : 0.0);
  };
  double diff = 0, ref = 0, bulk_diff = 0, bulk_ref = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double want = derivative ? ops::gelu_math::gelu_derivative(v[i]) : v[i];
    const double e = (static_cast<double>(d[i]) - want) * (static_cast<double>(d[i]) - want);
    diff += e;
    ref += want * want;
    if (!(sigma > 0 && std::abs(v[i] - mean) > kOutlierSigmas * sigma)) {
      bulk_diff += e;
      bulk_ref += want * want;
    }
  }
  out.full_error = relative(diff, ref);
  out.tensor_error = relative(bulk_diff, bulk_ref);
  return out;
}

}  // namespace adacc::evolve
