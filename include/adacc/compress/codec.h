// Codecs turn an activation into a smaller buffer and back (ARCHITECTURE.md, "Codecs").
// The runtime's compress policy encodes a saved tensor after its last forward use and
// decodes it into a workspace buffer before the backward op that needs it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"

namespace adacc::compress {

class Codec {
 public:
  virtual ~Codec() = default;
  // "bf16", ...
  virtual std::string_view name() const = 0;
  // Bytes of the encoded form of an f32 tensor of this shape (exact, a function of the
  // shape alone, so that plans can be sized before anything runs).
  virtual std::size_t encoded_bytes(const Shape& shape) const = 0;
  // in (f32, any shape) -> a uint8 tensor of encoded_bytes(in.shape()) bytes allocated
  // from ctx's allocator under MemCategory::compressed.
  virtual Tensor encode(Context& ctx, const Tensor& in) const = 0;
  // encoded (from encode) -> out (f32, the original shape), overwritten.
  virtual void decode(Context& ctx, const Tensor& encoded, Tensor& out) const = 0;
};

// The codec with this name; throws InvalidArgument listing the known names.
const Codec& codec_by_name(std::string_view name);
std::vector<std::string> codec_names();

}  // namespace adacc::compress
