// The integer codecs inside a training step: a plan that compresses every saved,
// recomputable activation with int8-g64 (or int4-g64) gives a loss and gradients close to
// keeping everything.
#include <gtest/gtest.h>

#include <tuple>

#include "adacc/model/gpt2.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"

namespace adacc::runtime {
namespace {

struct Result {
  float loss;
  test::Vec grads;
};

TEST(IntCodecsInPlans, CompressingEverySavedActivationStaysClose) {
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::ModelConfig config = model::parse_config("L=2,C=64,H=4,V=64,T=32");
  config.attention = ops::AttentionKind::flash;
  model::Gpt2 gpt(config, alloc);
  const int B = 2, T = 16;
  const model::StepGraph graph = gpt.build_graph(B, T);
  Rng rng(7);
  gpt.init_weights(rng);
  std::vector<int> tok, tgt;
  for (int i = 0; i < B * T; ++i) {
    tok.push_back(static_cast<int>(rng.next_u64() % 64));
    tgt.push_back(static_cast<int>(rng.next_u64() % 64));
  }
  const Tensor tokens = test::to_int_tensor(alloc, tok, {B, T});
  const Tensor targets = test::to_int_tensor(alloc, tgt, {B, T}, "targets");
  const auto step = [&](const Plan& plan) {
    gpt.grads().flat.zero();
    StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
    const float loss = exec.forward_backward(tokens, targets);
    return Result{loss, test::to_vec(gpt.grads().flat)};
  };
  const Result ref = step(keep_all_plan(graph));
  for (const auto& [codec, loss_tol, grad_tol] :
       {std::tuple{"int8-g64", 2e-3, 1e-2}, std::tuple{"int4-g64", 2e-2, 0.15}}) {
    Plan plan = keep_all_plan(graph);
    int compressed = 0;
    for (std::size_t id = 0; id < graph.tensors().size(); ++id) {
      const auto tid = static_cast<model::TensorId>(id);
      if (!is_saved(graph, tid) || !is_recomputable(graph, tid)) continue;
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

}  // namespace
}  // namespace adacc::runtime
