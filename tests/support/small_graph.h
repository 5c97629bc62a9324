// A test fixture: the step graph of a small GPT-2 (L=3, C=16, H=2, V=50; batch B=2, T=8)
// for each attention form (the test's parameter), for tests of plans and planners that
// need a graph but run no step. INSTANTIATE_TEST_SUITE_P(Attention, <Suite>,
// test::kAttentionForms, test::attention_name) names the instances "naive" and "flash".
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>

#include "adacc/model/gpt2.h"
#include "adacc/runtime/plan.h"

namespace adacc::test {

inline const auto kAttentionForms =
    ::testing::Values(ops::AttentionKind::naive, ops::AttentionKind::flash);

inline std::string attention_name(const ::testing::TestParamInfo<ops::AttentionKind>& info) {
  return info.param == ops::AttentionKind::naive ? "naive" : "flash";
}

class SmallGraph : public ::testing::TestWithParam<ops::AttentionKind> {
 protected:
  static constexpr int kLayers = 3;
  SmallGraph() : model_(config(GetParam()), alloc_), graph_(model_.build_graph(2, 8)) {}
  static model::ModelConfig config(ops::AttentionKind attention) {
    model::ModelConfig c = model::parse_config("L=3,C=16,H=2,V=50,T=16");
    c.attention = attention;
    return c;
  }
  // The attention statistic the backward saves: the probabilities (naive) or the
  // log-sum-exps (flash).
  std::string stats() const {
    return GetParam() == ops::AttentionKind::naive ? "attn.probs" : "attn.lse";
  }
  // The decision of `plan` for the tensor of that name.
  runtime::Decision& at(runtime::Plan& plan, const std::string& name) const {
    return plan.decisions.at(static_cast<std::size_t>(graph_.find(name)));
  }
  const runtime::Decision& at(const runtime::Plan& plan, const std::string& name) const {
    return plan.decisions.at(static_cast<std::size_t>(graph_.find(name)));
  }

  Allocator alloc_;
  model::Gpt2 model_;
  model::StepGraph graph_;
};

}  // namespace adacc::test
