// The flat GPT-2 parameter layout and its named views (see param_set.h).
#include "adacc/model/param_set.h"

namespace adacc::model {

namespace {

// The twelve per-layer kinds, stacked over L in this order, and where each lives.
struct Kind {
  Tensor LayerParams::*member;
  int rows, cols;  // shape in units of C (cols 0: a vector)
  const char* hf_suffix;
  Decay decay;
};
constexpr Kind kKinds[] = {
    {&LayerParams::ln1w, 1, 0, "ln_1.weight", Decay::no},
    {&LayerParams::ln1b, 1, 0, "ln_1.bias", Decay::no},
    {&LayerParams::qkvw, 3, 1, "attn.c_attn.weight", Decay::yes},
    {&LayerParams::qkvb, 3, 0, "attn.c_attn.bias", Decay::no},
    {&LayerParams::attprojw, 1, 1, "attn.c_proj.weight", Decay::yes},
    {&LayerParams::attprojb, 1, 0, "attn.c_proj.bias", Decay::no},
    {&LayerParams::ln2w, 1, 0, "ln_2.weight", Decay::no},
    {&LayerParams::ln2b, 1, 0, "ln_2.bias", Decay::no},
    {&LayerParams::fcw, 4, 1, "mlp.c_fc.weight", Decay::yes},
    {&LayerParams::fcb, 4, 0, "mlp.c_fc.bias", Decay::no},
    {&LayerParams::fcprojw, 1, 4, "mlp.c_proj.weight", Decay::yes},
    {&LayerParams::fcprojb, 1, 0, "mlp.c_proj.bias", Decay::no},
};

}  // namespace

std::vector<ParamSpec> param_layout(const ModelConfig& config) {
  config.validate();
  const std::int64_t L = config.n_layer, C = config.n_embd;
  std::vector<ParamSpec> specs;
  std::int64_t offset = 0;
  auto add = [&](std::string name, Shape shape, Decay decay) {
    const std::int64_t n = shape_numel(shape);
    specs.push_back({std::move(name), std::move(shape), decay, offset});
    offset += n;
  };
  add("transformer.wte.weight", {config.padded_vocab, C}, Decay::yes);
  add("transformer.wpe.weight", {config.max_seq, C}, Decay::yes);
  for (const Kind& kind : kKinds) {
    const Shape shape = kind.cols == 0 ? Shape{kind.rows * C} : Shape{kind.rows * C, kind.cols * C};
    for (std::int64_t l = 0; l < L; ++l) {
      add("transformer.h." + std::to_string(l) + "." + kind.hf_suffix, shape, kind.decay);
    }
  }
  add("transformer.ln_f.weight", {C}, Decay::no);
  add("transformer.ln_f.bias", {C}, Decay::no);
  if (offset != config.num_parameters()) {
    throw InvalidArgument("[model] parameter layout covers " + std::to_string(offset) + " of " +
                          std::to_string(config.num_parameters()) + " parameters");
  }
  return specs;
}

ParamSet::ParamSet(const ModelConfig& config, Allocator& allocator, MemCategory category,
                   std::string_view label) {
  const std::vector<ParamSpec> specs = param_layout(config);
  const auto L = static_cast<std::size_t>(config.n_layer);
  flat = Tensor::zeros(allocator, {config.num_parameters()}, DType::f32, category, label);
  for (const ParamSpec& spec : specs) {
    named_.push_back({spec.name, flat.view(spec.offset, spec.shape, spec.name), spec.decay});
  }
  wte = named_[0].tensor;
  wpe = named_[1].tensor;
  layers.resize(L);
  for (std::size_t k = 0; k < std::size(kKinds); ++k) {
    for (std::size_t l = 0; l < L; ++l) layers[l].*kKinds[k].member = named_[2 + k * L + l].tensor;
  }
  lnfw = named_[2 + 12 * L].tensor;
  lnfb = named_[3 + 12 * L].tensor;
}

}  // namespace adacc::model
