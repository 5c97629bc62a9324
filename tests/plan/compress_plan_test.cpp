// The compress baselines (ActNN / GACT style, no recompute) on small GPT-2s with both
// attention kinds: a uniform compress-<codec> compresses exactly the saved activations
// listed here by name whose role the codec applies to (all saved ones but the loss
// gradient, which the fused loss makes and which cannot be recomputed; the LayerNorm
// statistics and log-sum-exps take no codec), and "compress" uses its codec per role;
// plans validate; name dispatch, unknown codecs and codecs with nothing to compress; and a
// real training step under compress-bf16 and under "compress" (below).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "support/codec_gradients.h"
#include "support/random_batch.h"
#include "support/small_graph.h"

namespace adacc::plan {
namespace {

using model::TensorKind;
using runtime::Plan;
using runtime::Policy;

model::ModelConfig config(const std::string& spec, ops::AttentionKind kind) {
  model::ModelConfig c = model::parse_config(spec);
  c.attention = kind;
  return c;
}

class CompressPlanTest : public test::SmallGraph {
 protected:
  // Every saved activation that a compress plan may compress, with its role: all saved
  // but loss.grad.
  std::map<std::string, model::TensorRole> compressible() const {
    using R = model::TensorRole;
    std::map<std::string, R> out = {
        {"embed.out", R::residual}, {"lnf.mean", R::norm_stats}, {"lnf.rstd", R::norm_stats}};
    const bool naive = GetParam() == ops::AttentionKind::naive;
    const std::pair<const char*, R> per_layer[] = {
        {"ln1.out", R::norm_out},
        {"ln1.mean", R::norm_stats},
        {"ln1.rstd", R::norm_stats},
        {"qkv.out", R::qkv},
        {"attn.out", R::attn_out},
        {"res1.out", R::residual},
        {"ln2.out", R::norm_out},
        {"ln2.mean", R::norm_stats},
        {"ln2.rstd", R::norm_stats},
        {"fc.out", R::gelu_in},
        {"gelu.out", R::gelu_out},
        {"res2.out", R::residual},
        {naive ? "attn.probs" : "attn.lse", naive ? R::attn_probs : R::attn_lse}};
    for (int l = 0; l < kLayers; ++l) {
      for (const auto& [s, role] : per_layer) {
        std::string name = "h";  // built piecewise: GCC 12 warns (-Wrestrict) on "h" + ...
        name += std::to_string(l);
        name += ".";
        name += s;
        out.emplace(std::move(name), role);
      }
    }
    return out;
  }

  // Checks that `plan` compresses exactly the tensors `want` names, each with its codec.
  void expect_compresses(const Plan& plan, const std::map<std::string, std::string>& want) const {
    ASSERT_EQ(plan.decisions.size(), graph_.tensors().size());
    const auto saved = compressible();
    std::map<std::string, std::string> got;
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      const runtime::Decision& d = plan.decisions[i];
      if (d.policy == Policy::compress) {
        got[t.name] = d.codec;
      } else if (saved.count(t.name) || t.name == "loss.grad" || t.kind != TensorKind::activation) {
        EXPECT_EQ(d.policy, Policy::keep) << t.name;
      } else {
        // Activations that no backward op saves: never retained (keep_all_plan's default).
        EXPECT_EQ(d.policy, Policy::recompute) << t.name;
      }
      if (d.policy != Policy::compress) {
        EXPECT_TRUE(d.codec.empty()) << t.name;
      }
    }
    EXPECT_EQ(got, want) << plan.planner;
    EXPECT_NO_THROW(runtime::validate(graph_, plan)) << plan.planner;
  }

  // What the uniform policy of `codec` compresses: the tensors of the roles it applies to.
  std::map<std::string, std::string> uniform(const std::string& codec) const {
    const compress::Codec& c = compress::codec_by_name(codec);
    std::map<std::string, std::string> want;
    for (const auto& [name, role] : compressible()) {
      if (c.applies_to(role)) want[name] = codec;
    }
    return want;
  }
};

TEST_P(CompressPlanTest, UniformPolicyCompressesEveryTensorOfItsCodecsRoles) {
  int planned = 0;
  for (const std::string& codec : compress::codec_names()) {
    const auto want = uniform(codec);
    if (want.empty()) {
      // softmax-u8 under flash attention: nothing to compress is an error, not a no-op.
      EXPECT_EQ(codec, "softmax-u8");
      EXPECT_EQ(GetParam(), ops::AttentionKind::flash);
      EXPECT_THROW(compress_plan(graph_, codec), InvalidArgument);
      continue;
    }
    const Plan plan = compress_plan(graph_, codec);
    EXPECT_EQ(plan.planner, "compress-" + codec);
    expect_compresses(plan, want);
    ++planned;
  }
  EXPECT_GE(planned, 12);
  // The generic codecs take the dense roles, the special ones only theirs.
  EXPECT_EQ(uniform("int4-g64").size(),
            (GetParam() == ops::AttentionKind::naive ? 9u : 8u) * kLayers + 1);
  EXPECT_EQ(uniform("gelu-deriv-u8").size(), static_cast<std::size_t>(kLayers));
}

TEST_P(CompressPlanTest, DefaultCompressUsesOneCodecPerRole) {
  const Plan def = baseline_plan(graph_, "compress");
  EXPECT_EQ(def.planner, "compress");
  std::map<std::string, std::string> want;
  for (const auto& [name, role] : compressible()) {
    for (const RoleCodec& rc : default_role_codecs()) {
      if (rc.role == role) want[name] = rc.codec;
    }
  }
  EXPECT_EQ(want.at("h0.fc.out"), "gelu-deriv-u8");
  EXPECT_EQ(want.at("h1.ln1.out"), "int4-g64");
  expect_compresses(def, want);
  const Plan bf16 = baseline_plan(graph_, "compress-bf16");
  EXPECT_EQ(bf16.planner, "compress-bf16");
  expect_compresses(bf16, uniform("bf16"));
  expect_compresses(baseline_plan(graph_, "compress-int4-g64"), uniform("int4-g64"));
  // A codec on a role it is not meant for is refused.
  EXPECT_THROW(compress_plan(graph_, {{model::TensorRole::qkv, "gelu-deriv-u8"}}, "x"),
               InvalidArgument);
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

INSTANTIATE_TEST_SUITE_P(Attention, CompressPlanTest, test::kAttentionForms, test::attention_name);

// A real training step under compress-bf16 and under "compress" (int4-g64, int8-g64,
// softmax-u8 and gelu-deriv-u8 by role): the forward loss is keep-all's exactly (the
// forward never reads a compressed tensor back); the parameter gradients are within the
// bound of tests/support/codec_gradients.h of the codecs' round-trip errors on these
// activations; and the memory model's predicted peak (every category and the total) is the
// allocator's measured one.
class CompressStepTest : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(CompressStepTest, ForwardLossIsUntouchedGradientsWithinCodecErrorPeakPredicted) {
  const int B = 2, T = 24;
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::Gpt2 gpt(config("L=2,C=32,H=4,V=80,T=32", GetParam()), alloc);
  Rng rng(9);
  gpt.init_weights(rng);
  const auto [tokens, targets] = test::random_batch(alloc, rng, B, T, 80);
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

  const float loss_keep = step(none_plan(graph));
  const test::Vec grads_keep = test::to_vec(gpt.grads().flat);
  for (const Plan& plan : {compress_plan(graph, "bf16"), baseline_plan(graph, "compress")}) {
    const double eps =
        test::largest_round_trip_error(graph, gpt.params(), ctx, tokens, targets, plan);
    EXPECT_EQ(step(plan), loss_keep) << plan.planner << ": forward loss is untouched by the plan";
    test::expect_gradients_within_codec_error(test::to_vec(gpt.grads().flat), grads_keep, eps,
                                              plan.planner);
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, CompressStepTest, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
