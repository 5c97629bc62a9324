// costs_for_graph (see profile_costs.h).
#include "adacc/plan/profile_costs.h"

#include <string>

#include "adacc/core/error.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

namespace {

std::string hint(const runtime::StepProfile& profile) {
  std::string s = " (the profile measured ";
  s += profile.config.spec();
  s += " at batch ";
  s += std::to_string(profile.batch);
  s += " x ";
  s += std::to_string(profile.seq);
  s += "); re-run adacc profile for this model";
  return s;
}

}  // namespace

StepCosts costs_for_graph(const runtime::StepProfile& profile, const model::StepGraph& graph) {
  StepCosts costs;
  costs.forward_seconds.reserve(graph.ops().size());
  costs.backward_seconds.reserve(graph.ops().size());
  for (const auto& op : graph.ops()) {
    const std::string name = runtime::block_zero_name(op->name(), op->layer());
    const runtime::ProfiledOp* p = profile.find_op(name);
    if (p == nullptr || p->kind != op->kind()) {
      throw InvalidArgument("[profile] no measurement of op '" + op->name() + "' (as '" + name +
                            "', " + std::string(op->kind()) + ")" + hint(profile));
    }
    costs.forward_seconds.push_back(p->forward_seconds);
    costs.backward_seconds.push_back(p->backward_seconds);
  }
  costs.codecs.resize(graph.tensors().size());
  const std::vector<bool> saved = runtime::saved_tensors(graph);
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<model::TensorId>(i);
    if (!runtime::is_codec_candidate(graph, saved, id)) continue;
    const model::TensorInfo& t = graph.tensor(id);
    const std::string name = runtime::block_zero_name(t.name, t.layer);
    const runtime::ProfiledTensor* p = profile.find_tensor(name);
    if (p == nullptr) {
      throw InvalidArgument("[profile] no codec measurements of tensor '" + t.name + "' (as '" +
                            name + "')" + hint(profile));
    }
    if (p->bytes != t.nbytes() || p->role != t.role) {
      throw InvalidArgument("[profile] tensor '" + t.name + "' has " + std::to_string(t.nbytes()) +
                            " bytes but its measured namesake '" + name + "' had " +
                            std::to_string(p->bytes) + hint(profile));
    }
    for (const runtime::ProfiledCodec& c : p->codecs) {
      costs.codecs[i].push_back(CodecCost{c.codec, c.encoded_bytes, c.encode_seconds,
                                          c.decode_seconds, c.grad_error, c.tensor_error});
    }
  }
  return costs;
}

}  // namespace adacc::plan
