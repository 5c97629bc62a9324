// The memory model's whole timeline against the allocator: for keep-everything and seeded
// random plans that mix keep, recompute and every codec that applies, with both attention
// forms and 1, 2 and 4 threads, the executor's measured timeline of a training step and of
// an eval pass equals predict_step_timeline's point by point — every schedule event's
// label, the bytes live per category after it, and the peak (total, per category at it,
// and each category's own) reached during it. The fixed part is the model's own
// allocation (training_fixed_bytes without the optimizer), not the measured state. (The
// baseline plans are compared the same way in tests/plan/baseline_memory_test.cpp.)
#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/workspace.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "memory_timeline_check.h"
#include "reference/test_util.h"
#include "support/random_batch.h"

namespace adacc::runtime {
namespace {

constexpr int B = 2, T = 16;

model::ModelConfig small_config(ops::AttentionKind attention) {
  model::ModelConfig c = model::parse_config("L=2,C=32,H=2,V=64,T=32");
  c.attention = attention;
  return c;
}

// A plan that gives every saved activation a random policy: keep, recompute (where the
// tensor may be recomputed) or compress with a random codec meant for its role —
// `preferred`, where given and meant for it. Drawn again until runtime::validate accepts
// it (a random recompute can need a tensor that was compressed into a derived form) and
// it uses `preferred`.
Plan random_plan(const model::StepGraph& graph, Rng& rng, const std::string& preferred = "") {
  const std::vector<bool> saved = saved_tensors(graph);
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool uses_preferred = preferred.empty();
    Plan plan = keep_all_plan(graph);
    plan.planner = "random";
    for (std::size_t k = 0; k < graph.tensors().size(); ++k) {
      const auto id = static_cast<model::TensorId>(k);
      const model::TensorInfo& t = graph.tensor(id);
      if (t.kind != model::TensorKind::activation || !saved[k]) continue;
      const std::vector<std::string> codecs = compress::codecs_for_role(t.role);
      const bool recomputable = is_recomputable(graph, id);
      switch (rng.next_u64() % 3) {
        case 0:
          break;
        case 1:
          if (recomputable) plan.decisions[k] = {Policy::recompute, ""};
          break;
        default:
          // Compress only what could be recomputed too: the fused loss's own outputs
          // are made in its forward and stay kept (as compress_plan does).
          if (!codecs.empty() && recomputable) {
            std::string codec = codecs[rng.next_u64() % codecs.size()];
            if (!preferred.empty() && compress::codec_by_name(preferred).applies_to(t.role)) {
              codec = preferred;
              uses_preferred = true;
            }
            plan.decisions[k] = {Policy::compress, codec};
          }
      }
    }
    if (!uses_preferred) continue;
    try {
      validate(graph, plan);
      return plan;
    } catch (const PlanInfeasible&) {
    } catch (const InvalidArgument&) {
    }
  }
  throw std::runtime_error("no valid random plan in 100 draws");
}

// The codecs that apply to some saved, recomputable activation of the graph.
std::set<std::string> applicable_codecs(const model::StepGraph& graph) {
  const std::vector<bool> saved = saved_tensors(graph);
  std::set<std::string> codecs;
  for (std::size_t k = 0; k < graph.tensors().size(); ++k) {
    const auto id = static_cast<model::TensorId>(k);
    if (!saved[k] || graph.tensor(id).kind != model::TensorKind::activation ||
        !is_recomputable(graph, id)) {
      continue;
    }
    for (const std::string& codec : compress::codecs_for_role(graph.tensor(id).role)) {
      codecs.insert(codec);
    }
  }
  return codecs;
}

// llm.c's recompute, made here (plans of the plan layer are not visible to runtime
// tests): the GELU and LayerNorm outputs of the blocks are recomputed.
Plan recompute_norms_and_gelu(const model::StepGraph& graph) {
  Plan plan = keep_all_plan(graph);
  plan.planner = "recompute norm_out and gelu_out";
  const std::vector<bool> saved = saved_tensors(graph);
  for (std::size_t k = 0; k < graph.tensors().size(); ++k) {
    const model::TensorInfo& t = graph.tensor(static_cast<model::TensorId>(k));
    if (saved[k] && t.layer >= 0 &&
        (t.role == model::TensorRole::norm_out || t.role == model::TensorRole::gelu_out)) {
      plan.decisions[k] = {Policy::recompute, ""};
    }
  }
  return plan;
}

// The codecs a plan uses.
std::set<std::string> codecs_in(const Plan& plan) {
  std::set<std::string> used;
  for (const Decision& d : plan.decisions) {
    if (d.policy == Policy::compress) used.insert(d.codec);
  }
  return used;
}

struct Config {
  ops::AttentionKind attention;
  int threads;
};

// The name ctest shows after '# GetParam() = ' (stable: no padding bytes).
void PrintTo(const Config& c, std::ostream* out) {
  *out << (c.attention == ops::AttentionKind::flash ? "flash" : "naive") << ", " << c.threads
       << " threads";
}

class MemoryTimeline : public ::testing::TestWithParam<Config> {
 protected:
  MemoryTimeline()
      : ctx_(alloc_, GetParam().threads, 1),
        gpt_(small_config(GetParam().attention), alloc_),
        graph_(gpt_.build_graph(B, T)) {
    Rng rng(3);
    gpt_.init_weights(rng);
    test::TokenBatch batch = test::random_batch(alloc_, rng, B, T, 64);
    tokens_ = batch.tokens;
    targets_ = batch.targets;
  }

  void expect_timeline_matches(const Plan& plan, model::Pass pass) {
    std::size_t points = 0;
    EXPECT_EQ(test::timeline_difference(gpt_, graph_, ctx_, plan, pass, tokens_, targets_, &points),
              "");
    EXPECT_GT(points, graph_.ops().size()) << plan.planner;
    ++compared_;
  }

  Allocator alloc_;
  Context ctx_;
  model::Gpt2 gpt_;
  model::StepGraph graph_;
  Tensor tokens_, targets_;
  int compared_ = 0;
};

TEST_P(MemoryTimeline, KeepAllAndRecomputeTrainAndEval) {
  for (const Plan& plan : {keep_all_plan(graph_), recompute_norms_and_gelu(graph_)}) {
    for (model::Pass pass : {model::Pass::train, model::Pass::eval}) {
      expect_timeline_matches(plan, pass);
    }
  }
  EXPECT_EQ(compared_, 4);
}

TEST_P(MemoryTimeline, RandomPlansWithEveryCodecTrainAndEval) {
  const std::set<std::string> applicable = applicable_codecs(graph_);
  ASSERT_GE(applicable.size(), 6u);
  Rng rng(11 + static_cast<std::uint64_t>(GetParam().threads));
  std::set<std::string> used;
  int recomputes = 0;
  // Eight plans mixing codecs at random, and one preferring each codec in turn.
  std::vector<std::string> preferred(8, "");
  preferred.insert(preferred.end(), applicable.begin(), applicable.end());
  for (std::size_t k = 0; k < preferred.size(); ++k) {
    const Plan plan = random_plan(graph_, rng, preferred[k]);
    const std::set<std::string> codecs = codecs_in(plan);
    used.insert(codecs.begin(), codecs.end());
    for (const Decision& d : plan.decisions) recomputes += d.policy == Policy::recompute;
    expect_timeline_matches(plan, model::Pass::train);
    if (k < 2) expect_timeline_matches(plan, model::Pass::eval);
  }
  EXPECT_EQ(used, applicable) << "the random plans should use every codec that applies";
  EXPECT_GT(recomputes, 10);
}

std::string config_name(const ::testing::TestParamInfo<Config>& info) {
  return std::string(info.param.attention == ops::AttentionKind::flash ? "flash" : "naive") +
         "_threads" + std::to_string(info.param.threads);
}

INSTANTIATE_TEST_SUITE_P(
    AttentionAndThreads, MemoryTimeline,
    ::testing::Values(Config{ops::AttentionKind::flash, 1}, Config{ops::AttentionKind::flash, 2},
                      Config{ops::AttentionKind::flash, 4}, Config{ops::AttentionKind::naive, 1},
                      Config{ops::AttentionKind::naive, 2}, Config{ops::AttentionKind::naive, 4}),
    config_name);

// The recorder: off by default; on, it neither changes the step's result nor disturbs the
// allocator's own peak window; its points are the schedule's, from before to after.
TEST(MemoryTimelineRecorder, IsOffByDefaultAndLeavesThePeakWindowAlone) {
  Allocator alloc;
  Context ctx(alloc, 1, 1);
  model::Gpt2 gpt(small_config(ops::AttentionKind::flash), alloc);
  Rng rng(5);
  gpt.init_weights(rng);
  const model::StepGraph graph = gpt.build_graph(B, T);
  test::TokenBatch batch = test::random_batch(alloc, rng, B, T, 64);
  const Plan plan = recompute_norms_and_gelu(graph);
  StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);

  alloc.reset_peak();
  const float loss = exec.forward_backward(batch.tokens, batch.targets);
  EXPECT_TRUE(exec.timeline().empty());
  const MemStats plain = alloc.stats();

  exec.set_timeline_recording(true);
  alloc.reset_peak();
  EXPECT_EQ(exec.forward_backward(batch.tokens, batch.targets), loss);
  const MemStats recorded = alloc.stats();
  EXPECT_EQ(recorded.total_peak, plain.total_peak);
  EXPECT_EQ(recorded.at_peak, plain.at_peak);
  EXPECT_EQ(recorded.peak, plain.peak);

  const StepTimeline& timeline = exec.timeline();
  ASSERT_GE(timeline.size(), 2 * graph.ops().size() + 2);
  EXPECT_EQ(timeline.front().label, "before the step");
  EXPECT_EQ(timeline.back().label, "after the step");
  EXPECT_EQ(timeline.front().live, timeline.back().live);  // the step gives back all it took
  EXPECT_EQ(timeline.front().total(), recorded.total_current);
  // The timeline's highest point is the allocator's peak of the step.
  const MemoryPrediction peak = timeline_peak(timeline, timeline.front().live);
  EXPECT_EQ(peak.total_peak, recorded.total_peak);
  EXPECT_EQ(peak.at_peak, recorded.at_peak);
  EXPECT_EQ(peak.peak, recorded.peak);
  // The plan recomputes inside the blocks: some point re-runs an op for a backward.
  bool recomputes = false;
  for (const TimelinePoint& p : timeline) {
    recomputes = recomputes || p.label.find("(recomputing ") != std::string::npos;
  }
  EXPECT_TRUE(recomputes);

  // Switched off again, the next step leaves the last recorded timeline as it was.
  exec.set_timeline_recording(false);
  exec.forward(batch.tokens, batch.targets);
  EXPECT_EQ(exec.timeline().size(), timeline.size());
}

// Independently of the schedule that both timelines follow: under keep-everything, right
// after the forward of op o the step holds exactly the activations made so far that a
// later forward op reads, and (training only) those a backward op saves — in the eval
// pass no saved tensor outlives its last forward use.
TEST(MemoryTimelineRecorder, ForwardHoldsWhatTheLifetimesSay) {
  for (ops::AttentionKind attention : {ops::AttentionKind::flash, ops::AttentionKind::naive}) {
    Allocator alloc;
    Context ctx(alloc, 2, 1);
    model::Gpt2 gpt(small_config(attention), alloc);
    Rng rng(9);
    gpt.init_weights(rng);
    const model::StepGraph graph = gpt.build_graph(B, T);
    test::TokenBatch batch = test::random_batch(alloc, rng, B, T, 64);
    const std::vector<model::TensorLifetime> life = model::analyze_lifetimes(graph);
    const std::size_t batch_bytes = alloc.stats().current_of(MemCategory::activations);
    StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
    exec.set_timeline_recording(true);
    for (model::Pass pass : {model::Pass::train, model::Pass::eval}) {
      if (pass == model::Pass::train) {
        exec.forward_backward(batch.tokens, batch.targets);
      } else {
        exec.forward(batch.tokens, batch.targets);
      }
      int checked = 0;
      for (const TimelinePoint& point : exec.timeline()) {
        if (point.label.rfind("forward of ", 0) != 0 ||
            point.label.find('(') != std::string::npos) {
          continue;
        }
        int o = 0;
        while (graph.op(o).name() != point.label.substr(11)) ++o;
        std::size_t expected = batch_bytes;
        for (int p = 0; p <= o; ++p) {
          for (model::TensorId id : graph.op(p).outputs()) {
            const model::TensorLifetime& l = life[static_cast<std::size_t>(id)];
            const bool saved = pass == model::Pass::train && l.first_backward_use >= 0;
            if (graph.op(p).produces(id, pass) && (l.last_forward_use >= o || saved)) {
              expected +=
                  ops::accounted_tensor_bytes(graph.tensor(id).shape, graph.tensor(id).dtype);
            }
          }
        }
        EXPECT_EQ(point.live_of(MemCategory::activations), expected)
            << point.label << (pass == model::Pass::train ? " (train)" : " (eval)");
        ++checked;
      }
      EXPECT_EQ(checked, static_cast<int>(graph.ops().size()));
    }
  }
}

// predict_step_memory's peak is its timeline's highest point.
TEST(MemoryTimelineRecorder, PredictedPeakIsTheTimelinesHighestPoint) {
  for (ops::AttentionKind attention : {ops::AttentionKind::flash, ops::AttentionKind::naive}) {
    const model::ModelConfig cfg = small_config(attention);
    const model::StepGraph graph = model::build_gpt2_graph(cfg, B, T);
    const auto fixed = training_fixed_bytes(cfg, B, T);
    Rng rng(17);
    for (const Plan& plan : {keep_all_plan(graph), recompute_norms_and_gelu(graph),
                             random_plan(graph, rng), random_plan(graph, rng)}) {
      const std::string& name = plan.planner;
      const StepTimeline timeline = predict_step_timeline(graph, plan, 2, fixed);
      const MemoryPrediction p = predict_step_memory(graph, plan, 2, fixed);
      std::size_t highest = 0;
      std::string where;
      for (const TimelinePoint& point : timeline) {
        EXPECT_GE(point.peak, point.total()) << point.label;
        if (point.peak > highest) {
          highest = point.peak;
          where = point.label;
        }
      }
      EXPECT_EQ(p.total_peak, highest) << name;
      EXPECT_EQ(p.where, where) << name;
      EXPECT_GT(p.total_peak, p.fixed) << name;
    }
  }
}

// A difference is reported at its first point, with the label and the categories.
TEST(MemoryTimelineRecorder, FirstDifferenceNamesThePointAndTheCategories) {
  StepTimeline a(3);
  a[0].label = "before the step";
  a[1].label = "backward of h1.attn (recomputing h1.qkv)";
  a[2].label = "after the step";
  a[1].peak = 4096;
  a[1].at_peak[static_cast<int>(MemCategory::workspace)] = 4096;
  StepTimeline b = a;
  EXPECT_EQ(first_difference(a, b), "");
  b[1].peak = 8192;
  b[1].at_peak[static_cast<int>(MemCategory::workspace)] = 8192;
  b[2].live[static_cast<int>(MemCategory::activations)] = 64;  // a later difference
  const std::string diff = first_difference(a, b);
  EXPECT_NE(diff.find("point 1 'backward of h1.attn (recomputing h1.qkv)'"), std::string::npos)
      << diff;
  EXPECT_NE(diff.find("peak during: 4096 vs 8192"), std::string::npos) << diff;
  EXPECT_NE(diff.find("workspace 4096 vs 8192"), std::string::npos) << diff;
  EXPECT_EQ(diff.find("activations"), std::string::npos) << diff;
  b = a;
  b.pop_back();
  EXPECT_NE(first_difference(a, b).find("'after the step'"), std::string::npos);
  b = a;
  b[2].label = "forward of lnf";
  EXPECT_NE(first_difference(a, b).find("labelled 'forward of lnf'"), std::string::npos);
}

}  // namespace
}  // namespace adacc::runtime
