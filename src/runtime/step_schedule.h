// The order in which a training step allocates, computes and frees under a Plan. The
// executor runs it on real tensors; the memory model runs it on byte counts, so the
// two cannot disagree about what is alive when.
//
// Forward: each op runs (allocating its outputs); a tensor whose last forward use has
// passed is, if a backward op saves it, kept, encoded (then freed) or freed, as the plan
// says; otherwise freed. Backward, op by op in reverse: the op's saved tensors are
// materialized (kept: present; compressed: decoded; recomputed: rebuilt by re-running
// its producer, recursively); rebuilt tensors that no later backward op needs are freed
// before the op runs; after it, saved tensors at their last backward use and the
// gradients of the op's outputs are freed.
//
// After each of these events the schedule tells the store (Store::after), which is where
// both stores record a point of the step's memory timeline (runtime/step_timeline.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"

namespace adacc::runtime::detail {

// One event of the schedule: what was done, while serving the forward or the backward of
// which op.
struct ScheduleEvent {
  enum class Action : std::uint8_t {
    run,           // the op's forward or backward itself
    recompute,     // `subject`: the op re-run
    encode,        // `subject`: the tensor encoded (and its value freed)
    decode,        // `subject`: the tensor decoded
    free_value,    // `subject`: the tensor freed
    free_encoded,  // `subject`: the tensor whose encoded form was freed
    free_grad,     // `subject`: the tensor whose gradient was freed
  };
  bool backward = false;  // serving the backward (else the forward) of `op`
  int op = 0;
  Action action = Action::run;
  int subject = -1;  // an op index (recompute) or a TensorId
};

// The timeline point's label of an event: "forward of h3.fc", "forward of h3.fc
// (encoding h3.fc.out with int8-g64)", "backward of h2.attn (recomputing h2.qkv)",
// "backward of h2.attn (decoding h2.qkv.out)", "backward of h2.fc (freeing h2.fc.out)",
// "... (freeing encoded h2.fc.out)", "... (freeing the gradient of h2.fc.out)".
inline std::string event_label(const model::StepGraph& graph, const Plan& plan,
                               const ScheduleEvent& e) {
  std::string label = (e.backward ? "backward of " : "forward of ") + graph.op(e.op).name();
  using A = ScheduleEvent::Action;
  if (e.action == A::run) return label;
  if (e.action == A::recompute) return label + " (recomputing " + graph.op(e.subject).name() + ")";
  const std::string& tensor = graph.tensor(e.subject).name;
  switch (e.action) {
    case A::encode:
      return label + " (encoding " + tensor + " with " +
             plan.decisions[static_cast<std::size_t>(e.subject)].codec + ")";
    case A::decode:
      return label + " (decoding " + tensor + ")";
    case A::free_value:
      return label + " (freeing " + tensor + ")";
    case A::free_encoded:
      return label + " (freeing encoded " + tensor + ")";
    default:
      return label + " (freeing the gradient of " + tensor + ")";
  }
}

// Store requirements (see StepExecutor's real store and the memory model's counting one):
//   bool present(TensorId) const;  bool has_encoded(TensorId) const;
//   bool has_grad(TensorId) const;  // of an activation
//   void forward(int op);    void recompute(int op);    void backward(int op);
//   void encode(TensorId, const compress::Codec&);      // then frees the value
//   void decode(TensorId, const compress::Codec&);
//   void free_value(TensorId);  void free_encoded(TensorId);  void free_grad(TensorId);
//   void after(const ScheduleEvent&);  // after each of the calls above
template <class Store>
class StepSchedule {
 public:
  StepSchedule(const model::StepGraph& graph, const Plan& plan,
               const std::vector<model::TensorLifetime>& life)
      : graph_(graph), plan_(plan), life_(life) {}

  void forward(Store& s, model::Pass pass, int n_forward) const {
    const bool train = pass == model::Pass::train;
    for (int o = 0; o < n_forward; ++o) {
      const model::OpNode& op = graph_.op(o);
      s.forward(o);
      s.after({false, o, Action::run, o});
      auto free_value = [&](model::TensorId id) {
        s.free_value(id);
        s.after({false, o, Action::free_value, id});
      };
      auto release = [&](model::TensorId id) {
        if (!is_activation(id) || !s.present(id) || lifetime(id).last_forward_use != o) return;
        if (!train || lifetime(id).first_backward_use < 0) {
          free_value(id);
          return;
        }
        const Decision& d = decision(id);
        if (d.policy == Policy::compress) {
          s.encode(id, compress::codec_by_name(d.codec));
          s.after({false, o, Action::encode, id});
        } else if (d.policy == Policy::recompute) {
          free_value(id);
        }
      };
      for (model::TensorId id : op.inputs()) release(id);
      for (model::TensorId id : op.outputs()) release(id);
    }
  }

  void backward(Store& s) const {
    const int n_ops = static_cast<int>(graph_.ops().size());
    std::vector<model::TensorId> transients;
    for (int o = n_ops - 1; o >= 0; --o) {
      const model::OpNode& op = graph_.op(o);
      transients.clear();
      for (model::TensorId id : op.saved()) ensure(s, id, o, transients);
      auto free_value = [&](model::TensorId id) {
        s.free_value(id);
        s.after({true, o, Action::free_value, id});
      };
      for (model::TensorId id : transients) {
        const int last = lifetime(id).last_backward_use;
        if (s.present(id) && (last < 0 || last > o)) free_value(id);
      }
      s.backward(o);
      s.after({true, o, Action::run, o});
      for (model::TensorId id : op.saved()) {
        if (is_activation(id) && lifetime(id).last_backward_use == o) {
          if (s.present(id)) free_value(id);
          if (s.has_encoded(id)) {
            s.free_encoded(id);
            s.after({true, o, Action::free_encoded, id});
          }
        }
      }
      for (model::TensorId id : op.outputs()) {
        if (!s.has_grad(id)) continue;
        s.free_grad(id);
        s.after({true, o, Action::free_grad, id});
      }
    }
  }

 private:
  // Makes `id` available for the backward of op `o`: present already, decoded, or rebuilt
  // by re-running its producer after making the producer's inputs available the same way
  // (depth first, inputs in order). The recursion keeps its own stack: a chain of
  // recomputations can run through every block of the model.
  void ensure(Store& s, model::TensorId id, int o, std::vector<model::TensorId>& transients) const {
    struct Frame {
      model::TensorId id;  // to be rebuilt
      std::size_t next;    // its producer's next input to make available
    };
    std::vector<Frame> stack;
    if (needs_rebuild(s, id, o)) stack.push_back({id, 0});
    while (!stack.empty()) {
      const model::TensorInfo& info = graph_.tensor(stack.back().id);
      const model::OpNode& producer = graph_.op(info.producer);
      if (stack.back().next < producer.inputs().size()) {
        const model::TensorId in = producer.inputs()[stack.back().next++];
        if (needs_rebuild(s, in, o)) stack.push_back({in, 0});
        continue;
      }
      std::vector<model::TensorId> rebuilt;
      for (model::TensorId out : producer.outputs()) {
        if (!s.present(out)) rebuilt.push_back(out);
      }
      s.recompute(info.producer);
      s.after({true, o, Action::recompute, info.producer});
      transients.insert(transients.end(), rebuilt.begin(), rebuilt.end());
      stack.pop_back();
    }
  }

  // One step of ensure: returns false if `id` is present (or not an activation) or was
  // decoded now; true if it must be recomputed; throws if it cannot be.
  bool needs_rebuild(Store& s, model::TensorId id, int o) const {
    if (s.present(id) || !is_activation(id)) return false;
    if (s.has_encoded(id)) {
      s.decode(id, compress::codec_by_name(decision(id).codec));
      s.after({true, o, Action::decode, id});
      return false;
    }
    if (!is_recomputable(graph_, id)) {
      throw PlanInfeasible("[runtime] '" + graph_.tensor(id).name +
                           "' is needed by the backward of '" + graph_.op(o).name() +
                           "' but was neither kept nor compressed, and it "
                           "cannot be recomputed");
    }
    return true;
  }

  using Action = ScheduleEvent::Action;

  bool is_activation(model::TensorId id) const {
    return graph_.tensor(id).kind == model::TensorKind::activation;
  }
  const model::TensorLifetime& lifetime(model::TensorId id) const {
    return life_[static_cast<std::size_t>(id)];
  }
  const Decision& decision(model::TensorId id) const {
    return plan_.decisions[static_cast<std::size_t>(id)];
  }

  const model::StepGraph& graph_;
  const Plan& plan_;
  const std::vector<model::TensorLifetime>& life_;
};

}  // namespace adacc::runtime::detail
