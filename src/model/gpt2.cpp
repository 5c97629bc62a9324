// GPT-2 initialisation and step graph (see gpt2.h).
#include "adacc/model/gpt2.h"

#include <charconv>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "adacc/core/error.h"
#include "adacc/model/graph_ops.h"

namespace adacc::model {

Gpt2::Gpt2(ModelConfig config, Allocator& allocator)
    : config_(std::move(config)),
      params_(config_, allocator, MemCategory::params, "params"),
      grads_(config_, allocator, MemCategory::grads, "grads") {}

void Gpt2::init_weights(Rng& rng) {
  const float std_ = 0.02f;
  const float proj_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
  auto normal = [&](Tensor& t, float s) {
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = s * rng.normal();
  };
  auto fill = [](Tensor& t, float v) {
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = v;
  };
  params_.flat.zero();
  Tensor real_wte = params_.wte.view(0, {config_.vocab, config_.n_embd});
  normal(real_wte, std_);
  normal(params_.wpe, std_);
  for (LayerParams& l : params_.layers) {
    fill(l.ln1w, 1.0f);
    fill(l.ln2w, 1.0f);
    normal(l.qkvw, std_);
    normal(l.attprojw, proj_std);
    normal(l.fcw, std_);
    normal(l.fcprojw, proj_std);
  }
  fill(params_.lnfw, 1.0f);
}

StepGraph Gpt2::build_graph(int B, int T) const {
  return build_gpt2_graph(config_, B, T);
}

StepGraph build_gpt2_graph(const ModelConfig& config, int B, int T) {
  if (B <= 0 || T <= 0) {
    throw InvalidArgument("[gpt2] batch B=" + std::to_string(B) +
                          " and sequence T=" + std::to_string(T) + " must be positive");
  }
  if (T > config.max_seq) {
    throw InvalidArgument("[gpt2] sequence length T=" + std::to_string(T) +
                          " exceeds the model's maximum " + std::to_string(config.max_seq) +
                          "; use --seq " + std::to_string(config.max_seq) + " or less");
  }
  const std::int64_t b = B, t = T, C = config.n_embd, H = config.n_head;
  StepGraph g;
  g.config = config;
  g.batch = B;
  g.seq = T;

  // Parameters, in ParamSet::named() order. A block's parameters are looked up by their
  // suffix and layer ("transformer.h.<layer>.<suffix>"): one small map of suffixes, each
  // to its ids by layer, so that a graph of many blocks is built in time linear in L.
  std::unordered_map<std::string_view, TensorId> param_id;                  // outside blocks
  std::unordered_map<std::string_view, std::vector<TensorId>> block_param;  // by suffix
  const std::vector<ParamSpec> named = param_layout(config);
  constexpr std::string_view kBlockPrefix = "transformer.h.";
  for (std::size_t i = 0; i < named.size(); ++i) {
    TensorInfo info;
    info.name = named[i].name;
    info.shape = named[i].shape;
    info.kind = TensorKind::param;
    info.role = TensorRole::param;
    info.param_index = static_cast<int>(i);
    const TensorId id = g.add_tensor(std::move(info));
    const std::string_view name = named[i].name;
    if (name.substr(0, kBlockPrefix.size()) != kBlockPrefix) {
      param_id.emplace(name, id);
      continue;
    }
    const char* const last = name.data() + name.size();
    int layer = -1;
    const auto [end, ec] = std::from_chars(name.data() + kBlockPrefix.size(), last, layer);
    if (ec != std::errc() || end == last || *end != '.' || layer < 0 || layer >= config.n_layer) {
      throw InvalidArgument("[gpt2] parameter '" + named[i].name + "' names no block");
    }
    std::vector<TensorId>& ids = block_param[std::string_view(end + 1, last)];
    ids.resize(static_cast<std::size_t>(config.n_layer), kNoTensor);
    ids[static_cast<std::size_t>(layer)] = id;
  }
  auto param = [&](int layer, const char* suffix) {
    const TensorId id = block_param.at(suffix).at(static_cast<std::size_t>(layer));
    if (id == kNoTensor) {
      throw InvalidArgument("[gpt2] block " + std::to_string(layer) + " has no parameter '" +
                            suffix + "'");
    }
    return id;
  };
  auto act = [&](std::string name, Shape shape, TensorRole role, int layer,
                 DType dtype = DType::f32) {
    TensorInfo info;
    info.name = std::move(name);
    info.shape = std::move(shape);
    info.dtype = dtype;
    info.kind = TensorKind::activation;
    info.role = role;
    info.layer = layer;
    return g.add_tensor(std::move(info));
  };

  TensorInfo tokens{"tokens", {b, t}, DType::int32, TensorKind::input, TensorRole::tokens};
  TensorInfo targets{"targets", {b, t}, DType::int32, TensorKind::input, TensorRole::targets};
  g.tokens = g.add_tensor(std::move(tokens));
  g.targets = g.add_tensor(std::move(targets));

  TensorId x = act("embed.out", {b, t, C}, TensorRole::residual, -1);
  g.add_op(make_embedding("embed", g.tokens, param_id.at("transformer.wte.weight"),
                          param_id.at("transformer.wpe.weight"), x));

  for (int l = 0; l < config.n_layer; ++l) {
    std::string p = "h";
    p += std::to_string(l);
    p += ".";
    const TensorId ln1 = act(p + "ln1.out", {b, t, C}, TensorRole::norm_out, l);
    const TensorId ln1_mean = act(p + "ln1.mean", {b, t}, TensorRole::norm_stats, l);
    const TensorId ln1_rstd = act(p + "ln1.rstd", {b, t}, TensorRole::norm_stats, l);
    g.add_op(make_layernorm(p + "ln1", l, g, x, param(l, "ln_1.weight"), param(l, "ln_1.bias"), ln1,
                            ln1_mean, ln1_rstd));

    const TensorId qkv = act(p + "qkv.out", {b, t, 3 * C}, TensorRole::qkv, l);
    g.add_op(make_linear(p + "qkv", l, g, ln1, param(l, "attn.c_attn.weight"),
                         param(l, "attn.c_attn.bias"), qkv));

    const TensorId atty = act(p + "attn.out", {b, t, C}, TensorRole::attn_out, l);
    const TensorId stats = config.attention == ops::AttentionKind::naive
                               ? act(p + "attn.probs", {b, H, t, t}, TensorRole::attn_probs, l)
                               : act(p + "attn.lse", {b, H, t}, TensorRole::attn_lse, l);
    g.add_op(make_attention(p + "attn", l, g, config.attention, config.n_head, qkv, atty, stats));

    const TensorId attproj = act(p + "attn_proj.out", {b, t, C}, TensorRole::linear_out, l);
    g.add_op(make_linear(p + "attn_proj", l, g, atty, param(l, "attn.c_proj.weight"),
                         param(l, "attn.c_proj.bias"), attproj));

    const TensorId res1 = act(p + "res1.out", {b, t, C}, TensorRole::residual, l);
    g.add_op(make_residual(p + "res1", l, x, attproj, res1));

    const TensorId ln2 = act(p + "ln2.out", {b, t, C}, TensorRole::norm_out, l);
    const TensorId ln2_mean = act(p + "ln2.mean", {b, t}, TensorRole::norm_stats, l);
    const TensorId ln2_rstd = act(p + "ln2.rstd", {b, t}, TensorRole::norm_stats, l);
    g.add_op(make_layernorm(p + "ln2", l, g, res1, param(l, "ln_2.weight"), param(l, "ln_2.bias"),
                            ln2, ln2_mean, ln2_rstd));

    const TensorId fch = act(p + "fc.out", {b, t, 4 * C}, TensorRole::gelu_in, l);
    g.add_op(make_linear(p + "fc", l, g, ln2, param(l, "mlp.c_fc.weight"),
                         param(l, "mlp.c_fc.bias"), fch));

    const TensorId fch_gelu = act(p + "gelu.out", {b, t, 4 * C}, TensorRole::gelu_out, l);
    g.add_op(make_gelu(p + "gelu", l, fch, fch_gelu));

    const TensorId fcproj = act(p + "fc_proj.out", {b, t, C}, TensorRole::linear_out, l);
    g.add_op(make_linear(p + "fc_proj", l, g, fch_gelu, param(l, "mlp.c_proj.weight"),
                         param(l, "mlp.c_proj.bias"), fcproj));

    const TensorId res2 = act(p + "res2.out", {b, t, C}, TensorRole::residual, l);
    g.add_op(make_residual(p + "res2", l, res1, fcproj, res2));
    x = res2;
  }

  const TensorId lnf = act("lnf.out", {b, t, C}, TensorRole::norm_out, -1);
  const TensorId lnf_mean = act("lnf.mean", {b, t}, TensorRole::norm_stats, -1);
  const TensorId lnf_rstd = act("lnf.rstd", {b, t}, TensorRole::norm_stats, -1);
  g.add_op(make_layernorm("lnf", -1, g, x, param_id.at("transformer.ln_f.weight"),
                          param_id.at("transformer.ln_f.bias"), lnf, lnf_mean, lnf_rstd));
  const TensorId losses = act("loss.losses", {b, t}, TensorRole::losses, -1);
  const TensorId loss_grad = act("loss.grad", {b, t, C}, TensorRole::loss_grad, -1);
  g.add_op(make_lm_head_loss("loss", g, config.vocab, lnf, param_id.at("transformer.wte.weight"),
                             g.targets, losses, loss_grad));
  return g;
}

}  // namespace adacc::model
