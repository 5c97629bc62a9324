// What a codec does to a live tensor, measured on a sample of it while training runs
// (docs/evolution.md): the relative error of encode-then-decode and the outlier
// statistics that make low-bit codecs fail (the share of values beyond k standard
// deviations, and the largest |x| / sigma of a group of 64 along the last dimension).
#pragma once

#include <cstdint>

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::evolve {

struct CodecSample {
  // ||decode(encode(x)) - x|| / ||x|| over the bulk of the sample: the values within
  // kOutlierSigmas of the mean. (Over all values, outliers dominate both norms: a channel of
  // outliers that wipes out a low-bit codec's resolution for every other value of its
  // groups lowers the plain relative error.) Form-aware: against gelu'(x) for a codec that
  // decodes to it. Without outliers it is the plain relative error.
  double tensor_error = 0;
  double full_error = 0;      // the same over every value
  double outlier_share = 0;   // share of |x - mean| > kOutlierSigmas * sigma
  double max_over_sigma = 0;  // largest over groups of max |x - mean| / sigma of the group
  std::int64_t elements = 0;  // elements sampled
};

inline constexpr double kOutlierSigmas = 6;
inline constexpr std::int64_t kSampleGroup = 64;
// The sample: whole leading slices (rows of the last dimension; for 4-d tensors, whole
// (T,T) matrices, as the attention codecs need) from the start of the tensor, as many as
// fit in this many elements, at least one.
inline constexpr std::int64_t kMaxSampleElements = 1 << 16;

// `value` (f32) encoded and decoded by `codec` on the sample (a view of value's first
// slices; allocations: the encoded and decoded sample, from ctx's allocator). For a codec
// that decodes to GELU's derivative the error is against gelu'(x).
CodecSample sample_codec(Context& ctx, const compress::Codec& codec, const Tensor& value,
                         std::int64_t max_elements = kMaxSampleElements);

}  // namespace adacc::evolve
