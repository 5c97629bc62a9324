// Plans: the keep-everything default, and the checks that a plan is well formed and can
// be carried out (see plan.h). Validation runs before a plan reaches the executor, so
// that a bad plan file or a planner bug fails with a message naming the tensor instead
// of a crash in the middle of a backward pass.
//
// Feasibility of recomputation is a reachability question on the step graph: a
// recomputed tensor is rebuilt by re-running its producer, whose activation inputs must
// in turn be retained (kept or compressed) or rebuilt the same way. Activations that no
// backward op saves are never retained, so they can only ever be rebuilt.
#include "adacc/runtime/plan.h"

#include <cstdint>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/runtime/step_analysis.h"

namespace adacc::runtime {

namespace {

using model::StepGraph;
using model::TensorId;
using model::TensorInfo;
using model::TensorKind;

std::string quoted(const TensorInfo& t) {
  return "'" + t.name + "'";
}

// Depth-first check that every recomputation a plan asks for can be carried out. The
// search keeps its own stack: a chain of recomputations can run through every block of
// the model (every-<k> with k >= L), far deeper than the call stack allows.
class RecomputeChecker {
 public:
  RecomputeChecker(const StepGraph& graph, const StepAnalysis& analysis, const Plan& plan)
      : graph_(graph),
        analysis_(analysis),
        plan_(plan),
        state_(graph.tensors().size(), State::unknown) {}

  // Throws PlanInfeasible unless `id` (a saved activation whose policy is recompute) can
  // be rebuilt in the backward: visits the inputs of its producer, recursively, in order.
  void check_root(TensorId id) {
    root_ = id;
    if (!enter(id, /*via=*/-1)) return;
    stack_.push_back({id, 0});
    while (!stack_.empty()) {
      const TensorId top = stack_.back().id;
      const std::vector<TensorId>& inputs = graph_.op(graph_.tensor(top).producer).inputs();
      if (stack_.back().next < inputs.size()) {
        const TensorId input = inputs[stack_.back().next++];
        if (enter(input, top)) stack_.push_back({input, 0});
      } else {
        state_[static_cast<std::size_t>(top)] = State::available;
        stack_.pop_back();
      }
    }
  }

 private:
  enum class State : std::uint8_t { unknown, visiting, available };
  struct Frame {
    TensorId id;       // being rebuilt (State::visiting)
    std::size_t next;  // its producer's next input to visit
  };

  bool retained(TensorId id) const {
    const TensorInfo& t = graph_.tensor(id);
    if (t.kind != TensorKind::activation) return true;  // inputs and params are always there
    return analysis_.saved[static_cast<std::size_t>(id)] &&
           plan_.decisions[static_cast<std::size_t>(id)].policy != Policy::recompute;
  }

  // Visits `id`, needed by the producer of `via` (-1 for the root): throws if it can be
  // neither used as it is nor rebuilt; returns whether it must be rebuilt (it is then
  // marked visiting, and its producer's inputs are to be visited).
  bool enter(TensorId id, TensorId via) {
    const auto i = static_cast<std::size_t>(id);
    const TensorInfo& t = graph_.tensor(id);
    const TensorInfo& root = graph_.tensor(root_);
    if (retained(id) && t.kind == TensorKind::activation &&
        plan_.decisions[i].policy == Policy::compress &&
        compress::codec_by_name(plan_.decisions[i].codec).decodes_to() != model::SavedForm::value) {
      throw PlanInfeasible(
          "[plan] recomputing " + quoted(root) + " needs " + quoted(t) + ", which codec '" +
          plan_.decisions[i].codec + "' stores as a derived form (not the tensor itself); keep " +
          quoted(root) + " or compress " + quoted(t) + " with a codec that restores it");
    }
    if (state_[i] == State::available || retained(id)) return false;
    if (state_[i] == State::visiting) {
      throw PlanInfeasible("[plan] recomputing " + quoted(root) + " needs " + quoted(t) +
                           ", whose own recomputation needs it again (a cycle in the graph); "
                           "keep or compress " +
                           quoted(t));
    }
    if (!analysis_.is_recomputable(id)) {
      throw PlanInfeasible(
          "[plan] recomputing " + quoted(root) + " needs " + quoted(t) +
          (via >= 0 ? " (an input of the producer of " + quoted(graph_.tensor(via)) + ")"
                    : std::string()) +
          ", which is " + (analysis_.saved[i] ? "not retained" : "not saved by any backward op") +
          " and cannot be recomputed; keep or compress " + quoted(root) + " instead");
    }
    state_[i] = State::visiting;
    return true;
  }

  const StepGraph& graph_;
  const StepAnalysis& analysis_;
  const Plan& plan_;
  std::vector<State> state_;
  std::vector<Frame> stack_;
  TensorId root_ = model::kNoTensor;
};

// Throws InvalidArgument unless `codec` is meant for t's role and every backward op that
// reads t accepts what the codec decodes to (`value_reader`: StepAnalysis::first_value_reader).
void require_codec_fits(const StepGraph& graph, const TensorInfo& t, int value_reader,
                        const compress::Codec& codec) {
  if (!codec.applies_to(t.role)) {
    std::string fits;
    for (const std::string& n : compress::codecs_for_role(t.role)) {
      fits += (fits.empty() ? "" : ", ") + n;
    }
    throw InvalidArgument("[plan] " + quoted(t) + " (role " +
                          std::string(model::tensor_role_name(t.role)) +
                          ") is compressed with codec '" + std::string(codec.name()) +
                          "', which is not meant for that role; " +
                          (fits.empty() ? "keep or recompute it" : "use one of: " + fits));
  }
  if (codec.decodes_to() == model::SavedForm::gelu_derivative && value_reader >= 0) {
    const model::OpNode& op = graph.op(value_reader);
    throw InvalidArgument(
        "[plan] " + quoted(t) + " is compressed with codec '" + std::string(codec.name()) +
        "', which stores a GELU derivative, but the backward of '" + op.name() + "' (" +
        std::string(op.kind()) + ") reads it; keep it or use a codec that restores it");
  }
}

}  // namespace

std::string_view policy_name(Policy policy) {
  switch (policy) {
    case Policy::keep:
      return "keep";
    case Policy::compress:
      return "compress";
    case Policy::recompute:
      return "recompute";
  }
  return "?";
}

std::string decision_text(const Decision& decision) {
  return decision.policy == Policy::compress ? decision.codec
                                             : std::string(policy_name(decision.policy));
}

Plan keep_all_plan(const StepGraph& graph) {
  const std::vector<bool> saved = saved_tensors(graph);
  Plan plan;
  plan.planner = "none";
  plan.decisions.resize(graph.tensors().size());
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const bool activation = graph.tensors()[i].kind == TensorKind::activation;
    plan.decisions[i].policy = activation && !saved[i] ? Policy::recompute : Policy::keep;
  }
  return plan;
}

std::vector<bool> saved_tensors(const StepGraph& graph) {
  return analyze_step(graph).saved;
}

bool is_saved(const StepGraph& graph, TensorId id) {
  for (const auto& op : graph.ops()) {
    for (TensorId s : op->saved()) {
      if (s == id) return true;
    }
  }
  return false;
}

bool is_recomputable(const StepGraph& graph, TensorId id) {
  const TensorInfo& t = graph.tensor(id);
  if (t.kind != TensorKind::activation || t.producer < 0) return false;
  return graph.op(t.producer).recomputable();
}

void validate(const StepGraph& graph, const Plan& plan) {
  validate(graph, analyze_step(graph), plan);
}

void validate(const StepGraph& graph, const StepAnalysis& analysis, const Plan& plan) {
  const std::size_t n = graph.tensors().size();
  if (plan.decisions.size() != n) {
    throw InvalidArgument("[plan] plan '" + plan.planner + "' has " +
                          std::to_string(plan.decisions.size()) + " decisions but the graph has " +
                          std::to_string(n) +
                          " tensors; make the plan for this graph (same model, batch and "
                          "sequence length)");
  }
  const std::vector<bool>& saved = analysis.saved;

  // Malformed decisions, tensor by tensor.
  for (std::size_t i = 0; i < n; ++i) {
    const TensorInfo& t = graph.tensors()[i];
    const Decision& d = plan.decisions[i];
    if (t.kind != TensorKind::activation && d.policy != Policy::keep) {
      throw InvalidArgument("[plan] " + quoted(t) + " is " +
                            (t.kind == TensorKind::param ? "a parameter" : "an input") +
                            " but the plan says " + std::string(policy_name(d.policy)) +
                            "; only activations can be compressed or recomputed, keep it");
    }
    if (d.policy == Policy::compress) {
      try {
        compress::codec_by_name(d.codec);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument("[plan] " + quoted(t) + " is compressed with codec '" + d.codec +
                              "': " + e.what());
      }
      if (t.dtype != DType::f32) {
        throw InvalidArgument("[plan] " + quoted(t) + " is " + std::string(dtype_name(t.dtype)) +
                              " but codecs encode f32 tensors; keep or recompute it");
      }
      require_codec_fits(graph, t, analysis.first_value_reader(graph, static_cast<TensorId>(i)),
                         compress::codec_by_name(d.codec));
    }
    if (d.policy == Policy::recompute && saved[i] && !analysis.recomputable[i]) {
      const std::string why = t.producer < 0 ? "no op produces it"
                                             : "its producer '" + graph.op(t.producer).name() +
                                                   "' cannot be re-run in the backward";
      throw InvalidArgument("[plan] " + quoted(t) + " cannot be recomputed (" + why +
                            "); keep or compress it");
    }
  }

  // Every recomputation of a saved tensor must be possible from retained tensors.
  RecomputeChecker checker(graph, analysis, plan);
  for (std::size_t i = 0; i < n; ++i) {
    if (saved[i] && plan.decisions[i].policy == Policy::recompute) {
      checker.check_root(static_cast<TensorId>(i));
    }
  }
}

}  // namespace adacc::runtime
