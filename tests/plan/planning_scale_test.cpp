// Planning scales with the model's depth: building the step graph, the baseline plans, their
// validation and the memory model's prediction take time linear in the number of blocks L;
// a recomputation chain through every block does not exhaust the call stack; and at many
// blocks the predictions stay exact — equal to what the real executor allocates, and affine
// in L as the model's repeated block structure demands.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "support/random_batch.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define ADACC_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define ADACC_TEST_SANITIZED 1
#endif
#endif

namespace adacc::plan {
namespace {

// The baselines `adacc plan` prints for every model.
constexpr const char* kPlanBaselines[] = {"none", "selective", "llmc",
                                          "full", "every-2",   "compress"};

model::ModelConfig deep_config(int layers, int channels = 64, int vocab = 256) {
  return model::parse_config("L=" + std::to_string(layers) + ",C=" + std::to_string(channels) +
                             ",H=2,V=" + std::to_string(vocab) + ",T=64");
}

runtime::MemoryPrediction predict(const model::ModelConfig& cfg, const model::StepGraph& graph,
                                  const std::string& policy) {
  return runtime::predict_step_memory(graph, baseline_plan(graph, policy), /*threads=*/1,
                                      runtime::training_fixed_bytes(cfg, graph.batch, graph.seq));
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// What `adacc plan` does for an L-block model: the graph, then every baseline planned,
// validated and predicted. The least CPU time of up to `reps` runs, stopping at the first
// under `enough` seconds (so that a quadratic regression fails after one slow run).
double planning_seconds(int layers, int reps, double enough = 0) {
  double best = 1e30;
  for (int r = 0; r < reps && best >= enough; ++r) {
    const double start = thread_cpu_seconds();
    const model::ModelConfig cfg = deep_config(layers);
    const model::StepGraph graph = model::build_gpt2_graph(cfg, 1, 16);
    std::size_t sum = 0;
    for (const char* name : kPlanBaselines) sum += predict(cfg, graph, name).total_peak;
    EXPECT_GT(sum, 0u);
    best = std::min(best, thread_cpu_seconds() - start);
  }
  return best;
}

TEST(PlanningScale, TimeGrowsLinearlyWithTheNumberOfBlocks) {
#ifdef ADACC_TEST_SANITIZED
  GTEST_SKIP() << "timing is meaningless under sanitizers";
#else
  // 8 times the blocks: about 8 times the work if linear, 64 times if quadratic. Linear
  // planning measures 12 to 16 times here, as the larger graph no longer fits in the caches,
  // hence a bound at 3 x 8.
  const double bound = 3 * 8;
  const double small = planning_seconds(500, 3);
  const double large = planning_seconds(4000, 3, bound * small);
  EXPECT_LT(large, bound * small) << "planning L=500 took " << small << " s, L=4000 " << large
                                  << " s (CPU time): superlinear in the number of blocks";
#endif
}

// every-<L> keeps only h0's input, so recomputing the last block's tensors re-runs the
// whole stack: a chain of ~10 L producers, which once overflowed the call stack in the
// plan's validation and in the schedule.
TEST(PlanningScale, RecomputationChainThroughEveryBlockIsPlanned) {
  const int layers = 20000;
  const model::ModelConfig cfg = deep_config(layers, 8, 16);
  const model::StepGraph graph = model::build_gpt2_graph(cfg, 1, 4);
  const std::string policy = "every-" + std::to_string(layers);
  const runtime::MemoryPrediction chain = predict(cfg, graph, policy);
  const runtime::MemoryPrediction full = predict(cfg, graph, "full");
  // Fewer block inputs retained than full's, but the whole stack rebuilt at once.
  EXPECT_GT(chain.step_peak(), full.step_peak());
  EXPECT_EQ(chain.fixed, full.fixed);
}

TEST(PlanningScale, PeakIsAffineInTheNumberOfBlocks) {
  // Every block adds the same parameters, retained activations and gradients, and the peak
  // stays at the same place of the last blocks, so peak(L) = a + b L (every-2: for even L).
  for (const char* name : kPlanBaselines) {
    std::size_t peak[3] = {};
    std::string where[3];
    const int layers[3] = {16, 40, 64};
    for (int k = 0; k < 3; ++k) {
      const model::ModelConfig cfg = deep_config(layers[k], 16, 64);
      const model::StepGraph graph = model::build_gpt2_graph(cfg, 2, 8);
      const runtime::MemoryPrediction p = predict(cfg, graph, name);
      peak[k] = p.total_peak;
      where[k] = p.where;
    }
    ASSERT_GT(peak[1], peak[0]) << name;
    const std::size_t per_block = (peak[1] - peak[0]) / 24;
    EXPECT_EQ(peak[1] - peak[0], 24 * per_block) << name;
    EXPECT_EQ(peak[2], peak[1] + 24 * per_block)
        << name << ": L=16 " << peak[0] << " (" << where[0] << "), L=40 " << peak[1] << " ("
        << where[1] << "), L=64 " << peak[2] << " (" << where[2] << ")";
  }
}

TEST(PlanningScale, EveryBlockReadsItsOwnParameters) {
  const model::ModelConfig cfg = deep_config(120, 8, 16);
  const model::StepGraph graph = model::build_gpt2_graph(cfg, 1, 4);
  int checked = 0;
  for (const auto& op : graph.ops()) {
    if (op->layer() < 0) continue;
    const std::string prefix = "transformer.h." + std::to_string(op->layer()) + ".";
    for (model::TensorId id : op->inputs()) {
      const model::TensorInfo& t = graph.tensor(id);
      if (t.kind != model::TensorKind::param) continue;
      EXPECT_EQ(t.name.rfind(prefix, 0), 0u) << op->name() << " reads " << t.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12 * cfg.n_layer);  // every parameter of every block, once
}

TEST(PlanningScale, PredictionsAtManyBlocksMatchTheExecutor) {
  const int layers = 64;
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  const model::ModelConfig cfg = deep_config(layers, 8, 16);
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(3);
  gpt.init_weights(rng);
  const int B = 2, T = 4;
  Tensor tokens = test::random_batch(alloc, rng, B, T, cfg.vocab).tokens;
  const model::StepGraph graph = gpt.build_graph(B, T);
  test::Vec reference;
  const std::vector<std::string> policies = {"none",
                                             "selective",
                                             "llmc",
                                             "full",
                                             "every-2",
                                             "every-7",
                                             "every-" + std::to_string(layers),
                                             "compress"};
  for (const std::string& name : policies) {
    const runtime::Plan plan = baseline_plan(graph, name);
    gpt.grads().flat.zero();
    const MemStats before = alloc.stats();
    alloc.reset_peak();
    runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
    exec.forward_backward(tokens, tokens);
    const runtime::MemoryPrediction p =
        runtime::predict_step_memory(graph, plan, ctx.threads(), before.current);
    EXPECT_EQ(p.total_peak, alloc.stats().total_peak)
        << name << " (predicted at the " << p.where << ")";
    if (name == "compress") continue;  // lossy: its gradients differ
    const test::Vec grads = test::to_vec(gpt.grads().flat);
    if (reference.empty()) {
      reference = grads;
    } else {
      EXPECT_EQ(std::memcmp(grads.data(), reference.data(), grads.size() * sizeof(double)), 0)
          << name << ": gradients differ from none's";
    }
  }
}

}  // namespace
}  // namespace adacc::plan
