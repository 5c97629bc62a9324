// The step executor: runs a step graph's forward and backward under a Plan, owning every
// activation and activation gradient, allocated from the context's allocator.
//
// Categories: op outputs and rebuilt (recomputed) tensors are activations; encoded
// tensors are compressed; decoded tensors, gradients of activations (allocated zeroed
// on first use, freed once their producer's backward has consumed them) and kernel
// scratch are workspace. The order of allocations and frees is the plan's step program
// (step_program.h), lowered once per plan and pass, which the memory model
// (memory_model.h) runs too.
//
// Recompute is exact: a plan that only keeps and recomputes gives bit-identical losses
// and gradients to keeping everything.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"
#include "adacc/model/param_set.h"
#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_analysis.h"
#include "adacc/runtime/step_program.h"
#include "adacc/runtime/step_timeline.h"

namespace adacc::runtime {

// Wall time of each op's forward and backward in the last profiled step, in seconds.
struct OpTiming {
  double forward = 0;
  double backward = 0;
};

class StepExecutor {
 public:
  // `graph`, `params`, `grads` and `ctx` must outlive the executor. Without a plan,
  // every saved tensor is kept. An invalid plan throws (see runtime::validate).
  StepExecutor(const model::StepGraph& graph, const model::ParamSet& params, model::ParamSet& grads,
               Context& ctx);
  StepExecutor(const model::StepGraph& graph, const model::ParamSet& params, model::ParamSet& grads,
               Context& ctx, Plan plan);

  const Plan& plan() const { return plan_; }
  // Swaps in another plan (between steps); lowers it for training (step_program.h).
  void set_plan(Plan plan);
  // The instruction list a step of `pass` runs under the plan (lowered once per plan and
  // pass; every step of that pass runs this list).
  const StepProgram& program(model::Pass pass);

  // Forward and backward on one batch; adds the gradients into `grads` and returns the
  // mean loss. tokens and targets are (B,T) int32.
  float forward_backward(const Tensor& tokens, const Tensor& targets);

  // Forward only (no gradients, nothing saved); returns the mean loss.
  float forward(const Tensor& tokens, const Tensor& targets);

  // Forward of every op but the final loss, for inference: returns the loss op's input,
  // the final LayerNorm output (B,T,C). tokens is (B,T) int32.
  Tensor features(const Tensor& tokens);

  // Called at every encode of a training step, with the tensor about to be encoded (still
  // held) and its codec, before the original is freed (evolve/codec_monitor.h samples
  // it). Unset by default; it may allocate from the context's allocator.
  using EncodeObserver =
      std::function<void(model::TensorId, const compress::Codec&, const Tensor& value)>;
  void set_encode_observer(EncodeObserver observer) { encode_observer_ = std::move(observer); }

  // When on, each op's forward and backward are timed (indexed like graph.ops()).
  void set_profiling(bool on) { profiling_ = on; }
  const std::vector<OpTiming>& op_timings() const { return timings_; }

  // When on, forward_backward and forward record the step's memory timeline from the
  // context's allocator: a point before the step, after every instruction and after
  // the step (step_timeline.h; predict_step_timeline predicts the same points). Off by
  // default. The allocator's interval (Allocator::start_interval) is the recorder's while
  // a recorded step runs.
  void set_timeline_recording(bool on) { recording_ = on; }
  // The timeline of the last recorded step (empty if none was).
  const StepTimeline& timeline() const { return timeline_; }

 private:
  class Env;
  class Store;
  // Runs a step program on env's tensors.
  float run(Env& env, const StepProgram& program);
  // A timeline point now (when recording), and a new allocator interval.
  void record(std::string label);
  // forward_backward or forward, recorded as one timeline when recording is on.
  float recorded_step(model::Pass pass, const Tensor& tokens, const Tensor& targets);

  const model::StepGraph& graph_;
  const model::ParamSet& params_;
  model::ParamSet& grads_;
  Context& ctx_;
  StepAnalysis analysis_;
  Plan plan_;
  StepProgram train_program_;
  std::optional<StepProgram> eval_program_, features_program_;  // lowered on first use
  EncodeObserver encode_observer_;
  bool profiling_ = false;
  std::vector<OpTiming> timings_;
  bool recording_ = false;
  StepTimeline timeline_;
};

}  // namespace adacc::runtime
