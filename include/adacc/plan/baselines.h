// Baseline planners: fixed recipes, the points of comparison for any planner that chooses
// per tensor (docs/architecture.md, "Plans"). Each maps a step graph to a Plan without any
// cost model; every plan they return passes runtime::validate. A block's input is the
// residual stream entering it ("embed.out" for h0, "h{l-1}.res2.out" otherwise).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {

// "none": keep every saved activation (runtime::keep_all_plan).
runtime::Plan none_plan(const model::StepGraph& graph);

// "full": per-block checkpointing. Keeps each block's input and what lies outside the
// blocks (the final LayerNorm's statistics, the loss gradient, and the last block's output
// that the final LayerNorm saves); recomputes every other saved activation of the blocks.
runtime::Plan full_plan(const model::StepGraph& graph);

// "selective": Megatron-style selective recompute of the attention core — the attention
// statistics (softmax probabilities for naive attention, log-sum-exp for flash) are
// recomputed; everything else is kept.
runtime::Plan selective_plan(const model::StepGraph& graph);

// "llmc": llm.c's recompute — the GELU outputs and the blocks' LayerNorm outputs are
// recomputed (their mean and rstd stay kept); everything else is kept.
runtime::Plan llmc_plan(const model::StepGraph& graph);

// "every-<k>": like full, but only the inputs of blocks l with l % k == 0 are kept; the
// other blocks' inputs are recomputed too (chains of recomputation across up to k blocks).
// every-1 is full. Throws InvalidArgument unless k >= 1.
runtime::Plan every_k_plan(const model::StepGraph& graph, int k);

// ActNN / GACT-style activation compression without recompute: one codec per tensor role
// (compress::Codec::applies_to says which codecs fit which role). Every saved f32
// activation that could be recomputed (runtime::is_saved and runtime::is_recomputable)
// whose role is in `by_role` is compressed with that role's codec; everything else is
// kept (roles not listed, the loss gradient, which the fused loss makes in its forward,
// the int32 inputs). Throws InvalidArgument for an unknown codec or one that does not
// apply to its role.
struct RoleCodec {
  model::TensorRole role;
  std::string codec;
};
runtime::Plan compress_plan(const model::StepGraph& graph, const std::vector<RoleCodec>& by_role,
                            std::string planner);

// The "compress" baseline's codec per role: outlier-aware int4 (int4-g64) for the inputs
// of linear layers (norm_out, attn_out, gelu_out), int8-g64 for qkv and the residual
// stream (read by LayerNorm backward), softmax-u8 for attention probabilities,
// gelu-deriv-u8 for GELU inputs (docs/codecs.md has the measurements behind it).
std::vector<RoleCodec> default_role_codecs();

// "compress-<codec>": the uniform policy — `codec` on every role it applies to, the rest
// kept. Throws InvalidArgument listing compress::codec_names() for an unknown codec, and
// when the codec applies to no saved tensor of this graph (e.g. softmax-u8 with flash
// attention, which saves no probabilities).
runtime::Plan compress_plan(const model::StepGraph& graph, std::string_view codec);

// The baseline with this name: "none", "full", "selective", "llmc", "every-<k>"
// (e.g. "every-2"), "compress" (default_role_codecs) or "compress-<codec>"
// (e.g. "compress-bf16"). Throws InvalidArgument listing the names otherwise.
runtime::Plan baseline_plan(const model::StepGraph& graph, std::string_view name);

// The names baseline_plan accepts, for help texts: {"none", "full", "selective", "llmc",
// "every-<k>", "compress", "compress-<codec>"}.
std::vector<std::string> baseline_names();

}  // namespace adacc::plan
