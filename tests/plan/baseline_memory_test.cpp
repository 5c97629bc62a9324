// For every baseline policy, on several model sizes and both attention forms: the memory
// model's predicted peak matches the allocator's measured peak of a real training step
// (within 2% of the step's own bytes; in practice exactly), and keep/recompute baselines
// give the keep-everything gradients bit for bit.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <sstream>
#include <string>

#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"

namespace adacc::plan {
namespace {

struct Case {
  const char* spec;
  int B, T;
  ops::AttentionKind attention;
};

class BaselineMemory : public ::testing::TestWithParam<Case> {};

TEST_P(BaselineMemory, PredictedPeakMatchesMeasuredAndGradientsAreExact) {
  const Case c = GetParam();
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::ModelConfig cfg = model::parse_config(c.spec);
  cfg.attention = c.attention;
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(2);
  gpt.init_weights(rng);
  std::vector<int> tok;
  for (int i = 0; i < c.B * c.T; ++i) {
    tok.push_back(static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(cfg.vocab)));
  }
  Tensor tokens = test::to_int_tensor(alloc, tok, {c.B, c.T});
  const model::StepGraph graph = gpt.build_graph(c.B, c.T);
  test::Vec reference;
  for (const char* name : {"none", "selective", "llmc", "full", "every-2", "every-3"}) {
    const runtime::Plan plan = baseline_plan(graph, name);
    gpt.grads().flat.zero();
    const MemStats before = alloc.stats();
    alloc.reset_peak();
    runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
    exec.forward_backward(tokens, tokens);
    const std::size_t measured = alloc.stats().total_peak;
    const runtime::MemoryPrediction p =
        runtime::predict_step_memory(graph, plan, ctx.threads(), before.current);
    EXPECT_NEAR(static_cast<double>(p.total_peak), static_cast<double>(measured),
                0.02 * static_cast<double>(measured - before.total_current))
        << name << " (predicted at the " << p.where << ")";
    EXPECT_EQ(p.total_peak, measured) << name;
    const test::Vec grads = test::to_vec(gpt.grads().flat);
    if (reference.empty()) {
      reference = grads;
    } else {
      EXPECT_EQ(std::memcmp(grads.data(), reference.data(), grads.size() * sizeof(double)), 0)
          << name << ": gradients differ from none's";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, BaselineMemory,
    ::testing::Values(Case{"L=2,C=32,H=2,V=100,T=64", 2, 48, ops::AttentionKind::flash},
                      Case{"L=2,C=32,H=2,V=100,T=64", 2, 48, ops::AttentionKind::naive},
                      Case{"L=4,C=64,H=4,V=300,T=128", 3, 100, ops::AttentionKind::flash},
                      Case{"L=4,C=64,H=4,V=300,T=128", 3, 100, ops::AttentionKind::naive}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::ostringstream name;  // e.g. L2_C32_H2_V100_T64_B2_T48_flash
      for (const char* p = info.param.spec; *p != '\0'; ++p) {
        if (std::isalnum(static_cast<unsigned char>(*p))) name << *p;
        if (*p == ',') name << '_';
      }
      name << "_B" << info.param.B << "_T" << info.param.T
           << (info.param.attention == ops::AttentionKind::naive ? "_naive" : "_flash");
      return name.str();
    });

}  // namespace
}  // namespace adacc::plan
