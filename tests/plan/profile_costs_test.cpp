// costs_for_graph: a real one-block profile priced onto deeper graphs. Every op of the
// full graph gets its block-0 namesake's times (the same in every block), every saved
// recomputable f32 activation a CodecCost for each codec meant for its role at the
// codec's exact size; a missing measurement or a profile of another shape is refused.
#include "adacc/plan/profile_costs.h"

#include <gtest/gtest.h>

#include <string>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/runtime/plan.h"

namespace adacc::plan {
namespace {

model::ModelConfig config(int layers, ops::AttentionKind attention) {
  model::ModelConfig c = model::parse_config("L=2,C=32,H=2,V=64,T=16");
  c.n_layer = layers;
  c.attention = attention;
  return c;
}

runtime::StepProfile profile(ops::AttentionKind attention) {
  runtime::ProfileRequest r;
  r.config = config(2, attention);
  r.batch = 2;
  r.seq = 16;
  r.threads = 1;
  r.steps = 2;
  r.codec_repeats = 1;
  return runtime::profile_step(r);
}

std::string attention_name(const ::testing::TestParamInfo<ops::AttentionKind>& info) {
  return std::string(ops::attention_kind_name(info.param));
}

class ProfileCostsTest : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(ProfileCostsTest, EveryOpAndEveryCodecOfTheFullGraphIsPriced) {
  const runtime::StepProfile p = profile(GetParam());
  for (int layers : {2, 5}) {
    const model::StepGraph g = model::build_gpt2_graph(config(layers, GetParam()), 2, 16);
    const StepCosts costs = costs_for_graph(p, g);
    ASSERT_EQ(costs.forward_seconds.size(), g.ops().size());
    ASSERT_EQ(costs.backward_seconds.size(), g.ops().size());
    ASSERT_EQ(costs.codecs.size(), g.tensors().size());
    for (std::size_t i = 0; i < g.ops().size(); ++i) {
      const model::OpNode& op = g.op(static_cast<int>(i));
      std::string name = op.name();
      if (op.layer() >= 0) name = "h0" + name.substr(name.find('.'));  // h3.fc -> h0.fc
      const runtime::ProfiledOp* m = p.find_op(name);
      ASSERT_NE(m, nullptr) << op.name();
      EXPECT_EQ(costs.forward_seconds[i], m->forward_seconds) << op.name();
      EXPECT_EQ(costs.backward_seconds[i], m->backward_seconds) << op.name();
      EXPECT_GT(costs.forward_seconds[i], 0) << op.name();
    }
    // h0..h{L-1}: the same times, block for block.
    const std::size_t per_block = (g.ops().size() - 3) / static_cast<std::size_t>(layers);
    for (int l = 1; l < layers; ++l) {
      for (std::size_t k = 0; k < per_block; ++k) {
        const std::size_t i = 1 + static_cast<std::size_t>(l) * per_block + k;
        EXPECT_EQ(costs.forward_seconds[i], costs.forward_seconds[1 + k]) << g.op(int(i)).name();
        EXPECT_EQ(costs.backward_seconds[i], costs.backward_seconds[1 + k]);
      }
    }
    // Every (saved recomputable f32 activation, codec for its role), brute force.
    const std::vector<bool> saved = runtime::saved_tensors(g);
    std::size_t priced = 0;
    for (std::size_t i = 0; i < g.tensors().size(); ++i) {
      const model::TensorInfo& t = g.tensors()[i];
      const bool candidate = t.kind == model::TensorKind::activation && t.dtype == DType::f32 &&
                             saved[i] && runtime::is_recomputable(g, static_cast<int>(i));
      std::vector<std::string> want;
      if (candidate) {
        for (const std::string& c : compress::codec_names()) {
          if (compress::codec_by_name(c).applies_to(t.role)) want.push_back(c);
        }
      }
      ASSERT_EQ(costs.codecs[i].size(), want.size()) << t.name;
      for (std::size_t c = 0; c < want.size(); ++c) {
        const CodecCost& cc = costs.codecs[i][c];
        EXPECT_EQ(cc.codec, want[c]) << t.name;
        EXPECT_EQ(cc.encoded_bytes, compress::codec_by_name(want[c]).encoded_bytes(t.shape));
        EXPECT_GT(cc.encode_seconds, 0);
        EXPECT_GT(cc.decode_seconds, 0);
        ++priced;
      }
    }
    EXPECT_GT(priced, static_cast<std::size_t>(layers) * 8);
    EXPECT_NEAR(
        costs.keep_all_seconds(),
        [&] {
          double s = 0;
          for (const auto& op : p.ops) {
            const double t = op.forward_seconds + op.backward_seconds;
            s += op.name.rfind("h0.", 0) == 0 ? layers * t : t;
          }
          return s;
        }(),
        1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, ProfileCostsTest,
                         ::testing::Values(ops::AttentionKind::flash, ops::AttentionKind::naive),
                         attention_name);

// A hand-made profile of the one-block graph with distinct times.
runtime::StepProfile synthetic(const model::StepGraph& one_block) {
  runtime::StepProfile p;
  p.config = config(1, ops::AttentionKind::flash);
  p.batch = 2;
  p.seq = 16;
  double t = 1;
  for (const auto& op : one_block.ops()) {
    p.ops.push_back({op->name(), std::string(op->kind()), t, 2 * t});
    t += 1;
  }
  const std::vector<bool> saved = runtime::saved_tensors(one_block);
  for (std::size_t i = 0; i < one_block.tensors().size(); ++i) {
    if (!runtime::is_codec_candidate(one_block, saved, static_cast<int>(i))) continue;
    const model::TensorInfo& info = one_block.tensors()[i];
    p.tensors.push_back({info.name, info.role, info.nbytes(), {{"bf16", 7, t, t, 0.5, 0.25, -1}}});
    t += 1;
  }
  return p;
}

TEST(ProfileCosts, AMissingOpOrTensorIsNamed) {
  const model::StepGraph one = model::build_gpt2_graph(config(1, ops::AttentionKind::flash), 2, 16);
  const model::StepGraph full =
      model::build_gpt2_graph(config(3, ops::AttentionKind::flash), 2, 16);
  runtime::StepProfile p = synthetic(one);
  const StepCosts costs = costs_for_graph(p, full);
  EXPECT_EQ(costs.forward_seconds[full.ops().size() - 1], p.ops.back().forward_seconds);
  const auto fc = static_cast<std::size_t>(full.find("h2.fc.out"));
  ASSERT_EQ(costs.codecs[fc].size(), 1u);
  EXPECT_EQ(costs.codecs[fc][0].encoded_bytes, 7u);
  EXPECT_EQ(costs.codecs[fc][0].grad_error, 0.25);
  EXPECT_EQ(costs.codecs[fc][0].tensor_error, 0.5);
  EXPECT_EQ(costs.codecs[fc][0].encode_seconds,
            p.find_tensor("h0.fc.out")->codecs[0].encode_seconds);

  runtime::StepProfile no_op = p;
  std::erase_if(no_op.ops, [](const runtime::ProfiledOp& op) { return op.name == "h0.gelu"; });
  try {
    costs_for_graph(no_op, full);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'h0.gelu'"), std::string::npos) << e.what();
  }
  runtime::StepProfile no_tensor = p;
  std::erase_if(no_tensor.tensors,
                [](const runtime::ProfiledTensor& t) { return t.name == "h0.ln2.out"; });
  try {
    costs_for_graph(no_tensor, full);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'h0.ln2.out'"), std::string::npos) << e.what();
  }
}

TEST(ProfileCosts, AProfileOfAnotherBatchOrAttentionIsRefused) {
  const model::StepGraph one = model::build_gpt2_graph(config(1, ops::AttentionKind::flash), 2, 16);
  const runtime::StepProfile p = synthetic(one);
  EXPECT_THROW(
      costs_for_graph(p, model::build_gpt2_graph(config(2, ops::AttentionKind::flash), 4, 16)),
      InvalidArgument);
  EXPECT_THROW(
      costs_for_graph(p, model::build_gpt2_graph(config(2, ops::AttentionKind::naive), 2, 16)),
      InvalidArgument);
}

}  // namespace
}  // namespace adacc::plan
