// The memory model: the plan's step program run on byte counts (see memory_model.h).
#include "adacc/runtime/memory_model.h"

#include <algorithm>

#include "adacc/ops/workspace.h"
#include "adacc/runtime/step_program.h"

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

// The program's store on byte counts. It allocates and frees in the order the executor's
// ops do (outputs, then workspace; a re-run op's scratch outputs until it ends), so that
// each instruction's peak is the allocator's too, and records the step's timeline.
class CountingStore {
 public:
  // With `keep_points`, the store keeps every point (timeline()); else only their peak.
  CountingStore(const model::StepGraph& graph, int threads, model::Pass pass,
                const std::array<std::size_t, kMemCategories>& fixed, bool keep_points)
      : keep_points_(keep_points),
        peak_of_points_(fixed),
        graph_(graph),
        threads_(threads),
        pass_(pass),
        present_(graph.tensors().size(), 0),
        encoded_(graph.tensors().size(), 0),
        grad_(graph.tensors().size(), 0),
        encoded_codec_(graph.tensors().size(), nullptr),
        value_category_(graph.tensors().size(), MemCategory::activations) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (graph.tensors()[i].kind != model::TensorKind::activation) present_[i] = 1;
    }
    current_ = fixed;
    for (int c = 0; c < kMemCategories; ++c) total_ += fixed[c];
    start_interval();
    point(nullptr);
  }

  bool present(TensorId id) const { return present_[i(id)] != 0; }
  bool has_encoded(TensorId id) const { return encoded_[i(id)] != 0; }

  // Runs one instruction, then records its point.
  void run(const Instruction& ins) {
    using K = Instruction::Kind;
    switch (ins.kind) {
      case K::forward:
        forward(ins.op);
        break;
      case K::backward:
        backward(ins.op);
        break;
      case K::recompute:
        recompute(ins.op);
        break;
      case K::encode:
        encode(ins.tensor, *ins.codec);
        break;
      case K::decode:
        alloc_value(ins.tensor, MemCategory::workspace);
        break;
      case K::free_value:
        free_value(ins.tensor);
        break;
      case K::free_encoded:
        free_encoded(ins.tensor);
        break;
      case K::free_grad:
        free_grad(ins.tensor);
        break;
    }
    point(&ins);
  }

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
    encoded_codec_[i(id)] = &codec;
    alloc(MemCategory::compressed, accounted_bytes(codec.encoded_bytes(graph_.tensor(id).shape)));
    free_value(id);
  }
  void free_value(TensorId id) {
    if (!present(id)) return;
    present_[i(id)] = 0;
    release(value_category_[i(id)], bytes(id));
  }
  void free_encoded(TensorId id) {
    if (!has_encoded(id)) return;
    encoded_[i(id)] = 0;
    release(MemCategory::compressed,
            accounted_bytes(encoded_codec_[i(id)]->encoded_bytes(graph_.tensor(id).shape)));
  }
  void free_grad(TensorId id) {
    if (!grad_[i(id)]) return;
    grad_[i(id)] = 0;
    release(MemCategory::workspace, bytes(id));
  }

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
    point(nullptr);
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
  std::string label(const Instruction* ins, std::size_t index) const {
    if (ins == nullptr) return index == 0 ? "before the step" : "after the step";
    return instruction_label(graph_, *ins);
  }

  // A point of the timeline, unlabelled, after `ins` (null: before or after the step).
  void point(const Instruction* event) {
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
  const Instruction* highest_event_ = nullptr;
  std::size_t highest_index_ = 0, points_ = 0;
  const model::StepGraph& graph_;
  int threads_;
  model::Pass pass_;
  std::vector<char> present_, encoded_, grad_;
  std::vector<const compress::Codec*> encoded_codec_;
  std::vector<MemCategory> value_category_;
  std::array<std::size_t, kMemCategories> current_{};
  std::size_t total_ = 0;
  // The current interval (since the last point).
  std::size_t peak_ = 0;
  std::array<std::size_t, kMemCategories> at_peak_{}, category_peak_{};
  StepTimeline timeline_;
  std::vector<const Instruction*> events_;  // of the points (the program outlives the store)
};

// Runs a step program on byte counts.
void count_step(CountingStore& store, const StepProgram& program) {
  for (const Instruction& ins : program.instructions) store.run(ins);
  store.finish();
}

}  // namespace

StepTimeline predict_step_timeline(const model::StepGraph& graph, const Plan& plan, int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed,
                                   model::Pass pass) {
  return predict_step_timeline(graph, lower(graph, plan, pass), threads, fixed);
}

StepTimeline predict_step_timeline(const model::StepGraph& graph, const StepProgram& program,
                                   int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed) {
  CountingStore store(graph, threads, program.pass, fixed, /*keep_points=*/true);
  count_step(store, program);
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
  return predict_step_memory(graph, lower(graph, plan, pass), threads, fixed);
}

MemoryPrediction predict_step_memory(const model::StepGraph& graph, const StepProgram& program,
                                     int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed) {
  // predict_step_timeline's points, reduced as they come (timeline_peak's reduction).
  CountingStore store(graph, threads, program.pass, fixed, /*keep_points=*/false);
  count_step(store, program);
  return store.peak();
}

}  // namespace adacc::runtime
