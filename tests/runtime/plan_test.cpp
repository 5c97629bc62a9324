// Plans: the keep-everything default, saved/recomputable tensors, and validation — each
// malformed-plan error (InvalidArgument) and each infeasible recomputation (PlanInfeasible)
// with its message, recompute chains that can and cannot be carried out.
#include "adacc/runtime/plan.h"

#include <gtest/gtest.h>

#include "reference/test_util.h"

#include <functional>
#include <string>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "support/small_graph.h"

namespace adacc::runtime {
namespace {

using model::StepGraph;
using model::TensorId;
using model::TensorKind;

using test::expect_error;

class PlanTest : public test::SmallGraph {};

TEST(Policy, Names) {
  EXPECT_EQ(policy_name(Policy::keep), "keep");
  EXPECT_EQ(policy_name(Policy::compress), "compress");
  EXPECT_EQ(policy_name(Policy::recompute), "recompute");
}

TEST_P(PlanTest, SavedTensors) {
  for (const char* name : {"tokens", "embed.out", "h0.ln1.mean", "h0.ln1.rstd", "h0.ln1.out",
                           "h0.qkv.out", "h0.attn.out", "h0.res1.out", "h0.ln2.out", "h0.fc.out",
                           "h0.gelu.out", "h2.res2.out", "lnf.mean", "lnf.rstd", "loss.grad"}) {
    EXPECT_TRUE(is_saved(graph_, graph_.find(name))) << name;
  }
  EXPECT_TRUE(is_saved(graph_, graph_.find("h1." + stats())));
  for (const char* name : {"targets", "transformer.wte.weight", "h0.attn_proj.out",
                           "h0.fc_proj.out", "lnf.out", "loss.losses"}) {
    EXPECT_FALSE(is_saved(graph_, graph_.find(name))) << name;
  }
}

TEST_P(PlanTest, Recomputable) {
  for (const char* name : {"embed.out", "h0.ln1.out", "h0.ln1.mean", "h1.attn.out", "h2.res2.out",
                           "lnf.out", "lnf.rstd", "h0.attn_proj.out"}) {
    EXPECT_TRUE(is_recomputable(graph_, graph_.find(name))) << name;
  }
  EXPECT_TRUE(is_recomputable(graph_, graph_.find("h0." + stats())));
  for (const char* name : {"tokens", "targets", "transformer.wte.weight",
                           "transformer.h.0.ln_1.weight", "loss.grad", "loss.losses"}) {
    EXPECT_FALSE(is_recomputable(graph_, graph_.find(name))) << name;
  }
}

TEST_P(PlanTest, KeepAllKeepsSavedAndFreesTheRest) {
  const Plan plan = keep_all_plan(graph_);
  ASSERT_EQ(plan.decisions.size(), graph_.tensors().size());
  for (std::size_t i = 0; i < plan.decisions.size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    const bool freed = graph_.tensor(id).kind == TensorKind::activation && !is_saved(graph_, id);
    EXPECT_EQ(plan.decisions[i].policy, freed ? Policy::recompute : Policy::keep)
        << graph_.tensor(id).name;
    EXPECT_TRUE(plan.decisions[i].codec.empty());
  }
  EXPECT_EQ(plan.decisions[static_cast<std::size_t>(graph_.find("loss.losses"))].policy,
            Policy::recompute);
  EXPECT_NO_THROW(validate(graph_, plan));
}

TEST_P(PlanTest, WrongSizeIsInvalid) {
  Plan plan = keep_all_plan(graph_);
  plan.decisions.pop_back();
  const std::string n = std::to_string(graph_.tensors().size());
  expect_error<InvalidArgument>([&] { validate(graph_, plan); },
                                {"[plan]", std::to_string(graph_.tensors().size() - 1), n});
  plan.decisions.clear();
  EXPECT_THROW(validate(graph_, plan), InvalidArgument);
}

TEST_P(PlanTest, ParamsAndInputsMustBeKept) {
  for (const char* name :
       {"transformer.wte.weight", "transformer.h.1.mlp.c_fc.bias", "tokens", "targets"}) {
    for (Policy p : {Policy::recompute, Policy::compress}) {
      Plan plan = keep_all_plan(graph_);
      at(plan, name) = Decision{p, "bf16"};
      expect_error<InvalidArgument>([&] { validate(graph_, plan); },
                                    {std::string("'") + name + "'", "keep it"});
    }
  }
}

TEST_P(PlanTest, CompressNeedsAKnownCodec) {
  Plan plan = keep_all_plan(graph_);
  at(plan, "h1.gelu.out") = Decision{Policy::compress, "bf16"};
  at(plan, "h2.qkv.out") = Decision{Policy::compress, "bf16"};
  EXPECT_NO_THROW(validate(graph_, plan));
  at(plan, "h1.fc.out") = Decision{Policy::compress, "int3"};
  expect_error<InvalidArgument>([&] { validate(graph_, plan); }, {"'h1.fc.out'", "'int3'", "bf16"});
  at(plan, "h1.fc.out") = Decision{Policy::compress, ""};
  expect_error<InvalidArgument>([&] { validate(graph_, plan); }, {"'h1.fc.out'"});
}

TEST_P(PlanTest, LossGradientCannotBeRecomputed) {
  Plan plan = keep_all_plan(graph_);
  at(plan, "loss.grad").policy = Policy::recompute;
  expect_error<InvalidArgument>([&] { validate(graph_, plan); },
                                {"'loss.grad'", "cannot be recomputed", "keep or compress"});
  // Compressing it is fine.
  at(plan, "loss.grad") = Decision{Policy::compress, "bf16"};
  EXPECT_NO_THROW(validate(graph_, plan));
}

TEST_P(PlanTest, RecomputeChainsFromKeptTensors) {
  Plan plan = keep_all_plan(graph_);
  // One op back: gelu from the kept fc output.
  at(plan, "h0.gelu.out").policy = Policy::recompute;
  EXPECT_NO_THROW(validate(graph_, plan));
  // Two ops back, and through a compressed tensor.
  at(plan, "h0.fc.out").policy = Policy::recompute;
  at(plan, "h0.ln2.out") = Decision{Policy::compress, "bf16"};
  EXPECT_NO_THROW(validate(graph_, plan));
  // Through an activation that is never saved (attn_proj.out feeds res1), even when the
  // plan says keep for it: it is rebuilt too.
  at(plan, "h1.res1.out").policy = Policy::recompute;
  at(plan, "h1.attn_proj.out").policy = Policy::keep;
  EXPECT_NO_THROW(validate(graph_, plan));
  // Everything recomputable, back to the tokens.
  Plan all = keep_all_plan(graph_);
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    if (is_recomputable(graph_, static_cast<TensorId>(i))) {
      all.decisions[i].policy = Policy::recompute;
    }
  }
  EXPECT_NO_THROW(validate(graph_, all));
}

INSTANTIATE_TEST_SUITE_P(Attention, PlanTest, test::kAttentionForms, test::attention_name);

// A hand-made graph for what GPT-2 cannot show: an op that cannot be re-run feeding a
// recomputed tensor, and a cycle.
class TestOp final : public model::OpNode {
 public:
  TestOp(std::string name, std::string kind, std::vector<TensorId> inputs,
         std::vector<TensorId> outputs, std::vector<TensorId> saved)
      : OpNode(std::move(name), -1), kind_(std::move(kind)) {
    inputs_ = std::move(inputs);
    outputs_ = std::move(outputs);
    saved_ = std::move(saved);
  }
  std::string_view kind() const override { return kind_; }
  // An op of kind "lm_head_loss" stands for one that cannot be re-run.
  bool recomputable() const override { return kind_ != "lm_head_loss"; }
  void forward(model::OpEnv&) const override {}
  void backward(model::OpEnv&) const override {}

 private:
  std::string kind_;
};

TensorId add(StepGraph& g, const std::string& name, TensorKind kind = TensorKind::activation) {
  model::TensorInfo info;
  info.name = name;
  info.shape = {4};
  info.kind = kind;
  return g.add_tensor(std::move(info));
}

TEST(PlanValidate, RecomputeThroughAnOpThatCannotRerunIsInfeasible) {
  // x -> [loss: lm_head_loss] -> l (saved only when `keep_l`) -> [user] -> b (saved)
  for (bool keep_l : {false, true}) {
    StepGraph g;
    const TensorId x = add(g, "x", TensorKind::input);
    const TensorId l = add(g, "l");
    const TensorId b = add(g, "b");
    g.add_op(std::make_unique<TestOp>("loss", "lm_head_loss", std::vector<TensorId>{x},
                                      std::vector<TensorId>{l}, std::vector<TensorId>{}));
    g.add_op(std::make_unique<TestOp>("user", "other", std::vector<TensorId>{l},
                                      std::vector<TensorId>{b},
                                      keep_l ? std::vector<TensorId>{l} : std::vector<TensorId>{}));
    g.add_op(std::make_unique<TestOp>("end", "other", std::vector<TensorId>{b},
                                      std::vector<TensorId>{}, std::vector<TensorId>{b}));
    Plan plan = keep_all_plan(g);
    EXPECT_NO_THROW(validate(g, plan));
    plan.decisions[static_cast<std::size_t>(b)].policy = Policy::recompute;
    if (keep_l) {
      EXPECT_NO_THROW(validate(g, plan));  // l is kept: b re-runs from it
      plan.decisions[static_cast<std::size_t>(l)].policy = Policy::recompute;
      expect_error<InvalidArgument>([&] { validate(g, plan); }, {"'l'", "cannot be recomputed"});
    } else {
      expect_error<PlanInfeasible>(
          [&] { validate(g, plan); },
          {"recomputing 'b'", "'l'", "not saved", "cannot be recomputed", "keep or compress 'b'"});
    }
  }
}

TEST(PlanValidate, RecomputeCycleIsInfeasible) {
  // c -> [p] -> d, d -> [q] -> c: both saved; recomputing both needs each from the other.
  StepGraph g;
  const TensorId c = add(g, "c");
  const TensorId d = add(g, "d");
  g.add_op(std::make_unique<TestOp>("p", "other", std::vector<TensorId>{c},
                                    std::vector<TensorId>{d}, std::vector<TensorId>{c, d}));
  g.add_op(std::make_unique<TestOp>("q", "other", std::vector<TensorId>{d},
                                    std::vector<TensorId>{c}, std::vector<TensorId>{}));
  Plan plan = keep_all_plan(g);
  plan.decisions[static_cast<std::size_t>(d)].policy = Policy::recompute;
  EXPECT_NO_THROW(validate(g, plan));  // d from the kept c
  plan.decisions[static_cast<std::size_t>(c)].policy = Policy::recompute;
  expect_error<PlanInfeasible>([&] { validate(g, plan); }, {"cycle", "keep or compress"});
}

TEST(PlanValidate, CompressNeedsF32) {
  StepGraph g;
  model::TensorInfo info;
  info.name = "ids";
  info.shape = {4};
  info.dtype = DType::int32;
  const TensorId ids = g.add_tensor(std::move(info));
  g.add_op(std::make_unique<TestOp>("make", "other", std::vector<TensorId>{},
                                    std::vector<TensorId>{ids}, std::vector<TensorId>{ids}));
  Plan plan = keep_all_plan(g);
  plan.decisions[0] = Decision{Policy::compress, "bf16"};
  expect_error<InvalidArgument>([&] { validate(g, plan); }, {"'ids'", "int32", "f32"});
}

}  // namespace
}  // namespace adacc::runtime
