// The predicted step time of a plan (see cost_model.h).
#include "adacc/plan/cost_model.h"

#include <cstddef>
#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/runtime/recompute_counts.h"

namespace adacc::plan {

const CodecCost* find_codec_cost(const StepCosts& costs, model::TensorId id,
                                 const std::string& codec) {
  const auto k = static_cast<std::size_t>(id);
  if (id < 0 || k >= costs.codecs.size()) return nullptr;
  for (const CodecCost& c : costs.codecs[k]) {
    if (c.codec == codec) return &c;
  }
  return nullptr;
}

StepTimeBreakdown predict_step_time(const model::StepGraph& graph, const runtime::Plan& plan,
                                    const StepCosts& costs) {
  const std::size_t n_ops = graph.ops().size();
  if (costs.forward_seconds.size() != n_ops || costs.backward_seconds.size() != n_ops) {
    throw InvalidArgument("[plan] the step costs have " +
                          std::to_string(costs.forward_seconds.size()) + " forward and " +
                          std::to_string(costs.backward_seconds.size()) +
                          " backward op times but the graph has " + std::to_string(n_ops) +
                          " ops; profile this model shape");
  }
  const std::vector<int> counts = runtime::recompute_counts(graph, plan);
  StepTimeBreakdown t;
  t.keep_all = costs.keep_all_seconds();
  for (std::size_t o = 0; o < n_ops; ++o) t.recompute += counts[o] * costs.forward_seconds[o];
  for (std::size_t k = 0; k < graph.tensors().size(); ++k) {
    const runtime::Decision& d = plan.decisions[k];
    if (d.policy != runtime::Policy::compress) continue;
    const CodecCost* c = find_codec_cost(costs, static_cast<model::TensorId>(k), d.codec);
    if (c == nullptr) {
      throw InvalidArgument("[plan] '" + graph.tensors()[k].name + "' is compressed with '" +
                            d.codec +
                            "' but the step costs have no measurement of that codec on it; "
                            "profile it or choose a measured codec");
    }
    t.encode += c->encode_seconds;
    t.decode += c->decode_seconds;
  }
  return t;
}

double predict_step_seconds(const model::StepGraph& graph, const runtime::Plan& plan,
                            const StepCosts& costs) {
  return predict_step_time(graph, plan, costs).total();
}

}  // namespace adacc::plan
