// Codecs turn an activation into a smaller buffer and back (docs/architecture.md, "Codecs").
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
#include "adacc/model/step_graph.h"

namespace adacc::compress {

class Codec {
 public:
  virtual ~Codec() = default;
  // "bf16", ...
  virtual std::string_view name() const = 0;
  // Its parameters in words ("4 bits, groups of 64 along the last dimension, ...").
  virtual std::string description() const = 0;
  // Bytes of the encoded form of an f32 tensor of this shape (exact, a function of the
  // shape alone, so that plans can be sized before anything runs).
  virtual std::size_t encoded_bytes(const Shape& shape) const = 0;
  // in (f32, any shape) -> a uint8 tensor of encoded_bytes(in.shape()) bytes allocated
  // from ctx's allocator under MemCategory::compressed.
  virtual Tensor encode(Context& ctx, const Tensor& in) const = 0;
  // encoded (from encode) -> out (f32, the original shape), overwritten.
  virtual void decode(Context& ctx, const Tensor& encoded, Tensor& out) const = 0;
  // The tensor roles this codec is meant for (the registry of which codec applies where;
  // runtime::validate rejects a plan that uses a codec on another role). The generic
  // codecs take the dense activations: residual, norm_out, qkv, attn_probs, attn_out,
  // linear_out, gelu_in, gelu_out, loss_grad — not the small, precision-critical
  // LayerNorm statistics, log-sum-exps and losses.
  virtual bool applies_to(model::TensorRole role) const;
  // What decode gives back: the tensor (an approximation of it), or a derived form that
  // only some backward ops accept (model::SavedForm).
  virtual model::SavedForm decodes_to() const { return model::SavedForm::value; }
};

// The codec with this name; throws InvalidArgument listing the known names.
const Codec& codec_by_name(std::string_view name);
std::vector<std::string> codec_names();
// The names of the codecs that apply to this role, in registry order.
std::vector<std::string> codecs_for_role(model::TensorRole role);

}  // namespace adacc::compress
