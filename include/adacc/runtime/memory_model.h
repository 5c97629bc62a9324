// The memory model: predicts, from the step graph, tensor sizes, the kernels' declared
// workspace and a Plan, the allocator's bytes over one step — per category, after every
// instruction of the plan's step program (the step's timeline, step_timeline.h), and from
// it the peak, in total and per category, and where it happens (the forward or backward of
// which op). It runs the executor's own program (step_program.h) on byte counts instead of
// tensors, so prediction and execution agree on what is alive when; the timeline is what
// tests compare with the executor's measured one, point by point.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "adacc/core/allocator.h"
#include "adacc/model/config.h"
#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_program.h"
#include "adacc/runtime/step_timeline.h"

namespace adacc::runtime {

struct MemoryPrediction {
  std::size_t total_peak = 0;
  std::array<std::size_t, kMemCategories> at_peak{};  // per category when the total peaks
  std::array<std::size_t, kMemCategories> peak{};     // each category's own peak
  std::string where;      // "forward of h3.fc", "backward of h2.attn (recomputing h2.qkv)"
  std::size_t fixed = 0;  // bytes held throughout (parameters, gradients, optimizer, batch)

  std::size_t at_peak_of(MemCategory c) const { return at_peak[static_cast<int>(c)]; }
  // The step's own bytes at the peak: total_peak - fixed.
  std::size_t step_peak() const { return total_peak - fixed; }
};

// What a training run holds besides the step: parameters, gradients and, with AdamW, two
// moments (each one allocation of the flat parameter tensor), and the batch's tokens and
// targets (activations), per category.
std::array<std::size_t, kMemCategories> training_fixed_bytes(const model::ModelConfig& config,
                                                             int batch, int seq,
                                                             bool with_optimizer = true);

// Predicts the timeline of one step (training: forward and backward; eval: forward) under
// `plan` with `threads` threads, on top of `fixed` bytes per category held throughout:
// the points StepExecutor records with set_timeline_recording(true), from "before the
// step" to "after the step".
StepTimeline predict_step_timeline(const model::StepGraph& graph, const Plan& plan, int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed,
                                   model::Pass pass = model::Pass::train);
// The same for a plan already lowered (one point per instruction, plus before and after).
StepTimeline predict_step_timeline(const model::StepGraph& graph, const StepProgram& program,
                                   int threads,
                                   const std::array<std::size_t, kMemCategories>& fixed);

// The peak of a timeline (its highest point, the first if several) as a prediction, with
// `fixed` the bytes it held throughout.
MemoryPrediction timeline_peak(const StepTimeline& timeline,
                               const std::array<std::size_t, kMemCategories>& fixed);

// The peak of predict_step_timeline's timeline.
MemoryPrediction predict_step_memory(const model::StepGraph& graph, const Plan& plan, int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed,
                                     model::Pass pass = model::Pass::train);

// The same for a plan already lowered.
MemoryPrediction predict_step_memory(const model::StepGraph& graph, const StepProgram& program,
                                     int threads,
                                     const std::array<std::size_t, kMemCategories>& fixed);

}  // namespace adacc::runtime
