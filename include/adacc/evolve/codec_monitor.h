// The codec monitor: while training runs, every `period` steps it samples each tensor the
// plan compresses, at the moment the executor encodes it (codec_sample.h), and compares
// the error with what the profile measured (docs/evolution.md). A tensor's gradient error
// is estimated as its sampled tensor error times the profile's gradient-to-tensor error
// ratio for that tensor and codec; an estimate above the tolerance is a violation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"
#include "adacc/evolve/codec_sample.h"
#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"

namespace adacc::evolve {

struct Violation {
  model::TensorId tensor = model::kNoTensor;
  std::string codec;
  double grad_error = 0;  // estimated
  CodecSample sample;
};

class CodecMonitor {
 public:
  // `costs` (the profile's) must outlive the monitor.
  CodecMonitor(const model::StepGraph& graph, const plan::StepCosts& costs, double tolerance);

  // Whether the coming step is sampled: the first `warmup` steps of this run (of a
  // resumed run too: statistics settle again) all are, then every period-th. Call with the
  // 1-based number of the step about to run.
  void begin_step(std::int64_t step);
  // The step the run starts after (a resumed run's checkpoint step; 0 for a new run).
  void set_first_step(std::int64_t after) { after_ = after; }
  bool sampling() const { return sampling_; }
  // Whether the coming step is one of the run's warm-up steps (cold caches: its times are
  // not the run's).
  bool in_warmup() const { return in_warmup_; }
  void set_period(std::int64_t period) { period_ = period; }
  void set_warmup(std::int64_t warmup) { warmup_ = warmup; }
  std::int64_t period() const { return period_; }

  // The executor's encode observer: samples `value` under `codec` when sampling.
  void observe(Context& ctx, model::TensorId tensor, const compress::Codec& codec,
               const Tensor& value);

  // Records a sample as observe would (tests, and samples taken elsewhere); only when
  // sampling.
  void record(model::TensorId tensor, const std::string& codec, const CodecSample& sample);

  // The tensors sampled in the last sampled step whose estimated gradient error broke the
  // tolerance (in tensor order); clears the samples.
  std::vector<Violation> take_violations();
  // The last sample of every tensor observed (for the metrics log).
  const std::map<model::TensorId, std::pair<std::string, CodecSample>>& samples() const {
    return samples_;
  }
  // Estimated gradient error of `tensor` under `codec` given a sample's tensor error.
  double estimate_grad_error(model::TensorId tensor, const std::string& codec,
                             double tensor_error) const;
  std::int64_t skipped() const { return skipped_; }  // samples that did not fit the budget

 private:
  const model::StepGraph& graph_;
  const plan::StepCosts& costs_;
  double tolerance_;
  std::int64_t period_ = 50;
  std::int64_t warmup_ = 10;
  std::int64_t after_ = 0;
  bool sampling_ = false;
  bool in_warmup_ = false;
  std::int64_t skipped_ = 0;
  std::map<model::TensorId, std::pair<std::string, CodecSample>> samples_;
};

}  // namespace adacc::evolve
