// GPT-2: parameters, their initialisation, and the step graph for a batch shape.
//
// Per block (pre-LayerNorm):  ln1 -> qkv -> attention -> attn_proj -> residual
//                             ln2 -> fc -> gelu -> fc_proj -> residual
// then the final LayerNorm and the fused lm-head + cross-entropy (tied to wte).
#pragma once

#include "adacc/core/rng.h"
#include "adacc/model/config.h"
#include "adacc/model/param_set.h"
#include "adacc/model/step_graph.h"

namespace adacc::model {

// The step graph of GPT-2 `config` for batches of B sequences of T tokens (T <= maxT);
// needs no parameters (tensor ids of parameters index param_layout(config)).
StepGraph build_gpt2_graph(const ModelConfig& config, int B, int T);

class Gpt2 {
 public:
  // Allocates parameters (category params) and gradients (category grads), zeroed.
  Gpt2(ModelConfig config, Allocator& allocator);

  const ModelConfig& config() const { return config_; }
  ParamSet& params() { return params_; }
  const ParamSet& params() const { return params_; }
  ParamSet& grads() { return grads_; }

  // GPT-2 initialisation: weights N(0, 0.02), the two residual projections of each block
  // N(0, 0.02/sqrt(2L)), biases 0, LayerNorm weights 1; padded wte rows 0.
  void init_weights(Rng& rng);

  // The step graph for batches of B sequences of T tokens (T <= maxT).
  StepGraph build_graph(int B, int T) const;

 private:
  ModelConfig config_;
  ParamSet params_;
  ParamSet grads_;
};

}  // namespace adacc::model
