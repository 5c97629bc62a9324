// The plan summary per role and the explanation of choices (plan/plan_report.h).
#include "adacc/plan/plan_report.h"

#include <gtest/gtest.h>

#include "adacc/compress/codec.h"
#include "adacc/plan/baselines.h"
#include "support/small_graph.h"

namespace adacc::plan {
namespace {

using model::TensorRole;
using runtime::Policy;

class PlanReport : public test::SmallGraph {
 protected:
  // Costs where op o's forward takes (o+1) ms, and int8-g64 is measured on every norm_out
  // tensor with an encode of 0.1 ms, a decode of 0.2 ms and the given gradient error.
  plan::StepCosts costs(double grad_error) const {
    plan::StepCosts c;
    for (std::size_t o = 0; o < graph_.ops().size(); ++o) {
      c.forward_seconds.push_back(1e-3 * static_cast<double>(o + 1));
      c.backward_seconds.push_back(2e-3);
    }
    c.codecs.resize(graph_.tensors().size());
    for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
      const model::TensorInfo& t = graph_.tensors()[i];
      if (t.role != TensorRole::norm_out) continue;
      c.codecs[i].push_back({"int8-g64", compress::codec_by_name("int8-g64").encoded_bytes(t.shape),
                             1e-4, 2e-4, grad_error, 0.01});
    }
    return c;
  }
};

TEST_P(PlanReport, CountsEverySavedActivationOnceByRoleAndPolicy) {
  const runtime::Plan plan = compress_plan(graph_, default_role_codecs(), "compress");
  const auto counts = count_by_role(graph_, plan);
  const std::vector<bool> saved = runtime::saved_tensors(graph_);
  std::map<TensorRole, int> expected_total;
  std::map<TensorRole, int> expected_compressed;
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    const model::TensorInfo& t = graph_.tensors()[i];
    if (t.kind != model::TensorKind::activation || !saved[i]) continue;
    ++expected_total[t.role];
    if (plan.decisions[i].policy == Policy::compress) ++expected_compressed[t.role];
  }
  ASSERT_EQ(counts.size(), expected_total.size());
  for (const auto& [role, c] : counts) {
    int compressed = 0;
    for (const auto& [codec, n] : c.compress) compressed += n;
    EXPECT_EQ(c.keep + c.recompute + compressed, expected_total[role]) << tensor_role_name(role);
    EXPECT_EQ(compressed, expected_compressed[role]) << tensor_role_name(role);
    EXPECT_EQ(c.recompute, 0);
  }
  // The norm outputs of the 3 blocks (2 each) plus the final LayerNorm's are int4-g64.
  EXPECT_EQ(counts.at(TensorRole::norm_out).compress.at("int4-g64"), 6);
}

TEST_P(PlanReport, SummaryNamesRolesCodecsAndCounts) {
  const std::string text = format_role_summary(graph_, full_plan(graph_));
  EXPECT_NE(text.find("gelu_in"), std::string::npos) << text;
  EXPECT_NE(text.find("recompute"), std::string::npos) << text;
  const std::string c = format_role_summary(graph_, compress_plan(graph_, "int8-g64"));
  EXPECT_NE(c.find("int8-g64 x"), std::string::npos) << c;
}

TEST_P(PlanReport, PricesRecomputeByTheProducersForwardAndCodecsByTheirTimes) {
  const plan::StepCosts cst = costs(0.05);
  const model::TensorId fc = graph_.find("h1.fc.out");
  const auto fc_prices = price_choices(graph_, cst, fc, 1.0);
  ASSERT_EQ(fc_prices.size(), 1u);  // no codec measured on it: recompute only
  EXPECT_EQ(fc_prices[0].choice, "recompute");
  const int producer = graph_.tensor(fc).producer;
  EXPECT_DOUBLE_EQ(fc_prices[0].seconds, 1e-3 * (producer + 1));
  EXPECT_EQ(fc_prices[0].bytes_saved, graph_.tensor(fc).nbytes());

  const model::TensorId ln = graph_.find("h1.ln2.out");
  const auto ln_prices = price_choices(graph_, cst, ln, 0.01);  // tolerance below 0.05
  ASSERT_EQ(ln_prices.size(), 2u);
  EXPECT_EQ(ln_prices[1].choice, "int8-g64");
  EXPECT_DOUBLE_EQ(ln_prices[1].seconds, 3e-4);
  EXPECT_FALSE(ln_prices[1].admissible);
  EXPECT_TRUE(price_choices(graph_, cst, ln, 0.05)[1].admissible);
  const std::size_t enc =
      compress::codec_by_name("int8-g64").encoded_bytes(graph_.tensor(ln).shape);
  EXPECT_EQ(ln_prices[1].bytes_saved, graph_.tensor(ln).nbytes() - enc);
  EXPECT_DOUBLE_EQ(ln_prices[1].bytes_per_ms(),
                   static_cast<double>(graph_.tensor(ln).nbytes() - enc) / 0.3);
}

TEST_P(PlanReport, ExplanationCollapsesIdenticalBlocksAndFlagsInadmissibleCodecs) {
  // Recompute times differ per op, so blocks differ: every layer has its own row.
  const std::string per_layer = format_explanation(graph_, full_plan(graph_), costs(0.05), 0.01);
  EXPECT_NE(per_layer.find("h2 "), std::string::npos) << per_layer;
  EXPECT_NE(per_layer.find("above tolerance"), std::string::npos) << per_layer;
  // Equal costs in every op: the three blocks collapse into "h0-h2" rows.
  plan::StepCosts flat = costs(0.0);
  for (double& f : flat.forward_seconds) f = 1e-3;
  const std::string collapsed = format_explanation(graph_, full_plan(graph_), flat, 0.01);
  EXPECT_NE(collapsed.find("h0-h2"), std::string::npos) << collapsed;
  EXPECT_EQ(collapsed.find("above tolerance"), std::string::npos) << collapsed;
}

TEST_P(PlanReport, CostsOfAnotherGraphAreRefused) {
  plan::StepCosts c = costs(0.0);
  c.forward_seconds.pop_back();
  EXPECT_THROW(price_choices(graph_, c, graph_.find("h0.fc.out"), 1.0), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Attention, PlanReport, test::kAttentionForms, test::attention_name);

}  // namespace
}  // namespace adacc::plan
