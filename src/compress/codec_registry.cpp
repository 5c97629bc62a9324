// The codec registry: every codec by name (see codec.h). The table is built once from
// each codec family's instances and is immutable afterwards.
#include <memory>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/ops/op_checks.h"
#include "codec_families.h"

namespace adacc::compress {

namespace {

const std::vector<std::unique_ptr<Codec>>& registry() {
  static const std::vector<std::unique_ptr<Codec>> codecs = [] {
    std::vector<std::unique_ptr<Codec>> all;
    for (auto* family : {&float_codecs, &int_codecs, &softmax_codecs, &gelu_codecs}) {
      for (auto& codec : family()) all.push_back(std::move(codec));
    }
    return all;
  }();
  return codecs;
}

}  // namespace

bool Codec::applies_to(model::TensorRole role) const {
  using model::TensorRole;
  switch (role) {
    case TensorRole::residual:
    case TensorRole::norm_out:
    case TensorRole::qkv:
    case TensorRole::attn_probs:
    case TensorRole::attn_out:
    case TensorRole::linear_out:
    case TensorRole::gelu_in:
    case TensorRole::gelu_out:
    case TensorRole::loss_grad:
      return true;
    default:
      return false;
  }
}

void require_decodable(const Codec& codec, const Tensor& encoded, const Tensor& out) {
  ops::require(out.defined() && out.dtype() == DType::f32 && encoded.defined() &&
                   encoded.dtype() == DType::uint8 &&
                   encoded.nbytes() == codec.encoded_bytes(out.shape()),
               codec.name(),
               "cannot decode " + (encoded.defined() ? encoded.describe() : "missing") + " into " +
                   (out.defined() ? out.describe() : "missing"));
}

const Codec& codec_by_name(std::string_view name) {
  for (const auto& codec : registry()) {
    if (codec->name() == name) return *codec;
  }
  std::string known;
  for (const std::string& n : codec_names()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgument("[codec] unknown codec '" + std::string(name) + "'; known: " + known);
}

std::vector<std::string> codec_names() {
  std::vector<std::string> names;
  for (const auto& codec : registry()) names.emplace_back(codec->name());
  return names;
}

std::vector<std::string> codecs_for_role(model::TensorRole role) {
  std::vector<std::string> names;
  for (const auto& codec : registry()) {
    if (codec->applies_to(role)) names.emplace_back(codec->name());
  }
  return names;
}

}  // namespace adacc::compress
