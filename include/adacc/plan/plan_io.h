// Plans as files and as tables (docs/architecture.md, "File formats": plan JSON).
//
// A plan file lists only the tensors whose policy differs from keep_all_plan's, by name,
// so that it stays short, readable and valid for any batch shape of the same model:
//
//   {"planner": "full",
//    "tensors": {"h0.fc.out": "recompute", "h0.gelu.out": {"compress": "bf16"}, ...}}
//
// Policies are "keep", "recompute" or {"compress": "<codec>"}.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// The plan as JSON (the format above), tensors in graph order.
std::string to_json(const runtime::Plan& plan, const model::StepGraph& graph);

// The largest plan file read (64 MiB): a plan of every saved activation of a model of
// 100,000 layers is about as large. Larger files and texts are refused unread.
inline constexpr std::size_t kMaxPlanFileBytes = std::size_t{64} << 20;

// A plan for `graph` from JSON: keep_all_plan with the listed entries applied, then
// validated (runtime::validate). A missing "planner" reads as "custom". Reading takes time
// linear in the text's size. Malformed JSON (also: nested deeper than kMaxJsonDepth, a key
// given twice, text over kMaxPlanFileBytes), unknown tensor names, policies or codecs
// throw InvalidArgument naming the entry in one short line; a plan that cannot be carried
// out throws PlanInfeasible.
runtime::Plan from_json(const model::StepGraph& graph, std::string_view text);

// from_json on a file's content; a file that cannot be read throws InvalidArgument naming
// it, and errors in its content name it too.
runtime::Plan load_plan_file(const model::StepGraph& graph, const std::string& path);
// Writes to_json(plan, graph) to `path` (replacing it); InvalidArgument if it cannot.
void save_plan_file(const runtime::Plan& plan, const model::StepGraph& graph,
                    const std::string& path);

// A table for people: one row per saved activation (name, role, shape, bytes, policy),
// grouped by layer, blocks with identical policies collapsed into one ("h0, same in
// h1..h11"), and totals per policy of what the plan retains between forward and backward
// (kept bytes, compressed bytes as encoded, recomputed bytes).
std::string format_plan_table(const model::StepGraph& graph, const runtime::Plan& plan);

}  // namespace adacc::plan
