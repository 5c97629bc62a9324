// The AdamW optimizer over a model's ParamSet: moments m and v in ParamSets of their
// own (category optimizer), weight decay applied to matrices and embeddings but not to
// biases and LayerNorm parameters. The update runs as a few fused passes over
// contiguous runs of the flat parameter tensor and zeroes the gradients as it goes.
#pragma once

#include <cstdint>
#include <vector>

#include "adacc/core/context.h"
#include "adacc/model/param_set.h"
#include "adacc/ops/adamw.h"

namespace adacc::train {

class AdamWOptimizer {
 public:
  AdamWOptimizer(const model::ModelConfig& config, Allocator& allocator, ops::AdamWConfig hyper);

  // One update with the current gradients (then zeroed); increments step().
  void step(Context& ctx, model::ParamSet& params, model::ParamSet& grads, float lr);

  std::int64_t steps_taken() const { return step_; }
  // For resuming: the bias corrections continue from this count.
  void set_steps_taken(std::int64_t steps) { step_ = steps; }
  const ops::AdamWConfig& hyper() const { return hyper_; }
  model::ParamSet& m() { return m_; }
  model::ParamSet& v() { return v_; }

 private:
  struct Span {
    std::int64_t offset, size;
    model::Decay decay;
  };
  ops::AdamWConfig hyper_;
  model::ParamSet m_, v_;
  std::vector<Span> spans_;  // maximal runs of the flat tensor with one decay setting
  std::int64_t step_ = 0;
};

}  // namespace adacc::train
