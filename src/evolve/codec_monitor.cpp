// The codec monitor (see codec_monitor.h).
#include "adacc/evolve/codec_monitor.h"

#include <cmath>

#include "adacc/core/error.h"
#include "adacc/plan/cost_model.h"

namespace adacc::evolve {

CodecMonitor::CodecMonitor(const model::StepGraph& graph, const plan::StepCosts& costs,
                           double tolerance)
    : graph_(graph), costs_(costs), tolerance_(tolerance) {}

void CodecMonitor::begin_step(std::int64_t step) {
  in_warmup_ = step - after_ <= warmup_;
  sampling_ = in_warmup_ || (period_ > 0 && step % period_ == 0);
}

void CodecMonitor::observe(Context& ctx, model::TensorId tensor, const compress::Codec& codec,
                           const Tensor& value) {
  if (!sampling_) return;
  try {
    samples_[tensor] = {std::string(codec.name()), sample_codec(ctx, codec, value)};
  } catch (const OutOfMemory&) {
    ++skipped_;  // the sample did not fit beside the step at this point: skip it
  }
}

void CodecMonitor::record(model::TensorId tensor, const std::string& codec,
                          const CodecSample& sample) {
  if (sampling_) samples_[tensor] = {codec, sample};
}

double CodecMonitor::estimate_grad_error(model::TensorId tensor, const std::string& codec,
                                         double tensor_error) const {
  const plan::CodecCost* c = plan::find_codec_cost(costs_, tensor, codec);
  if (c == nullptr || !(c->tensor_error > 0)) return tensor_error;
  return tensor_error * (c->grad_error / c->tensor_error);
}

std::vector<Violation> CodecMonitor::take_violations() {
  std::vector<Violation> out;
  for (const auto& [tensor, s] : samples_) {
    const double g = estimate_grad_error(tensor, s.first, s.second.tensor_error);
    if (!(g <= tolerance_)) out.push_back({tensor, s.first, g, s.second});
  }
  samples_.clear();
  return out;
}

}  // namespace adacc::evolve
