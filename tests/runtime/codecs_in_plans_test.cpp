// Codecs inside a training step: for every codec, a plan that compresses every saved,
// recomputable activation of the roles it applies to leaves the forward loss exactly
// keep-all's (the forward never reads a compressed tensor back) and moves the parameter
// gradients within the bound of support/codec_gradients.h of the codec's round-trip error
// on those activations; the GELU-derivative codecs give the GELU backward its derivative
// (the same bound, against the exact derivative), and plans that would read a stored
// derivative as the tensor itself are refused.
#include <gtest/gtest.h>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "small_gpt2_fixture.h"
#include "support/codec_gradients.h"

namespace adacc::runtime {
namespace {

struct Result {
  float loss;
  test::Vec grads;
};

// The small GPT-2 (flash attention), run under any plan.
class CodecsInPlans : public test::SmallGpt2 {
 protected:
  CodecsInPlans() : SmallGpt2(ops::AttentionKind::flash, 7) {}
  Result step(const Plan& plan) {
    gpt_.grads().flat.zero();
    StepExecutor exec(graph_, gpt_.params(), gpt_.grads(), ctx_, plan);
    const float loss = exec.forward_backward(tokens_, targets_);
    return Result{loss, test::to_vec(gpt_.grads().flat)};
  }
  std::size_t at(const std::string& name) const {
    return static_cast<std::size_t>(graph_.find(name));
  }
  double largest_round_trip_error(const Plan& plan) {
    return test::largest_round_trip_error(graph_, gpt_.params(), ctx_, tokens_, targets_, plan);
  }
};

TEST_F(CodecsInPlans, EveryCodecLeavesTheForwardLossAndBoundsTheGradientError) {
  const Result keep = step(keep_all_plan(graph_));
  int codecs = 0;
  for (const std::string& codec : compress::codec_names()) {
    Plan plan = keep_all_plan(graph_);
    plan.planner = "all-" + codec;
    int compressed = 0;
    for (std::size_t id = 0; id < graph_.tensors().size(); ++id) {
      const auto tid = static_cast<model::TensorId>(id);
      if (!is_saved(graph_, tid) || !is_recomputable(graph_, tid) ||
          !compress::codec_by_name(codec).applies_to(graph_.tensor(tid).role)) {
        continue;
      }
      plan.decisions[id] = {Policy::compress, codec};
      ++compressed;
    }
    if (compressed == 0) {
      EXPECT_EQ(codec, "softmax-u8");  // flash attention keeps no probabilities
      continue;
    }
    ++codecs;
    const double eps = largest_round_trip_error(plan);
    const Result got = step(plan);
    EXPECT_EQ(got.loss, keep.loss) << codec << ": forward loss is untouched by the plan";
    test::expect_gradients_within_codec_error(got.grads, keep.grads, eps, codec);
  }
  EXPECT_EQ(codecs, static_cast<int>(compress::codec_names().size()) - 1);
}

TEST_F(CodecsInPlans, GeluDerivativeFeedsTheGeluBackward) {
  const Result keep = step(keep_all_plan(graph_));
  Plan plan = keep_all_plan(graph_);
  for (const char* name : {"h0.fc.out", "h1.fc.out"}) {
    plan.decisions[at(name)] = {Policy::compress, "gelu-deriv-u8"};
  }
  double previous = 0;
  for (const char* codec : {"gelu-deriv-u8", "gelu-deriv-u4"}) {
    for (auto& d : plan.decisions) {
      if (d.policy == Policy::compress) d.codec = codec;
    }
    // The bound's error is measured against the exact derivative: decoding the stored
    // derivative as the GELU input instead gives gradient errors of order 1.
    const double eps = largest_round_trip_error(plan);
    const Result got = step(plan);
    EXPECT_EQ(got.loss, keep.loss) << codec << ": forward loss is untouched by the plan";
    test::expect_gradients_within_codec_error(got.grads, keep.grads, eps, codec);
    const double err = test::rel_error(got.grads, keep.grads);
    EXPECT_GT(err, previous) << codec << ": 4 bits should move the gradients more than 8";
    previous = err;
  }
}

TEST_F(CodecsInPlans, StoredDerivativesAreNeverReadAsTheTensor) {
  // A GELU-derivative codec on another role: refused, naming the role and what fits it.
  Plan wrong_role = keep_all_plan(graph_);
  wrong_role.decisions[at("h0.ln2.out")] = {Policy::compress, "gelu-deriv-u8"};
  try {
    validate(graph_, wrong_role);
    ADD_FAILURE() << "gelu-deriv-u8 on a LayerNorm output was accepted";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("norm_out"), std::string::npos) << msg;
    EXPECT_NE(msg.find("int4-g64"), std::string::npos) << msg;
  }
  // Recomputing the GELU output would re-run GELU on the stored derivative: infeasible.
  Plan recompute = keep_all_plan(graph_);
  recompute.decisions[at("h1.fc.out")] = {Policy::compress, "gelu-deriv-u8"};
  EXPECT_NO_THROW(validate(graph_, recompute));
  recompute.decisions[at("h1.gelu.out")] = {Policy::recompute, ""};
  EXPECT_THROW(validate(graph_, recompute), PlanInfeasible);
  // Other generic-role mismatches: softmax-u8 is for probabilities only; the LayerNorm
  // statistics take no codec.
  Plan stats = keep_all_plan(graph_);
  stats.decisions[at("h0.ln1.rstd")] = {Policy::compress, "bf16"};
  EXPECT_THROW(validate(graph_, stats), InvalidArgument);
  Plan softmax = keep_all_plan(graph_);
  softmax.decisions[at("h0.qkv.out")] = {Policy::compress, "softmax-u8"};
  EXPECT_THROW(validate(graph_, softmax), InvalidArgument);
}

}  // namespace
}  // namespace adacc::runtime
