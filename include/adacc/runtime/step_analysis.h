// The step analysis: the facts about a step graph that the runtime, the planners and the
// measurements all need, computed once per graph — each tensor's lifetime, whether a
// backward op saves it and which ones read it, whether it can be recomputed, which codecs a
// plan may compress it with, and its bytes and encoded bytes as the allocator accounts
// them. It depends on the graph only, not on a plan.
#pragma once

#include <cstddef>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/model/step_graph.h"

namespace adacc::runtime {

// A codec a plan may compress a tensor with, and the bytes its encoding takes.
struct CodecChoice {
  const compress::Codec* codec = nullptr;
  std::size_t encoded_bytes = 0;  // as the allocator accounts them (ops::accounted_bytes)
};

struct StepAnalysis {
  // All indexed by TensorId.
  std::vector<model::TensorLifetime> lifetimes;  // model::analyze_lifetimes
  std::vector<bool> saved;                       // some backward op reads it
  std::vector<std::vector<int>> readers;         // the ops whose backward reads it, ascending
  // An activation whose producer can be re-run in the backward (OpNode::recomputable).
  std::vector<bool> recomputable;
  std::vector<std::size_t> bytes;  // of its value, as the allocator accounts them
  // For a saved f32 activation: the codecs runtime::validate accepts for it (meant for its
  // role, and every reader accepts what the codec decodes to), in registry order; empty
  // for every other tensor.
  std::vector<std::vector<CodecChoice>> codecs;

  bool is_saved(model::TensorId id) const { return saved[index(id)]; }
  bool is_recomputable(model::TensorId id) const { return recomputable[index(id)]; }
  // The first reader (in forward order) that needs the tensor's value, not a derived
  // form (OpNode::accepts_saved_form); -1 if none.
  int first_value_reader(const model::StepGraph& graph, model::TensorId id) const;
  // Whether `codec` is one of codecs[id].
  bool admits(model::TensorId id, const compress::Codec& codec) const;

 private:
  static std::size_t index(model::TensorId id) { return static_cast<std::size_t>(id); }
};

StepAnalysis analyze_step(const model::StepGraph& graph);

}  // namespace adacc::runtime
