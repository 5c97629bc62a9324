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
#include "adacc/model/gpt2.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"

namespace adacc::runtime {
namespace {

struct Result {
  float loss;
  test::Vec grads;
};

// A small GPT-2 with random weights and one batch, run under any plan.
class CodecsInPlans : public ::testing::Test {
 protected:
  static constexpr int B = 2, T = 16;
  CodecsInPlans() : gpt_(config(), alloc_), graph_(gpt_.build_graph(B, T)) {
    Rng rng(7);
    gpt_.init_weights(rng);
    test::TokenBatch batch = test::random_batch(alloc_, rng, B, T, 64);
    tokens_ = batch.tokens;
    targets_ = batch.targets;
  }
  static model::ModelConfig config() {
    model::ModelConfig c = model::parse_config("L=2,C=64,H=4,V=64,T=32");
    c.attention = ops::AttentionKind::flash;
    return c;
  }
  Result step(const Plan& plan) {
    gpt_.grads().flat.zero();
    StepExecutor exec(graph_, gpt_.params(), gpt_.grads(), ctx_, plan);
    const float loss = exec.forward_backward(tokens_, targets_);
    return Result{loss, test::to_vec(gpt_.grads().flat)};
  }
  model::TensorId id_of(const std::string& name) const {
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      if (graph_.tensors()[i].name == name) return static_cast<model::TensorId>(i);
    }
    ADD_FAILURE() << "no tensor " << name;
    return model::kNoTensor;
  }

  Allocator alloc_;
  Context ctx_{alloc_, 2, 1};
  model::Gpt2 gpt_;
  model::StepGraph graph_;
  Tensor tokens_, targets_;
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
    plan.decisions[static_cast<std::size_t>(id_of(name))] = {Policy::compress, "gelu-deriv-u8"};
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
  wrong_role.decisions[static_cast<std::size_t>(id_of("h0.ln2.out"))] = {Policy::compress,
                                                                         "gelu-deriv-u8"};
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
  recompute.decisions[static_cast<std::size_t>(id_of("h1.fc.out"))] = {Policy::compress,
                                                                       "gelu-deriv-u8"};
  EXPECT_NO_THROW(validate(graph_, recompute));
  recompute.decisions[static_cast<std::size_t>(id_of("h1.gelu.out"))] = {Policy::recompute, ""};
  EXPECT_THROW(validate(graph_, recompute), PlanInfeasible);
  // Other generic-role mismatches: softmax-u8 is for probabilities only; the LayerNorm
  // statistics take no codec.
  Plan stats = keep_all_plan(graph_);
  stats.decisions[static_cast<std::size_t>(id_of("h0.ln1.rstd"))] = {Policy::compress, "bf16"};
  EXPECT_THROW(validate(graph_, stats), InvalidArgument);
  Plan softmax = keep_all_plan(graph_);
  softmax.decisions[static_cast<std::size_t>(id_of("h0.qkv.out"))] = {Policy::compress,
                                                                      "softmax-u8"};
  EXPECT_THROW(validate(graph_, softmax), InvalidArgument);
}

}  // namespace
}  // namespace adacc::runtime
