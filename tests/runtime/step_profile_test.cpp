// The step profiler: it measures the one-block model (every op timed, every saved
// recomputable f32 activation with exactly the codecs meant for its role, at their exact
// encoded size), and it runs within its byte budget — a budget equal to its own peak is
// enough, one allocation unit less is refused with PlanInfeasible naming the bytes.
#include "adacc/runtime/step_profile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/runtime/plan.h"

namespace adacc::runtime {
namespace {

ProfileRequest small_request(ops::AttentionKind attention) {
  ProfileRequest r;
  r.config = model::parse_config("L=2,C=32,H=2,V=64,T=16");
  r.config.attention = attention;
  r.batch = 2;
  r.seq = 16;
  r.threads = 1;
  r.warmup = 1;
  r.steps = 3;
  r.codec_repeats = 2;
  return r;
}

std::string attention_name(const ::testing::TestParamInfo<ops::AttentionKind>& info) {
  return std::string(ops::attention_kind_name(info.param));
}

class StepProfileTest : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(StepProfileTest, MeasuresEveryOpAndEveryCodecOfEverySavedTensorOfOneBlock) {
  const ProfileRequest r = small_request(GetParam());
  const StepProfile p = profile_step(r);
  EXPECT_EQ(p.config.n_layer, 1);
  EXPECT_EQ(p.batch, 2);
  EXPECT_EQ(p.seq, 16);
  EXPECT_EQ(p.threads, 1);
  EXPECT_FALSE(p.real_data);
  EXPECT_GT(p.seconds, 0);
  EXPECT_GT(p.peak_bytes, 0u);

  // Ops: the one-block graph's, in order, each with a positive forward time.
  const model::StepGraph g = model::build_gpt2_graph(one_block_config(r.config), 2, 16);
  ASSERT_EQ(p.ops.size(), g.ops().size());
  for (std::size_t i = 0; i < g.ops().size(); ++i) {
    EXPECT_EQ(p.ops[i].name, g.op(static_cast<int>(i)).name());
    EXPECT_EQ(p.ops[i].kind, g.op(static_cast<int>(i)).kind());
    EXPECT_GT(p.ops[i].forward_seconds, 0) << p.ops[i].name;
    EXPECT_GE(p.ops[i].backward_seconds, 0) << p.ops[i].name;
    EXPECT_TRUE(std::isfinite(p.ops[i].backward_seconds)) << p.ops[i].name;
  }
  // Tensors: exactly the saved recomputable f32 activations, brute force over the graph.
  const std::vector<bool> saved = saved_tensors(g);
  std::set<std::string> want, got;
  for (std::size_t i = 0; i < g.tensors().size(); ++i) {
    const model::TensorInfo& t = g.tensors()[i];
    if (t.kind == model::TensorKind::activation && t.dtype == DType::f32 && saved[i] &&
        is_recomputable(g, static_cast<model::TensorId>(i))) {
      want.insert(t.name);
    }
  }
  for (const ProfiledTensor& t : p.tensors) got.insert(t.name);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(want.count("h0.fc.out"));
  EXPECT_TRUE(want.count(GetParam() == ops::AttentionKind::naive ? "h0.attn.probs" : "h0.qkv.out"));
  // Each tensor: every codec that applies to its role, at its exact encoded size.
  for (const ProfiledTensor& t : p.tensors) {
    const model::TensorInfo& info = g.tensor(g.find(t.name));
    EXPECT_EQ(t.bytes, info.nbytes());
    EXPECT_EQ(t.role, info.role);
    std::vector<std::string> codecs;
    for (const std::string& name : compress::codec_names()) {
      if (compress::codec_by_name(name).applies_to(info.role)) codecs.push_back(name);
    }
    ASSERT_EQ(t.codecs.size(), codecs.size()) << t.name;
    for (std::size_t c = 0; c < codecs.size(); ++c) {
      const ProfiledCodec& pc = t.codecs[c];
      EXPECT_EQ(pc.codec, codecs[c]);
      EXPECT_EQ(pc.encoded_bytes, compress::codec_by_name(codecs[c]).encoded_bytes(info.shape));
      EXPECT_GT(pc.encode_seconds, 0) << t.name << " " << pc.codec;
      EXPECT_GT(pc.decode_seconds, 0) << t.name << " " << pc.codec;
      EXPECT_GE(pc.grad_error, 0);
      EXPECT_GE(pc.tensor_error, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, StepProfileTest,
                         ::testing::Values(ops::AttentionKind::flash, ops::AttentionKind::naive),
                         attention_name);

TEST(StepProfileBudget, ItsOwnPeakIsEnoughAndOneUnitLessIsRefused) {
  ProfileRequest r = small_request(ops::AttentionKind::naive);
  r.steps = 1;
  r.codec_repeats = 1;
  const StepProfile free_run = profile_step(r);
  EXPECT_EQ(free_run.budget, Allocator::kUnlimited);
  EXPECT_GE(free_run.peak_bytes, profile_bytes_lower_bound(r));

  r.budget = free_run.peak_bytes;  // exactly enough
  const StepProfile fits = profile_step(r);
  EXPECT_LE(fits.peak_bytes, r.budget);
  EXPECT_EQ(fits.peak_bytes, free_run.peak_bytes);
  EXPECT_EQ(fits.budget, r.budget);

  EXPECT_EQ(fits.error_batch, r.batch);

  // One unit less: the codec errors are measured on fewer sequences, within the budget,
  // and every codec is still measured.
  r.budget = free_run.peak_bytes - Allocator::kAlignment;
  const StepProfile smaller = profile_step(r);
  EXPECT_LT(smaller.error_batch, r.batch);
  EXPECT_LE(smaller.peak_bytes, r.budget);
  ASSERT_EQ(smaller.tensors.size(), free_run.tensors.size());
  for (std::size_t i = 0; i < smaller.tensors.size(); ++i) {
    ASSERT_EQ(smaller.tensors[i].codecs.size(), free_run.tensors[i].codecs.size());
    for (std::size_t k = 0; k < smaller.tensors[i].codecs.size(); ++k) {
      const ProfiledCodec& a = smaller.tensors[i].codecs[k];
      EXPECT_EQ(a.encoded_bytes, free_run.tensors[i].codecs[k].encoded_bytes);
      EXPECT_TRUE(std::isfinite(a.grad_error)) << smaller.tensors[i].name << " " << a.codec;
    }
  }
  // Between the lower bound and the unlimited run's peak: a profile within the budget, or
  // PlanInfeasible naming the bytes — never an allocation past the budget.
  const std::size_t lower = profile_bytes_lower_bound(r);
  int refused = 0;
  for (int k = 0; k <= 4; ++k) {
    r.budget = lower + (free_run.peak_bytes - lower) * static_cast<std::size_t>(k) / 5;
    try {
      EXPECT_LE(profile_step(r).peak_bytes, r.budget) << k;
    } catch (const PlanInfeasible& e) {
      ++refused;
      const std::string m = e.what();
      EXPECT_NE(m.find(std::to_string(lower) + " bytes"), std::string::npos) << m;
      EXPECT_NE(m.find("raise --budget"), std::string::npos) << m;
    }
  }
  EXPECT_GT(refused, 0);  // at the lower bound itself the codec errors cannot be measured
}

TEST(StepProfileBudget, BelowTheKeepEverythingStepIsRefusedBeforeMeasuring) {
  ProfileRequest r = small_request(ops::AttentionKind::flash);
  r.budget = profile_bytes_lower_bound(r) - 1;
  EXPECT_THROW(profile_step(r), PlanInfeasible);
  r.budget = 1;
  EXPECT_THROW(profile_step(r), PlanInfeasible);
}

TEST(StepProfileRequest, DataTokensAreChecked) {
  ProfileRequest r = small_request(ops::AttentionKind::flash);
  r.data.assign(2 * 16, 1);  // one token short
  EXPECT_THROW(profile_step(r), InvalidArgument);
  r.data.assign(2 * 16 + 1, 64);  // V = 64
  EXPECT_THROW(profile_step(r), InvalidArgument);
  r.codecs = {"no-such-codec"};
  r.data.clear();
  EXPECT_THROW(profile_step(r), InvalidArgument);
}

TEST(StepProfileRequest, RealDataIsUsedAndRecorded) {
  ProfileRequest r = small_request(ops::AttentionKind::flash);
  r.steps = 1;
  r.codec_repeats = 1;
  r.codecs = {"bf16"};
  const StepProfile random = profile_step(r);
  for (int i = 0; i <= 2 * 16; ++i) r.data.push_back(i % 7);
  const StepProfile data = profile_step(r);
  EXPECT_TRUE(data.real_data);
  // Different tokens, different activations: some gradient error differs.
  bool differs = false;
  for (std::size_t i = 0; i < data.tensors.size(); ++i) {
    for (std::size_t c = 0; c < data.tensors[i].codecs.size(); ++c) {
      differs |= data.tensors[i].codecs[c].grad_error != random.tensors[i].codecs[c].grad_error;
    }
  }
  EXPECT_TRUE(differs);
}

TEST(BlockZeroName, MapsABlocksNamesOntoBlockZero) {
  EXPECT_EQ(block_zero_name("h7.fc.out", 7), "h0.fc.out");
  EXPECT_EQ(block_zero_name("h12.attn", 12), "h0.attn");
  EXPECT_EQ(block_zero_name("h0.ln1", 0), "h0.ln1");
  EXPECT_EQ(block_zero_name("lnf.out", -1), "lnf.out");
  EXPECT_THROW(block_zero_name("h1.fc", 11), InvalidArgument);
  EXPECT_THROW(block_zero_name("h11.fc", 1), InvalidArgument);
}

}  // namespace
}  // namespace adacc::runtime
