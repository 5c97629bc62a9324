// The step analysis against brute force: each fact recomputed the slow way (one query per
// tensor, a plan per (tensor, codec) put through runtime::validate).
#include "adacc/runtime/step_analysis.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/graph_ops.h"
#include "adacc/ops/workspace.h"
#include "support/small_graph.h"

namespace adacc::runtime {
namespace {

using model::TensorId;
using model::TensorKind;

class StepAnalysisTest : public test::SmallGraph {};

TEST_P(StepAnalysisTest, LifetimesSavedReadersRecomputableAndBytes) {
  const StepAnalysis a = analyze_step(graph_);
  const auto life = model::analyze_lifetimes(graph_);
  const std::size_t n = graph_.tensors().size();
  ASSERT_EQ(a.lifetimes.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TensorId>(i);
    const model::TensorInfo& t = graph_.tensor(id);
    EXPECT_EQ(a.lifetimes[i].last_forward_use, life[i].last_forward_use) << t.name;
    EXPECT_EQ(a.lifetimes[i].first_backward_use, life[i].first_backward_use) << t.name;
    EXPECT_EQ(a.lifetimes[i].last_backward_use, life[i].last_backward_use) << t.name;
    EXPECT_EQ(a.is_saved(id), is_saved(graph_, id)) << t.name;
    EXPECT_EQ(a.is_saved(id), life[i].first_backward_use >= 0) << t.name;
    EXPECT_EQ(a.is_recomputable(id), is_recomputable(graph_, id)) << t.name;
    EXPECT_EQ(a.bytes[i], ops::accounted_tensor_bytes(t.shape, t.dtype)) << t.name;
    std::vector<int> readers;
    for (int o = 0; o < static_cast<int>(graph_.ops().size()); ++o) {
      for (TensorId s : graph_.op(o).saved()) {
        if (s == id) readers.push_back(o);
      }
    }
    EXPECT_EQ(a.readers[i], readers) << t.name;
    int first_value = -1;
    for (int o : readers) {
      if (graph_.op(o).kind() != "gelu") {
        first_value = o;
        break;
      }
    }
    EXPECT_EQ(a.first_value_reader(graph_, id), first_value) << t.name;
  }
  EXPECT_EQ(saved_tensors(graph_), a.saved);
}

// A codec is admissible for a tensor exactly when validate accepts the keep-everything plan
// with that one tensor compressed by it; encoded bytes as the allocator accounts them.
TEST_P(StepAnalysisTest, AdmissibleCodecsAreWhatValidateAccepts) {
  const StepAnalysis a = analyze_step(graph_);
  int admitted = 0, gelu_derivative = 0;
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    const model::TensorInfo& t = graph_.tensor(id);
    std::vector<const compress::Codec*> want;
    for (const std::string& name : compress::codec_names()) {
      const compress::Codec& codec = compress::codec_by_name(name);
      Plan plan = keep_all_plan(graph_);
      plan.decisions[i] = {Policy::compress, name};
      bool valid = true;
      try {
        validate(graph_, plan);
      } catch (const InvalidArgument&) {
        valid = false;
      }
      // Compressing a tensor no backward op reads is valid but pointless: not a choice.
      if (valid && a.is_saved(id)) want.push_back(&codec);
      EXPECT_EQ(a.admits(id, codec), valid && a.is_saved(id)) << t.name << " " << name;
    }
    ASSERT_EQ(a.codecs[i].size(), want.size()) << t.name;
    for (std::size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(a.codecs[i][k].codec, want[k]) << t.name;
      EXPECT_EQ(a.codecs[i][k].encoded_bytes, ops::accounted_bytes(want[k]->encoded_bytes(t.shape)))
          << t.name << " " << want[k]->name();
      ++admitted;
      if (want[k]->decodes_to() == model::SavedForm::gelu_derivative) {
        EXPECT_EQ(t.role, model::TensorRole::gelu_in) << t.name;
        ++gelu_derivative;
      }
    }
  }
  EXPECT_GT(admitted, 0);
  EXPECT_GT(gelu_derivative, 0);
}

// What GPT-2 cannot show: a GELU input that another op's backward reads too cannot take a
// codec that stores the GELU derivative (that op needs the value).
class ValueOp final : public model::OpNode {
 public:
  ValueOp(std::string name, std::vector<TensorId> inputs, std::vector<TensorId> outputs,
          std::vector<TensorId> saved)
      : OpNode(std::move(name), -1) {
    inputs_ = std::move(inputs);
    outputs_ = std::move(outputs);
    saved_ = std::move(saved);
  }
  std::string_view kind() const override { return "value"; }
  void forward(model::OpEnv&) const override {}
  void backward(model::OpEnv&) const override {}
};

TEST(StepAnalysis, DerivedFormCodecsOnlyWhereEveryReaderAcceptsThem) {
  for (bool other_reads : {false, true}) {
    model::StepGraph g;
    auto add = [&](const std::string& name, TensorKind kind, model::TensorRole role) {
      model::TensorInfo info;
      info.name = name;
      info.shape = {2, 64};
      info.kind = kind;
      info.role = role;
      return g.add_tensor(std::move(info));
    };
    const TensorId in = add("in", TensorKind::input, model::TensorRole::residual);
    const TensorId x = add("x", TensorKind::activation, model::TensorRole::gelu_in);
    const TensorId y = add("y", TensorKind::activation, model::TensorRole::gelu_out);
    const TensorId z = add("z", TensorKind::activation, model::TensorRole::residual);
    g.add_op(std::make_unique<ValueOp>("fc", std::vector<TensorId>{in}, std::vector<TensorId>{x},
                                       std::vector<TensorId>{}));
    g.add_op(model::make_gelu("gelu", -1, x, y));
    g.add_op(std::make_unique<ValueOp>(
        "other", std::vector<TensorId>{x, y}, std::vector<TensorId>{z},
        other_reads ? std::vector<TensorId>{x} : std::vector<TensorId>{}));
    const StepAnalysis a = analyze_step(g);
    const compress::Codec& deriv = compress::codec_by_name("gelu-deriv-u8");
    EXPECT_EQ(a.admits(x, deriv), !other_reads);
    EXPECT_EQ(a.first_value_reader(g, x), other_reads ? 2 : -1);
    Plan plan = keep_all_plan(g);
    plan.decisions[static_cast<std::size_t>(x)] = {Policy::compress, "gelu-deriv-u8"};
    if (other_reads) {
      EXPECT_THROW(validate(g, plan), InvalidArgument);
    } else {
      EXPECT_NO_THROW(validate(g, plan));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, StepAnalysisTest, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::runtime
