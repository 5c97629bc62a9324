// AdamW over contiguous spans of the flat parameter tensor (see adamw_optimizer.h).
#include "adacc/train/adamw_optimizer.h"

namespace adacc::train {

AdamWOptimizer::AdamWOptimizer(const model::ModelConfig& config, Allocator& allocator,
                               ops::AdamWConfig hyper)
    : hyper_(hyper),
      m_(config, allocator, MemCategory::optimizer, "adamw.m"),
      v_(config, allocator, MemCategory::optimizer, "adamw.v") {
  std::int64_t offset = 0;
  for (const model::NamedParam& p : m_.named()) {
    const std::int64_t n = p.tensor.numel();
    if (!spans_.empty() && spans_.back().decay == p.decay) {
      spans_.back().size += n;
    } else {
      spans_.push_back({offset, n, p.decay});
    }
    offset += n;
  }
}

void AdamWOptimizer::step(Context& ctx, model::ParamSet& params, model::ParamSet& grads, float lr) {
  ++step_;
  for (const Span& s : spans_) {
    ops::AdamWConfig c = hyper_;
    c.lr = lr;
    if (s.decay == model::Decay::no) c.weight_decay = 0.0f;
    Tensor p = params.flat.view(s.offset, {s.size});
    Tensor g = grads.flat.view(s.offset, {s.size});
    Tensor m = m_.flat.view(s.offset, {s.size});
    Tensor v = v_.flat.view(s.offset, {s.size});
    ops::adamw_update(ctx, p, g, m, v, step_, c, ops::ZeroGrad::yes);
  }
}

}  // namespace adacc::train
