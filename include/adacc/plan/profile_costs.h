// From a one-block step profile (runtime/step_profile.h) to the StepCosts of a model of
// any depth with the profiled shape: each op and saved tensor of block l takes the
// measurement of its block-0 namesake ("h7.fc" is priced as "h0.fc"), the ops and tensors
// outside the blocks (embedding, final LayerNorm, head) their own.
#pragma once

#include "adacc/model/step_graph.h"
#include "adacc/plan/step_costs.h"
#include "adacc/runtime/step_profile.h"

namespace adacc::plan {

// Costs indexed by `graph`'s ops and tensors: every op gets its forward and backward time;
// every saved recomputable f32 activation (runtime::is_codec_candidate) gets a CodecCost
// per codec measured on its namesake. Throws InvalidArgument naming the first op or
// tensor the profile has no measurement for, or a tensor whose size differs from its
// namesake's (a profile of another shape, batch or seq length).
StepCosts costs_for_graph(const runtime::StepProfile& profile, const model::StepGraph& graph);

}  // namespace adacc::plan
