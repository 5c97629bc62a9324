// For every baseline policy — none, selective, llmc, full, every-2, every-3, compress and
// compress-<codec> for every codec that fits the graph — on two model sizes, both
// attention forms and 1, 2 and 4 threads: the memory model's predicted timeline of a
// training step and of an eval pass equals the allocator's measured one point by point
// (every schedule event, every category, exact bytes; tests/runtime/memory_timeline_check.h),
// so the predicted peak is the measured one; and keep/recompute baselines give the
// keep-everything gradients bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "runtime/memory_timeline_check.h"
#include "support/random_batch.h"

namespace adacc::plan {
namespace {

struct Case {
  const char* spec;
  int B, T;
  ops::AttentionKind attention;
  int threads;
};

// The name ctest shows after '# GetParam() = ' (stable: no pointer or padding bytes).
void PrintTo(const Case& c, std::ostream* out) {
  *out << c.spec << " B=" << c.B << " T=" << c.T
       << (c.attention == ops::AttentionKind::flash ? " flash" : " naive") << ", " << c.threads
       << " threads";
}

// Every baseline by name, with compress-<codec> for each codec that fits this graph
// (compress_plan refuses one that applies to no saved tensor).
std::vector<std::string> baselines(const model::StepGraph& graph) {
  std::vector<std::string> names = {"none",    "selective", "llmc",    "full",
                                    "every-2", "every-3",   "compress"};
  for (const std::string& codec : compress::codec_names()) {
    try {
      compress_plan(graph, codec);
      names.push_back("compress-" + codec);
    } catch (const InvalidArgument&) {
      // e.g. softmax-u8 under flash attention, which saves no probabilities
    }
  }
  return names;
}

class BaselineMemory : public ::testing::TestWithParam<Case> {};

TEST_P(BaselineMemory, PredictedTimelineIsMeasuredAndGradientsAreExact) {
  const Case c = GetParam();
  Allocator alloc;
  Context ctx(alloc, c.threads, 1);
  model::ModelConfig cfg = model::parse_config(c.spec);
  cfg.attention = c.attention;
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(2);
  gpt.init_weights(rng);
  const test::TokenBatch batch = test::random_batch(alloc, rng, c.B, c.T, cfg.vocab);
  const model::StepGraph graph = gpt.build_graph(c.B, c.T);
  const std::vector<std::string> names = baselines(graph);
  // The seven recipes, and at least bf16, fp8, the int codecs and the GELU derivatives.
  ASSERT_GE(names.size(), 14u);
  test::Vec reference;
  for (const std::string& name : names) {
    const runtime::Plan plan = baseline_plan(graph, name);
    gpt.grads().flat.zero();
    EXPECT_EQ(test::timeline_difference(gpt, graph, ctx, plan, model::Pass::train, batch.tokens,
                                        batch.targets),
              "")
        << name;
    EXPECT_EQ(test::timeline_difference(gpt, graph, ctx, plan, model::Pass::eval, batch.tokens,
                                        batch.targets),
              "")
        << name;
    if (name.rfind("compress", 0) == 0) continue;  // compression changes the gradients
    const test::Vec grads = test::to_vec(gpt.grads().flat);
    if (reference.empty()) {
      reference = grads;
    } else {
      EXPECT_EQ(std::memcmp(grads.data(), reference.data(), grads.size() * sizeof(double)), 0)
          << name << ": gradients differ from none's";
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string spec = info.param.spec;
  std::string name;
  for (char ch : spec.substr(0, spec.find(",H="))) {
    if (ch != '=' && ch != ',') name += ch;
  }
  return name + (info.param.attention == ops::AttentionKind::flash ? "_flash" : "_naive") +
         "_threads" + std::to_string(info.param.threads);
}

constexpr const char* kSmall = "L=2,C=32,H=2,V=100,T=64";
constexpr const char* kLarger = "L=4,C=64,H=4,V=300,T=128";

INSTANTIATE_TEST_SUITE_P(SizesAttentionThreads, BaselineMemory,
                         ::testing::Values(Case{kSmall, 2, 48, ops::AttentionKind::flash, 1},
                                           Case{kSmall, 2, 48, ops::AttentionKind::flash, 2},
                                           Case{kSmall, 2, 48, ops::AttentionKind::flash, 4},
                                           Case{kSmall, 2, 48, ops::AttentionKind::naive, 1},
                                           Case{kSmall, 2, 48, ops::AttentionKind::naive, 2},
                                           Case{kSmall, 2, 48, ops::AttentionKind::naive, 4},
                                           Case{kLarger, 3, 100, ops::AttentionKind::flash, 2},
                                           Case{kLarger, 3, 100, ops::AttentionKind::naive, 2}),
                         case_name);

}  // namespace
}  // namespace adacc::plan
