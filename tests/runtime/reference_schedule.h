// A reference for lower() (runtime/step_program.h): the step schedule as the executor ran
// it before plans were lowered — re-runs inferred recursively while the step runs, from
// what a store says is present — here on a store of presence flags that writes down each
// call as an Instruction. lower() must give the same list.
#pragma once

#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_program.h"

namespace adacc::test {

inline std::vector<runtime::Instruction> reference_schedule(const model::StepGraph& graph,
                                                            const runtime::Plan& plan,
                                                            model::Pass pass, int n_forward) {
  using runtime::Instruction;
  using runtime::Policy;
  using K = Instruction::Kind;
  using model::TensorId;
  const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
  const std::size_t n = graph.tensors().size();
  std::vector<char> present(n, 0), encoded(n, 0), grad(n, 0);
  auto is_activation = [&](TensorId id) {
    return graph.tensor(id).kind == model::TensorKind::activation;
  };
  for (std::size_t i = 0; i < n; ++i) present[i] = is_activation(static_cast<TensorId>(i)) ? 0 : 1;
  auto at = [](TensorId id) { return static_cast<std::size_t>(id); };
  auto codec = [&](TensorId id) { return &compress::codec_by_name(plan.decisions[at(id)].codec); };
  std::vector<Instruction> out;
  auto emit = [&](K kind, bool bwd, int o, int op, TensorId t, const compress::Codec* c) {
    Instruction ins;
    ins.kind = kind;
    ins.in_backward = bwd;
    ins.at = o;
    ins.op = op;
    ins.tensor = t;
    ins.codec = c;
    out.push_back(ins);
  };
  const bool train = pass == model::Pass::train;
  for (int o = 0; o < n_forward; ++o) {
    const model::OpNode& op = graph.op(o);
    for (TensorId id : op.outputs()) {
      if (op.produces(id, pass)) present[at(id)] = 1;
    }
    emit(K::forward, false, o, o, model::kNoTensor, nullptr);
    auto release = [&](TensorId id) {
      if (!is_activation(id) || !present[at(id)] || life[at(id)].last_forward_use != o) return;
      const Policy p = plan.decisions[at(id)].policy;
      if (!train || life[at(id)].first_backward_use < 0 || p == Policy::recompute) {
        present[at(id)] = 0;
        emit(K::free_value, false, o, -1, id, nullptr);
      } else if (p == Policy::compress) {
        present[at(id)] = 0;
        encoded[at(id)] = 1;
        emit(K::encode, false, o, -1, id, codec(id));
      }
    };
    for (TensorId id : op.inputs()) release(id);
    for (TensorId id : op.outputs()) release(id);
  }
  if (!train) return out;
  for (int o = static_cast<int>(graph.ops().size()) - 1; o >= 0; --o) {
    const model::OpNode& op = graph.op(o);
    std::vector<TensorId> transients;
    // Recursive, as the old schedule's ensure was before it kept its own stack.
    auto needs_rebuild = [&](TensorId id) {
      if (present[at(id)] || !is_activation(id)) return false;
      if (encoded[at(id)]) {
        present[at(id)] = 1;
        emit(K::decode, true, o, -1, id, codec(id));
        return false;
      }
      if (!runtime::is_recomputable(graph, id)) throw PlanInfeasible("cannot be recomputed");
      return true;
    };
    auto rebuild = [&](auto& self, TensorId id) -> void {
      const int p = graph.tensor(id).producer;
      for (TensorId in : graph.op(p).inputs()) {
        if (needs_rebuild(in)) self(self, in);
      }
      for (TensorId t : graph.op(p).outputs()) {
        if (present[at(t)]) continue;
        transients.push_back(t);
        if (graph.op(p).produces(t, model::Pass::train)) present[at(t)] = 1;
      }
      emit(K::recompute, true, o, p, model::kNoTensor, nullptr);
    };
    for (TensorId id : op.saved()) {
      if (needs_rebuild(id)) rebuild(rebuild, id);
    }
    for (TensorId id : transients) {
      const int last = life[at(id)].last_backward_use;
      if (present[at(id)] && (last < 0 || last > o)) {
        present[at(id)] = 0;
        emit(K::free_value, true, o, -1, id, nullptr);
      }
    }
    emit(K::backward, true, o, o, model::kNoTensor, nullptr);
    for (TensorId in : op.inputs()) {
      if (is_activation(in)) grad[at(in)] = 1;
    }
    if (op.backward_reads_output_grad()) grad[at(op.outputs().front())] = 1;
    for (TensorId id : op.saved()) {
      if (!is_activation(id) || life[at(id)].last_backward_use != o) continue;
      if (present[at(id)]) {
        present[at(id)] = 0;
        emit(K::free_value, true, o, -1, id, nullptr);
      }
      if (encoded[at(id)]) {
        encoded[at(id)] = 0;
        emit(K::free_encoded, true, o, -1, id, codec(id));
      }
    }
    for (TensorId id : op.outputs()) {
      if (!grad[at(id)]) continue;
      grad[at(id)] = 0;
      emit(K::free_grad, true, o, -1, id, nullptr);
    }
  }
  return out;
}

}  // namespace adacc::test
