// The step schedule on presence flags, counting re-runs (see recompute_counts.h).
#include "adacc/runtime/recompute_counts.h"

#include <cstddef>

#include "step_schedule.h"

namespace adacc::runtime {

namespace {

// The schedule's store on presence flags: what is present, encoded, and has a gradient,
// and how often each op is re-run.
class PresenceStore {
 public:
  explicit PresenceStore(const model::StepGraph& graph)
      : graph_(graph),
        present_(graph.tensors().size(), 0),
        encoded_(graph.tensors().size(), 0),
        grad_(graph.tensors().size(), 0),
        counts_(graph.ops().size(), 0) {
    for (std::size_t k = 0; k < graph.tensors().size(); ++k) {
      if (graph.tensors()[k].kind != model::TensorKind::activation) present_[k] = 1;
    }
  }

  bool present(model::TensorId id) const { return present_[i(id)] != 0; }
  bool has_encoded(model::TensorId id) const { return encoded_[i(id)] != 0; }
  bool has_grad(model::TensorId id) const { return grad_[i(id)] != 0; }

  void forward(int o) { produce(o, model::Pass::train); }
  void recompute(int o) {
    ++counts_[static_cast<std::size_t>(o)];
    produce(o, model::Pass::train);
  }
  void backward(int o) {
    const model::OpNode& op = graph_.op(o);
    for (model::TensorId in : op.inputs()) {
      if (graph_.tensor(in).kind == model::TensorKind::activation) grad_[i(in)] = 1;
    }
    grad_[i(op.outputs().front())] = 1;
  }
  void encode(model::TensorId id, const compress::Codec& /*codec*/) {
    encoded_[i(id)] = 1;
    present_[i(id)] = 0;
  }
  void decode(model::TensorId id, const compress::Codec& /*codec*/) { present_[i(id)] = 1; }
  void free_value(model::TensorId id) { present_[i(id)] = 0; }
  void free_encoded(model::TensorId id) { encoded_[i(id)] = 0; }
  void free_grad(model::TensorId id) { grad_[i(id)] = 0; }
  void after(const detail::ScheduleEvent& /*event*/) {}

  std::vector<int> counts() const { return counts_; }

 private:
  static std::size_t i(model::TensorId id) { return static_cast<std::size_t>(id); }
  void produce(int o, model::Pass pass) {
    const model::OpNode& op = graph_.op(o);
    for (model::TensorId out : op.outputs()) {
      if (op.produces(out, pass)) present_[i(out)] = 1;
    }
  }

  const model::StepGraph& graph_;
  std::vector<char> present_, encoded_, grad_;
  std::vector<int> counts_;
};

}  // namespace

std::vector<int> recompute_counts(const model::StepGraph& graph, const Plan& plan) {
  validate(graph, plan);
  const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
  const detail::StepSchedule<PresenceStore> schedule(graph, plan, life);
  PresenceStore store(graph);
  schedule.forward(store, model::Pass::train, static_cast<int>(graph.ops().size()));
  schedule.backward(store);
  return store.counts();
}

}  // namespace adacc::runtime
