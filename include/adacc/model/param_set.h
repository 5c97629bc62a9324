// GPT-2's parameters as one contiguous tensor with named views.
//
// The flat layout follows llm.c (wte, wpe, then each per-layer kind stacked over L,
// then the final LayerNorm), so that an llm.c checkpoint is one read, the optimizer is
// one pass, and gradients and optimizer moments (ParamSets of their own, in other
// memory categories) line up element for element.
//   wte (Vp,C) wpe (maxT,C) ln1w,ln1b (L,C) qkvw (L,3C,C) qkvb (L,3C)
//   attprojw (L,C,C) attprojb (L,C) ln2w,ln2b (L,C) fcw (L,4C,C) fcb (L,4C)
//   fcprojw (L,C,4C) fcprojb (L,C) lnfw,lnfb (C)
#pragma once

#include <string>
#include <vector>

#include "adacc/core/tensor.h"
#include "adacc/model/config.h"

namespace adacc::model {

// Whether AdamW's weight decay applies: matrices yes, biases and LayerNorm no.
enum class Decay : std::uint8_t { no, yes };

struct LayerParams {
  Tensor ln1w, ln1b;          // (C), (C)
  Tensor qkvw, qkvb;          // (3C,C), (3C)
  Tensor attprojw, attprojb;  // (C,C), (C)
  Tensor ln2w, ln2b;          // (C), (C)
  Tensor fcw, fcb;            // (4C,C), (4C)
  Tensor fcprojw, fcprojb;    // (C,4C), (C)
};

// One parameter tensor of the flat layout, without storage.
struct ParamSpec {
  std::string name;  // Hugging Face GPT-2 name
  Shape shape;
  Decay decay;
  std::int64_t offset;  // in elements, into the flat tensor
};

// The flat layout: every parameter tensor in order (what ParamSet::named() views), with
// no memory allocated, so graphs and plans of any model size can be built cheaply.
std::vector<ParamSpec> param_layout(const ModelConfig& config);

struct NamedParam {
  std::string name;  // Hugging Face GPT-2 name, e.g. "transformer.h.0.attn.c_attn.weight"
  Tensor tensor;     // view into the flat tensor
  Decay decay;
};

class ParamSet {
 public:
  ParamSet() = default;
  // Allocates the flat tensor (zeroed) from `allocator` under `category`.
  ParamSet(const ModelConfig& config, Allocator& allocator, MemCategory category,
           std::string_view label);

  Tensor flat;      // (num_parameters)
  Tensor wte, wpe;  // (Vp,C), (maxT,C)
  std::vector<LayerParams> layers;
  Tensor lnfw, lnfb;  // (C), (C)

  // Every parameter tensor of one layer kind, in flat order, with its name.
  const std::vector<NamedParam>& named() const { return named_; }

 private:
  std::vector<NamedParam> named_;
};

}  // namespace adacc::model
