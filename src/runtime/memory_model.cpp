// The memory model: the step schedule run on byte counts (see memory_model.h).
#include "adacc/runtime/memory_model.h"

#include <algorithm>
#include <optional>

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

// The peak of a timeline, point by point: the highest point (the first if several) and
// each category's own highest. Both timeline_peak and predict_step_memory use it.
class PeakOfPoints {
 public:
  explicit PeakOfPoints(const std::array<std::size_t, kMemCategories>& fixed) {
    for (int c = 0; c < kMemCategories; ++c) p_.fixed += fixed[c];
  }
  // Returns whether `point` is the highest so far.
  bool add(const TimelinePoint& point) {
    for (int c = 0; c < kMemCategories; ++c) {
      p_.peak[c] = std::max(p_.peak[c], point.category_peak[c]);
    }
    if (any_ && point.peak <= p_.total_peak) return false;
    any_ = true;
    p_.total_peak = point.peak;
    p_.at_peak = point.at_peak;
    return true;
  }
  MemoryPrediction result(std::string where) const {
    MemoryPrediction p = p_;
    p.where = std::move(where);
    return p;
  }

 private:
  MemoryPrediction p_;
  bool any_ = false;
};

// The schedule's store on byte counts. It allocates and frees in the order the executor's
// ops do (outputs, then workspace; a re-run op's scratch outputs until it ends), so that
// each event's peak is the allocator's too, and records the step's timeline.
class CountingStore {
 public:
  // With `keep_points`, the store keeps every point (timeline()); else only their peak.
  CountingStore(const model::StepGraph& graph, const Plan& plan, int threads, model::Pass pass,
                const std::array<std::size_t, kMemCategories>& fixed, bool keep_points)
      : keep_points_(keep_points),
        peak_of_points_(fixed),
        graph_(graph),
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
    point(std::nullopt);
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
    if (op.backward_reads_output_grad()) touch_grad(op.outputs().front());
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
  void after(const detail::ScheduleEvent& e) { point(e); }

  // The end of the step: what the step still holds is freed (the executor's tensors of
  // the step go when the step ends).
  void finish() {
    for (std::size_t k = 0; k < graph_.tensors().size(); ++k) {
      const auto id = static_cast<TensorId>(k);
      if (graph_.tensor(id).kind != model::TensorKind::activation) continue;
      free_value(id);
      free_encoded(id);
      free_grad(id);
    }
    point(std::nullopt);
  }

  // The timeline, labelled (with keep_points).
  StepTimeline timeline() {
    for (std::size_t k = 0; k < timeline_.size(); ++k) timeline_[k].label = label(events_[k], k);
    return std::move(timeline_);
  }
  // The peak of the points, labelled where it is.
  MemoryPrediction peak() const {
    return peak_of_points_.result(label(highest_event_, highest_index_));
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
  // Labels are made at the end (predicting the peak alone needs only the highest point's).
  std::string label(const std::optional<detail::ScheduleEvent>& event, std::size_t index) const {
    if (!event) return index == 0 ? "before the step" : "after the step";
    return detail::event_label(graph_, plan_, *event);
  }

  // A point of the timeline, unlabelled; nullopt: before or after the step.
  void point(const std::optional<detail::ScheduleEvent>& event) {
    TimelinePoint p;
    p.live = current_;
    p.peak = peak_;
    p.at_peak = at_peak_;
    p.category_peak = category_peak_;
    if (peak_of_points_.add(p)) {
      highest_event_ = event;
      highest_index_ = points_;
    }
    ++points_;
    if (keep_points_) {
      timeline_.push_back(std::move(p));
      events_.push_back(event);
    }
    start_interval();
  }

  bool keep_points_;
  PeakOfPoints peak_of_points_;
  std::optional<detail::ScheduleEvent> highest_event_;
  std::size_t highest_index_ = 0, points_ = 0;
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
  std::vector<std::optional<detail::ScheduleEvent>> events_;  // of the points
};

// Runs the schedule of one step on byte counts.
void count_step(CountingStore& store, const model::StepGraph& graph, const Plan& plan,
                model::Pass pass) {
  const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
  const detail::StepSchedule<CountingStore> schedule(graph, plan, life);
  schedule.forward(store, pass, static_cast<int>(graph.ops().size()));
  if (pass == model::Pass::train) schedule.backward(store);
  store.finish();
}

}  // namespace

StepTimeline predict_step_timeline(const model::StepGraph& graph, const Plan& plan, int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed,
                                   model::Pass pass) {
  validate(graph, plan);
  CountingStore store(graph, plan, threads, pass, fixed, /*keep_points=*/true);
  count_step(store, graph, plan, pass);
  return store.timeline();
}

MemoryPrediction timeline_peak(const StepTimeline& timeline,
                               const std::array<std::size_t, kMemCategories>& fixed) {
  PeakOfPoints peak(fixed);
  std::string where;
  for (const TimelinePoint& point : timeline) {
    if (peak.add(point)) where = point.label;
  }
  return peak.result(where);
}

MemoryPrediction predict_step_memory(const model::StepGraph& graph, const Plan& plan, int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed,
                                     model::Pass pass) {
  // predict_step_timeline's points, reduced as they come (timeline_peak's reduction).
  validate(graph, plan);
  CountingStore store(graph, plan, threads, pass, fixed, /*keep_points=*/false);
  count_step(store, graph, plan, pass);
  return store.peak();
}

}  // namespace adacc::runtime
