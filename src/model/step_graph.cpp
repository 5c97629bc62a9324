// Step graph bookkeeping and lifetime analysis (see step_graph.h).
#include "adacc/model/step_graph.h"

#include <algorithm>

#include "adacc/core/error.h"

namespace adacc::model {

std::string_view tensor_role_name(TensorRole role) {
  switch (role) {
    case TensorRole::tokens:
      return "tokens";
    case TensorRole::targets:
      return "targets";
    case TensorRole::param:
      return "param";
    case TensorRole::residual:
      return "residual";
    case TensorRole::norm_out:
      return "norm_out";
    case TensorRole::norm_stats:
      return "norm_stats";
    case TensorRole::qkv:
      return "qkv";
    case TensorRole::attn_probs:
      return "attn_probs";
    case TensorRole::attn_lse:
      return "attn_lse";
    case TensorRole::attn_out:
      return "attn_out";
    case TensorRole::linear_out:
      return "linear_out";
    case TensorRole::gelu_in:
      return "gelu_in";
    case TensorRole::gelu_out:
      return "gelu_out";
    case TensorRole::losses:
      return "losses";
    case TensorRole::loss_grad:
      return "loss_grad";
  }
  return "?";
}

TensorId StepGraph::add_tensor(TensorInfo info) {
  tensors_.push_back(std::move(info));
  return static_cast<TensorId>(tensors_.size() - 1);
}

int StepGraph::add_op(std::unique_ptr<OpNode> op) {
  const int index = static_cast<int>(ops_.size());
  for (TensorId id : op->outputs()) {
    TensorInfo& t = tensors_.at(static_cast<std::size_t>(id));
    if (t.producer != -1) {
      throw InvalidArgument("[graph] tensor '" + t.name + "' is produced by two ops");
    }
    t.producer = index;
  }
  ops_.push_back(std::move(op));
  return index;
}

TensorId StepGraph::find(std::string_view name) const {
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name == name) return static_cast<TensorId>(i);
  }
  throw InvalidArgument("[graph] no tensor named '" + std::string(name) + "'");
}

std::vector<TensorLifetime> analyze_lifetimes(const StepGraph& graph) {
  std::vector<TensorLifetime> life(graph.tensors().size());
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    life[i].last_forward_use = graph.tensors()[i].producer;
  }
  for (int o = 0; o < static_cast<int>(graph.ops().size()); ++o) {
    const OpNode& op = graph.op(o);
    for (TensorId id : op.inputs()) {
      auto& l = life[static_cast<std::size_t>(id)];
      l.last_forward_use = std::max(l.last_forward_use, o);
    }
    for (TensorId id : op.saved()) {
      auto& l = life[static_cast<std::size_t>(id)];
      l.first_backward_use = std::max(l.first_backward_use, o);
      l.last_backward_use = l.last_backward_use < 0 ? o : std::min(l.last_backward_use, o);
    }
  }
  return life;
}

}  // namespace adacc::model
