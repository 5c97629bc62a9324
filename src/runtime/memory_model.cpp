// The memory model: the step schedule run on byte counts (see memory_model.h).
#include "adacc/runtime/memory_model.h"

#include <algorithm>

#include "adacc/ops/workspace.h"
#include "step_schedule.h"

namespace adacc::runtime {

using model::TensorId;
using ops::accounted_bytes;

std::array<std::size_t, kMemCategories> training_fixed_bytes(const model::ModelConfig& config,
                                                             int batch, int seq,
                                                             bool with_optimizer) {
  std::array<std::size_t, kMemCategories> fixed{};
  const std::size_t flat = accounted_bytes(static_cast<std::size_t>(config.num_parameters()) * 4);
  fixed[static_cast<int>(MemCategory::params)] = flat;
  fixed[static_cast<int>(MemCategory::grads)] = flat;
  fixed[static_cast<int>(MemCategory::optimizer)] = with_optimizer ? 2 * flat : 0;
  fixed[static_cast<int>(MemCategory::activations)] =
      2 * accounted_bytes(static_cast<std::size_t>(batch) * static_cast<std::size_t>(seq) * 4);
  return fixed;
}

namespace {

// The schedule's store on byte counts.
class CountingStore {
 public:
  CountingStore(const model::StepGraph& graph, int threads, model::Pass pass,
                const std::array<std::size_t, kMemCategories>& fixed)
      : graph_(graph),
        threads_(threads),
        pass_(pass),
        present_(graph.tensors().size(), 0),
        encoded_(graph.tensors().size(), 0),
        grad_(graph.tensors().size(), 0),
        value_category_(graph.tensors().size(), MemCategory::activations) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (graph.tensors()[i].kind != model::TensorKind::activation) present_[i] = 1;
    }
    for (int c = 0; c < kMemCategories; ++c) {
      current_[c] = fixed[c];
      p_.fixed += fixed[c];
    }
    p_.at_peak = p_.peak = current_;
    p_.total_peak = total_ = p_.fixed;
    p_.where = "before the step";
  }

  bool present(TensorId id) const { return present_[i(id)] != 0; }
  bool has_encoded(TensorId id) const { return encoded_[i(id)] != 0; }

  void forward(int o) {
    const model::OpNode& op = graph_.op(o);
    phase_ = "forward of " + op.name();
    for (TensorId out : op.outputs()) {
      if (op.produces(out, pass_) && !present(out)) alloc_value(out, MemCategory::activations);
    }
    workspace(op.forward_workspace(pass_, threads_));
  }
  void recompute(int o) {
    const model::OpNode& op = graph_.op(o);
    const std::string saved_phase = phase_;
    phase_ += " (recomputing " + op.name() + ")";
    std::size_t scratch = 0;
    for (TensorId out : op.outputs()) {
      if (!op.produces(out, model::Pass::train)) continue;
      if (present(out)) {
        scratch += bytes(out);
        alloc(MemCategory::activations, bytes(out));
      } else {
        alloc_value(out, MemCategory::activations);
      }
    }
    workspace(op.forward_workspace(model::Pass::train, threads_));
    release(MemCategory::activations, scratch);
    phase_ = saved_phase;
  }
  void backward(int o) {
    const model::OpNode& op = graph_.op(o);
    phase_ = "backward of " + op.name();
    // The gradients the op's backward reads or adds into: those of its activation inputs
    // and of its main output (the fused loss reads none: its gradient was made in the
    // forward).
    for (TensorId in : op.inputs()) {
      if (graph_.tensor(in).kind == model::TensorKind::activation) touch_grad(in);
    }
    if (op.kind() != "lm_head_loss") touch_grad(op.outputs().front());
    workspace(op.backward_workspace(threads_));
  }
  // Before the backward of op o materializes its saved tensors.
  void encode(TensorId id, const compress::Codec& codec) {
    encoded_[i(id)] = 1;
    alloc(MemCategory::compressed, accounted_bytes(codec.encoded_bytes(graph_.tensor(id).shape)));
    free_value(id);
  }
  void decode(TensorId id, const compress::Codec&) { alloc_value(id, MemCategory::workspace); }
  void free_value(TensorId id) {
    if (!present(id)) return;
    present_[i(id)] = 0;
    release(value_category_[i(id)], bytes(id));
  }
  void free_encoded(TensorId id) {
    if (!has_encoded(id)) return;
    encoded_[i(id)] = 0;
    const compress::Codec& codec = compress::codec_by_name(codec_of_.at(i(id)));
    release(MemCategory::compressed, accounted_bytes(codec.encoded_bytes(graph_.tensor(id).shape)));
  }
  void free_grad(TensorId id) {
    if (!grad_[i(id)]) return;
    grad_[i(id)] = 0;
    release(MemCategory::workspace, bytes(id));
  }

  void set_codecs(const Plan& plan) {
    codec_of_.resize(plan.decisions.size());
    for (std::size_t k = 0; k < plan.decisions.size(); ++k) codec_of_[k] = plan.decisions[k].codec;
  }
  const MemoryPrediction& prediction() const { return p_; }

 private:
  static std::size_t i(TensorId id) { return static_cast<std::size_t>(id); }
  std::size_t bytes(TensorId id) const { return accounted_bytes(graph_.tensor(id).nbytes()); }

  void alloc_value(TensorId id, MemCategory c) {
    present_[i(id)] = 1;
    value_category_[i(id)] = c;
    alloc(c, bytes(id));
  }
  void touch_grad(TensorId id) {
    if (grad_[i(id)]) return;
    grad_[i(id)] = 1;
    alloc(MemCategory::workspace, bytes(id));
  }
  void workspace(std::size_t b) {
    if (b == 0) return;
    alloc(MemCategory::workspace, b);
    release(MemCategory::workspace, b);
  }
  void alloc(MemCategory c, std::size_t b) {
    const int k = static_cast<int>(c);
    current_[k] += b;
    total_ += b;
    p_.peak[k] = std::max(p_.peak[k], current_[k]);
    if (total_ > p_.total_peak) {
      p_.total_peak = total_;
      p_.at_peak = current_;
      p_.where = phase_;
    }
  }
  void release(MemCategory c, std::size_t b) {
    current_[static_cast<int>(c)] -= b;
    total_ -= b;
  }

  const model::StepGraph& graph_;
  int threads_;
  model::Pass pass_;
  std::vector<char> present_, encoded_, grad_;
  std::vector<MemCategory> value_category_;
  std::vector<std::string> codec_of_;
  std::array<std::size_t, kMemCategories> current_{};
  std::size_t total_ = 0;
  std::string phase_;
  MemoryPrediction p_;
};

}  // namespace

MemoryPrediction predict_step_memory(const model::StepGraph& graph, const Plan& plan, int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed,
                                     model::Pass pass) {
  validate(graph, plan);
  const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
  CountingStore store(graph, threads, pass, fixed);
  store.set_codecs(plan);
  const detail::StepSchedule<CountingStore> schedule(graph, plan, life);
  schedule.forward(store, pass, static_cast<int>(graph.ops().size()));
  if (pass == model::Pass::train) schedule.backward(store);
  return store.prediction();
}

}  // namespace adacc::runtime
