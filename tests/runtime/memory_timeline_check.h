// The check behind the memory-timeline tests: one step of a real model under a plan,
// recorded, against the memory model's predicted timeline.
#pragma once

#include <string>

#include "adacc/model/gpt2.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"

namespace adacc::test {

// Runs one step of `pass` (forward and backward, or forward alone) of `gpt` under `plan`
// on `ctx` with the timeline recorded, and returns where it first differs from
// predict_step_timeline's: empty if every point is equal. The prediction's fixed part is
// training_fixed_bytes without the optimizer (the model's parameters and gradients, and
// the tokens and targets), derived from the config alone, so the caller's allocator must
// hold exactly those (and `tokens`, `targets` must be the batch's (B,T) int32 tensors).
inline std::string timeline_difference(model::Gpt2& gpt, const model::StepGraph& graph,
                                       Context& ctx, const runtime::Plan& plan, model::Pass pass,
                                       const Tensor& tokens, const Tensor& targets,
                                       std::size_t* points = nullptr) {
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
  exec.set_timeline_recording(true);
  if (pass == model::Pass::train) {
    exec.forward_backward(tokens, targets);
  } else {
    exec.forward(tokens, targets);
  }
  const runtime::StepTimeline predicted = runtime::predict_step_timeline(
      graph, plan, ctx.threads(),
      runtime::training_fixed_bytes(gpt.config(), graph.batch, graph.seq,
                                    /*with_optimizer=*/false),
      pass);
  if (points != nullptr) *points = exec.timeline().size();
  const std::string diff = runtime::first_difference(predicted, exec.timeline());
  if (diff.empty()) return diff;
  return plan.planner + (pass == model::Pass::train ? " (train)" : " (eval)") + ", " +
         std::to_string(ctx.threads()) + " threads: " + diff;
}

}  // namespace adacc::test
