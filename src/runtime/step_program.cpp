// Lowering a plan to a step's instruction list (see step_program.h): the schedule run once
// on a presence store — which values, encodings and gradients exist — instead of tensors.
#include "adacc/runtime/step_program.h"

#include <array>

#include "adacc/core/error.h"
#include "adacc/runtime/step_analysis.h"

namespace adacc::runtime {

namespace {

using model::TensorId;
using Kind = Instruction::Kind;

class Lowering {
 public:
  Lowering(const model::StepGraph& graph, const StepAnalysis& analysis, const Plan& plan,
           StepProgram& program)
      : graph_(graph),
        analysis_(analysis),
        plan_(plan),
        out_(program.instructions),
        present_(graph.tensors().size(), 0),
        encoded_(graph.tensors().size(), 0),
        grad_(graph.tensors().size(), 0) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (!is_activation(static_cast<TensorId>(i))) present_[i] = 1;  // inputs and params
    }
  }

  void forward(model::Pass pass, int n_forward) {
    const bool train = pass == model::Pass::train;
    for (int o = 0; o < n_forward; ++o) {
      const model::OpNode& op = graph_.op(o);
      for (TensorId id : op.outputs()) {
        if (op.produces(id, pass)) present_[i(id)] = 1;
      }
      emit({Kind::forward, false, o, o});
      auto release = [&](TensorId id) {
        if (!is_activation(id) || !present(id) || lifetime(id).last_forward_use != o) return;
        if (!train || lifetime(id).first_backward_use < 0) {
          free_value(false, o, id);
          return;
        }
        const Decision& d = decision(id);
        if (d.policy == Policy::compress) {
          encoded_[i(id)] = 1;
          present_[i(id)] = 0;
          emit(tensor_instruction(Kind::encode, false, o, id));
        } else if (d.policy == Policy::recompute) {
          free_value(false, o, id);
        }
      };
      for (TensorId id : op.inputs()) release(id);
      for (TensorId id : op.outputs()) release(id);
    }
  }

  void backward() {
    const int n_ops = static_cast<int>(graph_.ops().size());
    std::vector<TensorId> transients;
    for (int o = n_ops - 1; o >= 0; --o) {
      const model::OpNode& op = graph_.op(o);
      transients.clear();
      for (TensorId id : op.saved()) ensure(id, o, transients);
      for (TensorId id : transients) {
        const int last = lifetime(id).last_backward_use;
        if (present(id) && (last < 0 || last > o)) free_value(true, o, id);
      }
      emit({Kind::backward, true, o, o});
      for (TensorId in : op.inputs()) {
        if (is_activation(in)) grad_[i(in)] = 1;
      }
      if (op.backward_reads_output_grad()) grad_[i(op.outputs().front())] = 1;
      for (TensorId id : op.saved()) {
        if (is_activation(id) && lifetime(id).last_backward_use == o) {
          if (present(id)) free_value(true, o, id);
          if (encoded_[i(id)] != 0) {
            encoded_[i(id)] = 0;
            emit(tensor_instruction(Kind::free_encoded, true, o, id));
          }
        }
      }
      for (TensorId id : op.outputs()) {
        if (grad_[i(id)] == 0) continue;
        grad_[i(id)] = 0;
        emit(tensor_instruction(Kind::free_grad, true, o, id));
      }
    }
  }

 private:
  static std::size_t i(TensorId id) { return static_cast<std::size_t>(id); }
  bool present(TensorId id) const { return present_[i(id)] != 0; }
  bool is_activation(TensorId id) const {
    return graph_.tensor(id).kind == model::TensorKind::activation;
  }
  const model::TensorLifetime& lifetime(TensorId id) const { return analysis_.lifetimes[i(id)]; }
  const Decision& decision(TensorId id) const { return plan_.decisions[i(id)]; }

  void emit(const Instruction& instruction) { out_.push_back(instruction); }
  Instruction tensor_instruction(Kind kind, bool in_backward, int at, TensorId id) const {
    Instruction ins{kind, in_backward, at};
    ins.tensor = id;
    if (kind == Kind::encode || kind == Kind::decode || kind == Kind::free_encoded) {
      ins.codec = &compress::codec_by_name(decision(id).codec);
    }
    return ins;
  }
  void free_value(bool in_backward, int at, TensorId id) {
    present_[i(id)] = 0;
    emit(tensor_instruction(Kind::free_value, in_backward, at, id));
  }

  // Makes `id` available for the backward of op `o`: present already, decoded, or rebuilt
  // by re-running its producer after making the producer's inputs available the same way
  // (depth first, inputs in order). The recursion keeps its own stack: a chain of
  // recomputations can run through every block of the model.
  void ensure(TensorId id, int o, std::vector<TensorId>& transients) {
    struct Frame {
      TensorId id;       // to be rebuilt
      std::size_t next;  // its producer's next input to make available
    };
    std::vector<Frame> stack;
    if (needs_rebuild(id, o)) stack.push_back({id, 0});
    while (!stack.empty()) {
      const int p = graph_.tensor(stack.back().id).producer;
      const model::OpNode& producer = graph_.op(p);
      if (stack.back().next < producer.inputs().size()) {
        const TensorId in = producer.inputs()[stack.back().next++];
        if (needs_rebuild(in, o)) stack.push_back({in, 0});
        continue;
      }
      for (TensorId out : producer.outputs()) {
        if (present(out)) continue;
        transients.push_back(out);
        if (producer.produces(out, model::Pass::train)) present_[i(out)] = 1;
      }
      Instruction ins{Kind::recompute, true, o};
      ins.op = p;
      emit(ins);
      stack.pop_back();
    }
  }

  // One step of ensure: returns false if `id` is present (or not an activation) or was
  // decoded now; true if it must be recomputed; throws if it cannot be.
  bool needs_rebuild(TensorId id, int o) {
    if (present(id) || !is_activation(id)) return false;
    if (encoded_[i(id)] != 0) {
      present_[i(id)] = 1;
      emit(tensor_instruction(Kind::decode, true, o, id));
      return false;
    }
    if (!analysis_.is_recomputable(id)) {
      throw PlanInfeasible("[runtime] '" + graph_.tensor(id).name +
                           "' is needed by the backward of '" + graph_.op(o).name() +
                           "' but was neither kept nor compressed, and it "
                           "cannot be recomputed");
    }
    return true;
  }

  const model::StepGraph& graph_;
  const StepAnalysis& analysis_;
  const Plan& plan_;
  std::vector<Instruction>& out_;
  std::vector<char> present_, encoded_, grad_;
};

}  // namespace

StepProgram lower(const model::StepGraph& graph, const Plan& plan, model::Pass pass,
                  int forward_ops) {
  return lower(graph, analyze_step(graph), plan, pass, forward_ops);
}

StepProgram lower(const model::StepGraph& graph, const StepAnalysis& analysis, const Plan& plan,
                  model::Pass pass, int forward_ops) {
  const int n_ops = static_cast<int>(graph.ops().size());
  if (forward_ops < 0) forward_ops = n_ops;
  if (forward_ops > n_ops || (pass == model::Pass::train && forward_ops != n_ops)) {
    throw InvalidArgument("[runtime] a step of " + std::to_string(n_ops) +
                          " ops cannot run the forward of " + std::to_string(forward_ops) +
                          (pass == model::Pass::train ? " and train" : ""));
  }
  validate(graph, analysis, plan);
  StepProgram program;
  program.pass = pass;
  program.forward_ops = forward_ops;
  Lowering lowering(graph, analysis, plan, program);
  lowering.forward(pass, forward_ops);
  if (pass == model::Pass::train) lowering.backward();
  return program;
}

std::string instruction_label(const model::StepGraph& graph, const Instruction& ins) {
  std::string label = ins.in_backward ? "backward of " : "forward of ";
  label += graph.op(ins.at).name();
  if (ins.kind == Kind::forward || ins.kind == Kind::backward) return label;
  if (ins.kind == Kind::recompute) {
    label += " (recomputing ";
    label += graph.op(ins.op).name();
    label += ")";
    return label;
  }
  const std::string& tensor = graph.tensor(ins.tensor).name;
  switch (ins.kind) {
    case Kind::encode:
      label += " (encoding ";
      label += tensor;
      label += " with ";
      label += ins.codec->name();
      break;
    case Kind::decode:
      label += " (decoding ";
      label += tensor;
      break;
    case Kind::free_value:
      label += " (freeing ";
      label += tensor;
      break;
    case Kind::free_encoded:
      label += " (freeing encoded ";
      label += tensor;
      break;
    default:
      label += " (freeing the gradient of ";
      label += tensor;
      break;
  }
  label += ")";
  return label;
}

std::string format_step_program(const model::StepGraph& graph, const StepProgram& program) {
  static constexpr std::array<const char*, 8> kNames = {
      "forward", "backward", "recompute", "encode", "decode", "free", "free-encoded", "free-grad"};
  std::array<int, kNames.size()> count{};
  for (const Instruction& ins : program.instructions) ++count[static_cast<std::size_t>(ins.kind)];
  std::string out = "schedule: " + std::to_string(program.instructions.size()) + " instructions (";
  for (std::size_t k = 0; k < kNames.size(); ++k) {
    if (k > 0) out += ", ";
    out += std::to_string(count[k]);
    out += " ";
    out += kNames[k];
  }
  out += ")\n";
  for (std::size_t k = 0; k < program.instructions.size(); ++k) {
    out += std::to_string(k + 1);
    out += "  ";
    out += instruction_label(graph, program.instructions[k]);
    out += "\n";
  }
  return out;
}

}  // namespace adacc::runtime
