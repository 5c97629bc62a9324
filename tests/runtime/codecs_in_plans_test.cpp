// Codecs inside a training step: a plan that compresses every saved, recomputable
// activation of the roles int8-g64 (or int4-g64) applies to gives a loss and gradients
// close to keeping everything; the GELU-derivative codecs give the GELU backward its
// derivative (gradients close to keep-all, far from what decoding the derivative as the
// input would give), and plans that would read a stored derivative as the tensor itself
// are refused.
#include <gtest/gtest.h>

#include <tuple>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "small_gpt2_fixture.h"

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
};

TEST_F(CodecsInPlans, CompressingEverySavedActivationStaysClose) {
  const model::StepGraph& graph = graph_;
  const Result ref = step(keep_all_plan(graph));
  for (const auto& [codec, loss_tol, grad_tol] :
       {std::tuple{"int8-g64", 2e-3, 1e-2}, std::tuple{"int4-g64", 2e-2, 0.15}}) {
    Plan plan = keep_all_plan(graph);
    int compressed = 0;
    for (std::size_t id = 0; id < graph.tensors().size(); ++id) {
      const auto tid = static_cast<model::TensorId>(id);
      if (!is_saved(graph, tid) || !is_recomputable(graph, tid) ||
          !compress::codec_by_name(codec).applies_to(graph.tensor(tid).role)) {
        continue;
      }
      plan.decisions[id] = {Policy::compress, codec};
      ++compressed;
    }
    ASSERT_GT(compressed, 10);
    const Result got = step(plan);
    EXPECT_NEAR(got.loss, ref.loss, loss_tol * ref.loss) << codec;
    const double err = test::rel_error(got.grads, ref.grads);
    EXPECT_LT(err, grad_tol) << codec;
    EXPECT_GT(err, 0.0) << codec << ": compression should change the gradients a little";
  }
}

TEST_F(CodecsInPlans, GeluDerivativeFeedsTheGeluBackward) {
  const Result ref = step(keep_all_plan(graph_));
  Plan plan = keep_all_plan(graph_);
  for (const char* name : {"h0.fc.out", "h1.fc.out"}) {
    plan.decisions[at(name)] = {Policy::compress, "gelu-deriv-u8"};
  }
  const Result u8 = step(plan);
  EXPECT_EQ(u8.loss, ref.loss);  // the forward never reads the stored form
  const double err_u8 = test::rel_error(u8.grads, ref.grads);
  EXPECT_GT(err_u8, 0.0);
  EXPECT_LT(err_u8, 5e-3);
  for (auto& d : plan.decisions) {
    if (d.policy == Policy::compress) d.codec = "gelu-deriv-u4";
  }
  const double err_u4 = test::rel_error(step(plan).grads, ref.grads);
  EXPECT_GT(err_u4, err_u8);
  EXPECT_LT(err_u4, 0.1);
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
