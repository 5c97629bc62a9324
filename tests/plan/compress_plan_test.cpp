// The compress baseline (ActNN / GACT style, no recompute) on small GPT-2s with both
// attention kinds: it compresses exactly the saved activations listed here by name (all
// but the loss gradient, which the fused loss makes and which cannot be recomputed), with
// the named codec; it validates; name dispatch and unknown codecs; a bf16-compressed
// training step stays within 1e-3 of keep-all's loss; and the memory model predicts the
// allocator's measured peak of compressed steps exactly.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"

namespace adacc::plan {
namespace {

using model::TensorKind;
using runtime::Plan;
using runtime::Policy;
using Names = std::set<std::string>;

model::ModelConfig config(const std::string& spec, ops::AttentionKind kind) {
  model::ModelConfig c = model::parse_config(spec);
  c.attention = kind;
  return c;
}

class CompressPlanTest : public ::testing::TestWithParam<ops::AttentionKind> {
 protected:
  static constexpr int kLayers = 3;
  CompressPlanTest()
      : model_(config("L=3,C=16,H=2,V=50,T=16", GetParam()), alloc_),
        graph_(model_.build_graph(2, 8)) {}

  // The saved activations that compress_plan compresses: everything saved but loss.grad.
  Names compressed() const {
    Names out = {"embed.out", "lnf.mean", "lnf.rstd"};
    const std::string stats = GetParam() == ops::AttentionKind::naive ? "attn.probs" : "attn.lse";
    for (int l = 0; l < kLayers; ++l) {
      for (const std::string& s : std::initializer_list<std::string>{
               "ln1.out", "ln1.mean", "ln1.rstd", "qkv.out", "attn.out", stats, "res1.out",
               "ln2.out", "ln2.mean", "ln2.rstd", "fc.out", "gelu.out", "res2.out"}) {
        std::string name = "h";  // built piecewise: GCC 12 warns (-Wrestrict) on "h" + ...
        name += std::to_string(l);
        name += ".";
        name += s;
        out.insert(std::move(name));
      }
    }
    return out;
  }

  void expect_compresses(const Plan& plan, const std::string& codec) const {
    ASSERT_EQ(plan.decisions.size(), graph_.tensors().size());
    const Names want = compressed();
    Names got;
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      const runtime::Decision& d = plan.decisions[i];
      if (want.count(t.name)) {
        EXPECT_EQ(d.policy, Policy::compress) << t.name;
        EXPECT_EQ(d.codec, codec) << t.name;
        got.insert(t.name);
      } else if (t.name == "loss.grad" || t.kind != TensorKind::activation) {
        EXPECT_EQ(d.policy, Policy::keep) << t.name;
      } else {
        // Activations that no backward op saves: never retained (keep_all_plan's default).
        EXPECT_EQ(d.policy, Policy::recompute) << t.name;
      }
      if (d.policy != Policy::compress) {
        EXPECT_TRUE(d.codec.empty()) << t.name;
      }
    }
    EXPECT_EQ(got, want);
    EXPECT_NO_THROW(runtime::validate(graph_, plan)) << plan.planner;
  }

  Allocator alloc_;
  model::Gpt2 model_;
  model::StepGraph graph_;
};

TEST_P(CompressPlanTest, CompressesEverySavedRecomputableActivation) {
  for (const std::string& codec : compress::codec_names()) {
    const Plan plan = compress_plan(graph_, codec);
    EXPECT_EQ(plan.planner, "compress-" + codec);
    expect_compresses(plan, codec);
  }
}

TEST_P(CompressPlanTest, DispatchByName) {
  const Plan def = baseline_plan(graph_, "compress");
  EXPECT_EQ(def.planner, "compress-int8-g64");
  expect_compresses(def, "int8-g64");
  const Plan bf16 = baseline_plan(graph_, "compress-bf16");
  EXPECT_EQ(bf16.planner, "compress-bf16");
  expect_compresses(bf16, "bf16");
  expect_compresses(baseline_plan(graph_, "compress-int4-g64"), "int4-g64");
}

TEST_P(CompressPlanTest, UnknownCodecsListTheKnownOnes) {
  for (const char* name : {"int3", "", "BF16"}) {
    for (const std::string& via : {std::string("direct"), std::string("baseline")}) {
      try {
        if (via == "direct") {
          compress_plan(graph_, name);
        } else {
          baseline_plan(graph_, "compress-" + std::string(name));
        }
        ADD_FAILURE() << via << " '" << name << "'";
      } catch (const InvalidArgument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("'" + std::string(name) + "'"), std::string::npos) << msg;
        for (const char* known : {"bf16", "int8-channel", "int8-g64", "int4-g64", "int2-g64"}) {
          EXPECT_NE(msg.find(known), std::string::npos) << msg;
        }
      }
    }
  }
  EXPECT_THROW(baseline_plan(graph_, "compressbf16"), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Attention, CompressPlanTest,
                         ::testing::Values(ops::AttentionKind::naive, ops::AttentionKind::flash),
                         [](const auto& info) {
                           return info.param == ops::AttentionKind::naive ? "naive" : "flash";
                         });

// A real training step: the loss under compress-bf16 is within 1e-3 (relative) of
// keep-all's, and the memory model's predicted peak (every category and the total) is the
// allocator's measured one, for bf16 and int8-g64.
class CompressStepTest : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(CompressStepTest, LossIsCloseAndPredictedPeakIsMeasured) {
  const int B = 2, T = 24;
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::Gpt2 gpt(config("L=2,C=32,H=4,V=80,T=32", GetParam()), alloc);
  Rng rng(9);
  gpt.init_weights(rng);
  std::vector<int> tok, tgt;
  for (int i = 0; i < B * T; ++i) {
    tok.push_back(static_cast<int>(rng.next_u64() % 80));
    tgt.push_back(static_cast<int>(rng.next_u64() % 80));
  }
  Tensor tokens = test::to_int_tensor(alloc, tok, {B, T});
  Tensor targets = test::to_int_tensor(alloc, tgt, {B, T}, "targets");
  const model::StepGraph graph = gpt.build_graph(B, T);

  // Runs one step under `plan`, checks the memory prediction, returns the loss.
  auto step = [&](const Plan& plan) {
    gpt.grads().flat.zero();
    const MemStats before = alloc.stats();
    alloc.reset_peak();
    runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
    const float loss = exec.forward_backward(tokens, targets);
    const MemStats after = alloc.stats();
    const runtime::MemoryPrediction p =
        runtime::predict_step_memory(graph, plan, ctx.threads(), before.current);
    for (int c = 0; c < kMemCategories; ++c) {
      EXPECT_EQ(p.peak[c], after.peak[c]) << plan.planner << " category " << c;
    }
    EXPECT_EQ(p.total_peak, after.total_peak) << plan.planner << ": predicted at " << p.where;
    return loss;
  };

  const float loss_ref = step(none_plan(graph));
  const test::Vec grads_ref = test::to_vec(gpt.grads().flat);
  const float loss_bf16 = step(compress_plan(graph, "bf16"));
  EXPECT_NEAR(loss_bf16, loss_ref, 1e-3 * loss_ref);
  EXPECT_LT(test::rel_error(test::to_vec(gpt.grads().flat), grads_ref), 2e-2);
  // The forward does not read compressed tensors back: the loss is keep-all's exactly.
  EXPECT_EQ(loss_bf16, loss_ref);
  const float loss_int8 = step(baseline_plan(graph, "compress"));
  EXPECT_NEAR(loss_int8, loss_ref, 1e-3 * loss_ref);
  EXPECT_LT(test::rel_error(test::to_vec(gpt.grads().flat), grads_ref), 0.1);
}

INSTANTIATE_TEST_SUITE_P(Attention, CompressStepTest,
                         ::testing::Values(ops::AttentionKind::naive, ops::AttentionKind::flash),
                         [](const auto& info) {
                           return info.param == ops::AttentionKind::naive ? "naive" : "flash";
                         });

}  // namespace
}  // namespace adacc::plan
