// The flat GPT-2 parameter layout and its named views (see param_set.h).
#include "adacc/model/param_set.h"

namespace adacc::model {

ParamSet::ParamSet(const ModelConfig& config, Allocator& allocator, MemCategory category,
                   std::string_view label) {
  config.validate();
  const std::int64_t L = config.n_layer, C = config.n_embd, Vp = config.padded_vocab,
                     maxT = config.max_seq;
  flat = Tensor::zeros(allocator, {config.num_parameters()}, DType::f32, category, label);
  std::int64_t offset = 0;
  auto take = [&](Shape shape, const std::string& name) {
    Tensor t = flat.view(offset, shape, name);
    offset += shape_numel(shape);
    return t;
  };
  wte = take({Vp, C}, "wte");
  wpe = take({maxT, C}, "wpe");
  // Stacked per-layer kinds, then split into per-layer views.
  struct Kind {
    Tensor LayerParams::*member;
    Shape shape;  // per layer
    const char* hf_suffix;
    Decay decay;
  };
  const Kind kinds[] = {
      {&LayerParams::ln1w, {C}, "ln_1.weight", Decay::no},
      {&LayerParams::ln1b, {C}, "ln_1.bias", Decay::no},
      {&LayerParams::qkvw, {3 * C, C}, "attn.c_attn.weight", Decay::yes},
      {&LayerParams::qkvb, {3 * C}, "attn.c_attn.bias", Decay::no},
      {&LayerParams::attprojw, {C, C}, "attn.c_proj.weight", Decay::yes},
      {&LayerParams::attprojb, {C}, "attn.c_proj.bias", Decay::no},
      {&LayerParams::ln2w, {C}, "ln_2.weight", Decay::no},
      {&LayerParams::ln2b, {C}, "ln_2.bias", Decay::no},
      {&LayerParams::fcw, {4 * C, C}, "mlp.c_fc.weight", Decay::yes},
      {&LayerParams::fcb, {4 * C}, "mlp.c_fc.bias", Decay::no},
      {&LayerParams::fcprojw, {C, 4 * C}, "mlp.c_proj.weight", Decay::yes},
      {&LayerParams::fcprojb, {C}, "mlp.c_proj.bias", Decay::no},
  };
  layers.resize(static_cast<std::size_t>(L));
  named_.push_back({"transformer.wte.weight", wte, Decay::yes});
  named_.push_back({"transformer.wpe.weight", wpe, Decay::yes});
  for (const Kind& kind : kinds) {
    for (std::int64_t l = 0; l < L; ++l) {
      const std::string name = "transformer.h." + std::to_string(l) + "." + kind.hf_suffix;
      Tensor t = take(kind.shape, name);
      layers[static_cast<std::size_t>(l)].*kind.member = t;
      named_.push_back({name, t, kind.decay});
    }
  }
  lnfw = take({C}, "transformer.ln_f.weight");
  lnfb = take({C}, "transformer.ln_f.bias");
  named_.push_back({"transformer.ln_f.weight", lnfw, Decay::no});
  named_.push_back({"transformer.ln_f.bias", lnfb, Decay::no});
  if (offset != flat.numel()) {
    throw InvalidArgument("[model] parameter layout covers " + std::to_string(offset) + " of " +
                          std::to_string(flat.numel()) + " parameters");
  }
}

}  // namespace adacc::model
