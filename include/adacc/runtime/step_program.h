// A plan lowered to the explicit instruction list of one step: every forward, re-run,
// backward, encode, decode and free, in order, with codecs resolved — what Checkmate calls
// a schedule. The step executor runs the list on tensors, the memory model on byte counts
// (one timeline point per instruction), `adacc plan --schedule` prints it, and planners
// can check a plan against it; they all iterate the same list, so they cannot disagree
// about what is alive when.
//
// The order: forward, op by op, each op runs (allocating its outputs); a tensor whose last
// forward use has passed is, if a backward op saves it (and the pass trains), kept, encoded
// (then freed) or freed, as the plan says; otherwise freed. Backward, op by op in reverse:
// the op's saved tensors are materialized (kept: present; compressed: decoded; recomputed:
// rebuilt by re-running its producer after materializing the producer's inputs the same
// way, depth first, inputs in order); rebuilt tensors that no later backward op needs are
// freed before the op runs; after it, saved tensors at their last backward use and the
// gradients of the op's outputs are freed. Re-runs are decided when lowering, by tracking
// which tensors are present (ids only, no bytes): one `recompute` instruction per re-run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/model/step_graph.h"
#include "adacc/runtime/plan.h"

namespace adacc::runtime {

struct StepAnalysis;

struct Instruction {
  enum class Kind : std::uint8_t {
    forward,       // op `op`'s forward
    backward,      // op `op`'s backward
    recompute,     // op `op`'s forward re-run in the backward of op `at`
    encode,        // `tensor` encoded with `codec`, its value freed
    decode,        // `tensor` decoded from its encoding with `codec`
    free_value,    // `tensor`'s value freed
    free_encoded,  // `tensor`'s encoding (by `codec`) freed
    free_grad,     // the gradient of `tensor` freed
  };
  Kind kind = Kind::forward;
  bool in_backward = false;  // part of the backward (else the forward) of op `at`
  int at = 0;
  int op = -1;                                // forward, backward, recompute
  model::TensorId tensor = model::kNoTensor;  // encode, decode, free_*
  const compress::Codec* codec = nullptr;     // encode, decode, free_encoded

  bool operator==(const Instruction&) const = default;
};

struct StepProgram {
  model::Pass pass = model::Pass::train;
  int forward_ops = 0;  // the forward runs ops [0, forward_ops)
  std::vector<Instruction> instructions;

  bool operator==(const StepProgram&) const = default;
};

// Lowers `plan` for one step of `pass` whose forward runs the first `forward_ops` ops (-1:
// all; fewer only for an eval pass, e.g. features without the loss). Validates the plan
// first (runtime::validate: InvalidArgument or PlanInfeasible naming the tensor).
StepProgram lower(const model::StepGraph& graph, const Plan& plan, model::Pass pass,
                  int forward_ops = -1);
StepProgram lower(const model::StepGraph& graph, const StepAnalysis& analysis, const Plan& plan,
                  model::Pass pass, int forward_ops = -1);

// The label of the timeline point after an instruction: "forward of h3.fc", "forward of
// h3.fc (encoding h3.fc.out with int8-g64)", "backward of h2.attn (recomputing h2.qkv)",
// "backward of h2.attn (decoding h2.qkv.out)", "backward of h2.fc (freeing h2.fc.out)",
// "... (freeing encoded h2.fc.out)", "... (freeing the gradient of h2.fc.out)".
std::string instruction_label(const model::StepGraph& graph, const Instruction& instruction);

// The program, one numbered instruction label per line, after a count per kind.
std::string format_step_program(const model::StepGraph& graph, const StepProgram& program);

}  // namespace adacc::runtime
