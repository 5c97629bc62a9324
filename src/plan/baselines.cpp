// Baseline planners (see baselines.h): fixed recipes over tensor roles and the block
// structure of the step graph, used as the points of comparison for adacc's planner.
//
// Block boundaries are found from the graph, not from tensor names: a block's input is an
// activation of another layer that one of the block's ops reads, and what the ops outside
// the blocks (layer -1) read from a block must stay kept for per-block checkpointing.
#include "adacc/plan/baselines.h"

#include <charconv>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/runtime/step_analysis.h"

namespace adacc::plan {

namespace {

using model::StepGraph;
using model::TensorId;
using model::TensorInfo;
using model::TensorKind;
using model::TensorRole;
using runtime::Plan;
using runtime::Policy;

// Recompute the saved activations for which `pick` says yes; keep the rest.
template <class Pick>
Plan recompute_where(const StepGraph& graph, std::string planner, Pick pick) {
  const std::vector<bool> saved = runtime::analyze_step(graph).saved;
  Plan plan = runtime::keep_all_plan(graph);
  plan.planner = std::move(planner);
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    if (saved[i] && graph.tensor(id).kind == TensorKind::activation && pick(graph.tensor(id), id)) {
      plan.decisions[i].policy = Policy::recompute;
    }
  }
  return plan;
}

// Per-block checkpointing keeping the inputs of the blocks l with l % k == 0.
Plan checkpoint_blocks(const StepGraph& graph, int k, std::string planner) {
  // For each activation: read outside the blocks, and the lowest other block that reads it.
  const std::size_t n = graph.tensors().size();
  std::vector<bool> read_outside(n, false);
  std::vector<int> input_of_block(n, -1);
  for (const auto& op : graph.ops()) {
    for (TensorId id : op->inputs()) {
      const TensorInfo& t = graph.tensor(id);
      if (t.kind != TensorKind::activation || t.layer == op->layer()) continue;
      const auto i = static_cast<std::size_t>(id);
      if (op->layer() < 0) {
        read_outside[i] = true;
      } else if (input_of_block[i] < 0 || op->layer() < input_of_block[i]) {
        input_of_block[i] = op->layer();
      }
    }
  }
  return recompute_where(graph, std::move(planner), [&](const TensorInfo& t, TensorId id) {
    const auto i = static_cast<std::size_t>(id);
    if (t.layer < 0 || read_outside[i]) return false;
    return input_of_block[i] < 0 || input_of_block[i] % k != 0;
  });
}

}  // namespace

Plan none_plan(const StepGraph& graph) {
  Plan plan = runtime::keep_all_plan(graph);
  plan.planner = "none";
  return plan;
}

Plan full_plan(const StepGraph& graph) {
  return checkpoint_blocks(graph, 1, "full");
}

Plan selective_plan(const StepGraph& graph) {
  return recompute_where(graph, "selective", [](const TensorInfo& t, TensorId) {
    return t.role == TensorRole::attn_probs || t.role == TensorRole::attn_lse;
  });
}

Plan llmc_plan(const StepGraph& graph) {
  return recompute_where(graph, "llmc", [](const TensorInfo& t, TensorId) {
    return t.layer >= 0 && (t.role == TensorRole::gelu_out || t.role == TensorRole::norm_out);
  });
}

Plan every_k_plan(const StepGraph& graph, int k) {
  if (k < 1) {
    throw InvalidArgument("[plan] every-k checkpointing needs k >= 1 but k=" + std::to_string(k));
  }
  return checkpoint_blocks(graph, k, "every-" + std::to_string(k));
}

Plan compress_plan(const StepGraph& graph, const std::vector<RoleCodec>& by_role,
                   std::string planner) {
  for (const RoleCodec& rc : by_role) {
    const compress::Codec& codec = compress::codec_by_name(rc.codec);
    if (!codec.applies_to(rc.role)) {
      throw InvalidArgument("[plan] compress: codec '" + rc.codec + "' is not meant for role " +
                            std::string(model::tensor_role_name(rc.role)));
    }
  }
  const runtime::StepAnalysis analysis = runtime::analyze_step(graph);
  Plan plan = runtime::keep_all_plan(graph);
  plan.planner = std::move(planner);
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    const TensorInfo& t = graph.tensor(id);
    if (t.dtype != DType::f32 || !analysis.saved[i] || !analysis.recomputable[i]) continue;
    for (const RoleCodec& rc : by_role) {
      if (rc.role == t.role) plan.decisions[i] = {Policy::compress, rc.codec};
    }
  }
  return plan;
}

std::vector<RoleCodec> default_role_codecs() {
  return {
      {TensorRole::residual, "int8-g64"}, {TensorRole::norm_out, "int4-g64"},
      {TensorRole::qkv, "int8-g64"},      {TensorRole::attn_probs, "softmax-u8"},
      {TensorRole::attn_out, "int4-g64"}, {TensorRole::gelu_in, "gelu-deriv-u8"},
      {TensorRole::gelu_out, "int4-g64"},
  };
}

Plan compress_plan(const StepGraph& graph, std::string_view codec) {
  const compress::Codec* found = nullptr;
  try {
    found = &compress::codec_by_name(codec);
  } catch (const InvalidArgument& e) {  // "[codec] unknown codec 'x'; known: ..."
    throw InvalidArgument(std::string("[plan] compress: ") + e.what());
  }
  const compress::Codec& c = *found;
  std::vector<RoleCodec> by_role;
  std::string roles;
  for (int r = 0; r < model::kNumTensorRoles; ++r) {
    const auto role = static_cast<TensorRole>(r);
    if (!c.applies_to(role)) continue;
    by_role.push_back({role, std::string(codec)});
    roles += (roles.empty() ? "" : ", ") + std::string(model::tensor_role_name(role));
  }
  Plan plan = compress_plan(graph, by_role, "compress-" + std::string(codec));
  bool any = false;
  for (const runtime::Decision& d : plan.decisions) any = any || d.policy == Policy::compress;
  if (!any) {
    throw InvalidArgument("[plan] compress: codec '" + std::string(codec) + "' is meant for " +
                          roles + ", and this step saves no such tensor" +
                          (c.applies_to(TensorRole::attn_probs) && roles == "attn_probs"
                               ? " (only naive attention saves its probabilities)"
                               : ""));
  }
  return plan;
}

Plan baseline_plan(const StepGraph& graph, std::string_view name) {
  if (name == "none") return none_plan(graph);
  if (name == "compress") return compress_plan(graph, default_role_codecs(), "compress");
  constexpr std::string_view compress = "compress-";
  if (name.substr(0, compress.size()) == compress) {
    return compress_plan(graph, name.substr(compress.size()));
  }
  if (name == "full") return full_plan(graph);
  if (name == "selective") return selective_plan(graph);
  if (name == "llmc") return llmc_plan(graph);
  constexpr std::string_view every = "every-";
  if (name.substr(0, every.size()) == every) {
    const std::string_view digits = name.substr(every.size());
    int k = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), k);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || k < 1) {
      throw InvalidArgument("[plan] '" + std::string(name) +
                            "': every-<k> needs a whole number k >= 1, e.g. every-2");
    }
    return every_k_plan(graph, k);
  }
  std::string known;
  for (const std::string& n : baseline_names()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgument("[plan] unknown baseline planner '" + std::string(name) +
                        "'; known: " + known);
}

std::vector<std::string> baseline_names() {
  return {"none", "full", "selective", "llmc", "every-<k>", "compress", "compress-<codec>"};
}

}  // namespace adacc::plan
