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

// The schedule's store on byte counts. It allocates and frees in the order the executor's
// ops do (outputs, then workspace; a re-run op's scratch outputs until it ends), so that
// each event's peak is the allocator's too, and records the step's timeline.
class CountingStore {
 public:
  CountingStore(const model::StepGraph& graph, const Plan& plan, int threads, model::Pass pass,
                const std::array<std::size_t, kMemCategories>& fixed)
      : graph_(graph),
        plan_(plan),
        threads_(threads),
        pass_(pass),
        present_(graph.tensors().size(), 0),
        encoded_(graph.tensors().size(), 0),
        grad_(graph.tensors().size(), 0),
        value_category_(graph.tensors().size(), MemCategory::activations) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (graph.tensors()[i].kind != model::TensorKind::activation) present_[i] = 1;
    }
    current_ = fixed;
    for (int c = 0; c < kMemCategories; ++c) total_ += fixed[c];
    start_interval();
    point("before the step");
  }

  bool present(TensorId id) const { return present_[i(id)] != 0; }
  bool has_encoded(TensorId id) const { return encoded_[i(id)] != 0; }
  bool has_grad(TensorId id) const { return grad_[i(id)] != 0; }

  void forward(int o) {
    const model::OpNode& op = graph_.op(o);
    for (TensorId out : op.outputs()) {
      if (op.produces(out, pass_) && !present(out)) alloc_value(out, MemCategory::activations);
    }
    workspace(op.forward_workspace(pass_, threads_));
  }
  void recompute(int o) {
    const model::OpNode& op = graph_.op(o);
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
  }
  void backward(int o) {
    const model::OpNode& op = graph_.op(o);
    // The gradients the op's backward reads or adds into: those of its activation inputs
    // and of its main output (the fused loss reads none: its gradient was made in the
    // forward).
    for (TensorId in : op.inputs()) {
      if (graph_.tensor(in).kind == model::TensorKind::activation) touch_grad(in);
    }
    if (op.kind() != "lm_head_loss") touch_grad(op.outputs().front());
    workspace(op.backward_workspace(threads_));
  }
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
    const compress::Codec& codec = compress::codec_by_name(plan_.decisions.at(i(id)).codec);
    release(MemCategory::compressed, accounted_bytes(codec.encoded_bytes(graph_.tensor(id).shape)));
  }
  void free_grad(TensorId id) {
    if (!grad_[i(id)]) return;
    grad_[i(id)] = 0;
    release(MemCategory::workspace, bytes(id));
  }
  void after(const detail::ScheduleEvent& e) { point(detail::event_label(graph_, plan_, e)); }

  // The end of the step: what the step still holds is freed (the executor's tensors of
  // the step go when the step ends).
  StepTimeline finish() {
    for (std::size_t k = 0; k < graph_.tensors().size(); ++k) {
      const auto id = static_cast<TensorId>(k);
      if (graph_.tensor(id).kind != model::TensorKind::activation) continue;
      free_value(id);
      free_encoded(id);
      free_grad(id);
    }
    point("after the step");
    return std::move(timeline_);
  }

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
  // As Allocator::allocate and deallocate account.
  void alloc(MemCategory c, std::size_t b) {
    const int k = static_cast<int>(c);
    current_[k] += b;
    total_ += b;
    category_peak_[k] = std::max(category_peak_[k], current_[k]);
    if (total_ > peak_) {
      peak_ = total_;
      at_peak_ = current_;
    }
  }
  void release(MemCategory c, std::size_t b) {
    current_[static_cast<int>(c)] -= b;
    total_ -= b;
  }
  void start_interval() {
    peak_ = total_;
    at_peak_ = category_peak_ = current_;
  }
  void point(std::string label) {
    TimelinePoint p;
    p.label = std::move(label);
    p.live = current_;
    p.peak = peak_;
    p.at_peak = at_peak_;
    p.category_peak = category_peak_;
    timeline_.push_back(std::move(p));
    start_interval();
  }

  const model::StepGraph& graph_;
  const Plan& plan_;
  int threads_;
  model::Pass pass_;
  std::vector<char> present_, encoded_, grad_;
  std::vector<MemCategory> value_category_;
  std::array<std::size_t, kMemCategories> current_{};
  std::size_t total_ = 0;
  // The current interval (since the last point).
  std::size_t peak_ = 0;
  std::array<std::size_t, kMemCategories> at_peak_{}, category_peak_{};
  StepTimeline timeline_;
};

}  // namespace

StepTimeline predict_step_timeline(const model::StepGraph& graph, const Plan& plan, int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed,
                                   model::Pass pass) {
  validate(graph, plan);
  const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
  CountingStore store(graph, plan, threads, pass, fixed);
  const detail::StepSchedule<CountingStore> schedule(graph, plan, life);
  schedule.forward(store, pass, static_cast<int>(graph.ops().size()));
  if (pass == model::Pass::train) schedule.backward(store);
  return store.finish();
}

MemoryPrediction timeline_peak(const StepTimeline& timeline,
                               const std::array<std::size_t, kMemCategories>& fixed) {
  MemoryPrediction p;
  for (int c = 0; c < kMemCategories; ++c) p.fixed += fixed[c];
  for (const TimelinePoint& point : timeline) {
    if (p.where.empty() || point.peak > p.total_peak) {
      p.total_peak = point.peak;
      p.at_peak = point.at_peak;
      p.where = point.label;
    }
    for (int c = 0; c < kMemCategories; ++c) {
      p.peak[c] = std::max(p.peak[c], point.category_peak[c]);
    }
  }
  return p;
}

MemoryPrediction predict_step_memory(const model::StepGraph& graph, const Plan& plan, int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed,
                                     model::Pass pass) {
  return timeline_peak(predict_step_timeline(graph, plan, threads, fixed, pass), fixed);
}

}  // namespace adacc::runtime
