// A step's memory timeline: the bytes held per category after every event of the step
// program (runtime/step_program.h), and the highest total reached during each instruction.
//
// Both sides produce one: the step executor measures it from the allocator when asked
// (StepExecutor::set_timeline_recording), and the memory model predicts it
// (predict_step_timeline). The points carry the same labels in the same order, because
// both follow the same schedule, so the two can be compared point by point — which is
// how a plan's prediction is checked against a real step byte for byte, not only at the
// peak: bytes allocated and freed inside one op (an op's workspace, the scratch outputs
// of a re-run op) show in that op's point's peak.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "adacc/core/allocator.h"

namespace adacc::runtime {

struct TimelinePoint {
  // What just happened: "before the step", "forward of h3.fc", "forward of h3.fc
  // (encoding h3.fc.out with int8-g64)", "backward of h2.attn (recomputing h2.qkv)",
  // "backward of h2.fc (freeing h2.fc.out)", "after the step", ...
  std::string label;
  std::array<std::size_t, kMemCategories> live{};  // bytes per category after the event
  // The highest total during the event (counting from the previous point's state), and
  // each category when the total first reached it.
  std::size_t peak = 0;
  std::array<std::size_t, kMemCategories> at_peak{};
  std::array<std::size_t, kMemCategories> category_peak{};  // each category's own highest

  std::size_t total() const;
  std::size_t live_of(MemCategory c) const { return live[static_cast<int>(c)]; }
};

using StepTimeline = std::vector<TimelinePoint>;

// The point from the allocator's current stats and interval (MemStats::interval_*).
TimelinePoint timeline_point(std::string label, const MemStats& stats);

// Empty if the two timelines are equal (labels, and every byte count of every point);
// otherwise the first difference: the point's index and label, and both sides' values
// per category ("point 17 'backward of h1.attn (recomputing h1.qkv)': peak 81920 vs
// 86016; at the peak: workspace 4096 vs 8192; ..."). `a_name`, `b_name` name the sides.
std::string first_difference(const StepTimeline& a, const StepTimeline& b,
                             const std::string& a_name = "predicted",
                             const std::string& b_name = "measured");

}  // namespace adacc::runtime
