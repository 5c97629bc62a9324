// Op properties (OpNode::recomputable, accepts_saved_form, backward_reads_output_grad): each
// op kind's answers, and each answer checked against what the op really does when run on
// an OpEnv that records which gradients and saved forms it asks for.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "adacc/core/context.h"
#include "adacc/model/gpt2.h"

namespace adacc::model {
namespace {

// Every tensor zero-filled on first use; records what the op asks for.
class RecordingEnv final : public OpEnv {
 public:
  RecordingEnv(const StepGraph& graph, Context& ctx, Allocator& alloc)
      : graph_(graph), ctx_(ctx), alloc_(alloc) {}
  Context& ctx() override { return ctx_; }
  Pass pass() const override { return Pass::train; }
  const Tensor& value(TensorId id) override { return tensor(values_, id); }
  Tensor& output(TensorId id) override { return tensor(values_, id); }
  Tensor& grad(TensorId id) override {
    grads_asked.insert(id);
    return tensor(grads_, id);
  }
  void set_loss(float) override {}
  SavedForm form(TensorId id) const override {
    forms_asked.insert(id);
    return SavedForm::value;
  }

  std::set<TensorId> grads_asked;
  mutable std::set<TensorId> forms_asked;

 private:
  Tensor& tensor(std::map<TensorId, Tensor>& m, TensorId id) {
    Tensor& t = m[id];
    if (!t.defined()) {
      const TensorInfo& info = graph_.tensor(id);
      t = Tensor::zeros(alloc_, info.shape, info.dtype, MemCategory::workspace, info.name);
    }
    return t;
  }
  const StepGraph& graph_;
  Context& ctx_;
  Allocator& alloc_;
  std::map<TensorId, Tensor> values_, grads_;
};

class OpProperties : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(OpProperties, EachKindsAnswers) {
  ModelConfig cfg = parse_config("L=2,C=16,H=2,V=50,T=16");
  cfg.attention = GetParam();
  const StepGraph graph = build_gpt2_graph(cfg, 2, 8);
  std::set<std::string> kinds;
  for (const auto& op : graph.ops()) {
    const std::string kind(op->kind());
    kinds.insert(kind);
    EXPECT_EQ(op->recomputable(), kind != "lm_head_loss") << op->name();
    EXPECT_EQ(op->backward_reads_output_grad(), kind != "lm_head_loss") << op->name();
    EXPECT_TRUE(op->accepts_saved_form(SavedForm::value)) << op->name();
    EXPECT_EQ(op->accepts_saved_form(SavedForm::gelu_derivative), kind == "gelu") << op->name();
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"embedding", "layernorm", "linear", "attention", "gelu",
                                          "residual", "lm_head_loss"}));
}

// What the properties claim, against what each op's forward and backward ask of the env:
// an op is recomputable exactly when its forward touches no gradient (a re-run would add
// into it twice); its backward asks for its first output's gradient exactly when
// backward_reads_output_grad says so, and for its activation inputs' always; it asks
// which form a saved tensor has exactly when it accepts a derived form.
TEST_P(OpProperties, MatchWhatTheOpsDo) {
  ModelConfig cfg = parse_config("L=1,C=16,H=2,V=50,T=16");
  cfg.attention = GetParam();
  const StepGraph graph = build_gpt2_graph(cfg, 2, 8);
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  for (const auto& op : graph.ops()) {
    RecordingEnv fwd(graph, ctx, alloc);
    op->forward(fwd);
    EXPECT_EQ(op->recomputable(), fwd.grads_asked.empty()) << op->name();

    RecordingEnv bwd(graph, ctx, alloc);
    op->backward(bwd);
    const TensorId out = op->outputs().front();
    EXPECT_EQ(op->backward_reads_output_grad(), bwd.grads_asked.count(out) == 1) << op->name();
    std::set<TensorId> allowed;  // the gradients the runtime expects the backward to touch
    for (TensorId in : op->inputs()) {
      if (graph.tensor(in).kind == TensorKind::activation) {
        EXPECT_EQ(bwd.grads_asked.count(in), 1U) << op->name() << " " << graph.tensor(in).name;
        allowed.insert(in);
      }
    }
    if (op->backward_reads_output_grad()) allowed.insert(out);
    for (TensorId id : bwd.grads_asked) {
      EXPECT_TRUE(allowed.count(id) == 1 || graph.tensor(id).kind == TensorKind::param)
          << op->name() << " touches the gradient of " << graph.tensor(id).name;
    }
    EXPECT_EQ(op->accepts_saved_form(SavedForm::gelu_derivative), !bwd.forms_asked.empty())
        << op->name();
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, OpProperties,
                         ::testing::Values(ops::AttentionKind::naive, ops::AttentionKind::flash),
                         [](const ::testing::TestParamInfo<ops::AttentionKind>& info) {
                           return std::string(info.param == ops::AttentionKind::naive ? "naive"
                                                                                      : "flash");
                         });

}  // namespace
}  // namespace adacc::model
