// Evolution between steps (evolve/evolution.h), without a trainer: planted outliers in
// one tensor demote exactly that tensor's codec at the boundary after the sampled step,
// and the new plan fits the budget; noise around the tolerance does not make the plan
// flap; a budget file's new budget gives a plan that fits it, a budget below the least is
// refused.
#include "adacc/evolve/evolution.h"

#include <gtest/gtest.h>

#include <fstream>

#include "adacc/compress/codec.h"
#include "adacc/core/rng.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/baselines.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_profile.h"
#include "support/temp_dir.h"

namespace adacc::evolve {
namespace {

class EvolutionTest : public ::testing::Test {
 protected:
  EvolutionTest()
      : cfg_(model::parse_config("L=2,C=64,H=2,V=64,T=32")),
        graph_(model::build_gpt2_graph(cfg_, 2, 32)),
        fixed_(runtime::training_fixed_bytes(cfg_, 2, 32)),
        ctx_(alloc_, 1) {
    // Costs from sizes; int4-g64-naive on every codec candidate, profiled error 0.01 for
    // gradients and tensors alike (ratio 1), and bf16 as the wider choice.
    const std::vector<bool> saved = runtime::saved_tensors(graph_);
    costs_.codecs.resize(graph_.tensors().size());
    costs_.forward_seconds.assign(graph_.ops().size(), 1e-3);
    costs_.backward_seconds.assign(graph_.ops().size(), 2e-3);
    for (std::size_t t = 0; t < graph_.tensors().size(); ++t) {
      const auto id = static_cast<model::TensorId>(t);
      if (!runtime::is_codec_candidate(graph_, saved, id)) continue;
      const model::TensorInfo& info = graph_.tensor(id);
      for (const char* name : {"int4-g64-naive", "bf16"}) {
        const compress::Codec& c = compress::codec_by_name(name);
        if (!c.applies_to(info.role)) continue;
        plan::CodecCost cc;
        cc.codec = name;
        cc.encoded_bytes = c.encoded_bytes(info.shape);
        cc.encode_seconds = cc.decode_seconds = 1e-5;
        // int4-g64-naive on gaussian values: about 0.09 of tensor error, profiled as 0.01 of
        // gradient error.
        const bool bf16 = std::string(name) == "bf16";
        cc.tensor_error = bf16 ? 0.003 : 0.09;
        cc.grad_error = bf16 ? 0.002 : 0.01;
        costs_.codecs[t].push_back(cc);
      }
    }
  }

  EvolutionOptions options(std::size_t period = 5) const {
    EvolutionOptions o;
    o.policy = "adacc";
    o.tolerance = 0.05;
    o.fixed = fixed_;
    o.monitor_period = static_cast<std::int64_t>(period);
    o.monitor_warmup = 0;
    o.solver_seconds = 1;
    o.gap = 0.01;
    return o;
  }

  // A gaussian tensor of `id`'s shape, with `outliers`: one channel (the last dimension's
  // index 3) set to 300 in every row.
  Tensor activation(model::TensorId id, bool outliers, std::uint64_t seed) {
    const model::TensorInfo& info = graph_.tensor(id);
    Tensor t = Tensor::empty(alloc_, info.shape, DType::f32, MemCategory::activations, info.name);
    Rng rng(seed);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = rng.normal();
    if (outliers) {
      const std::int64_t c = info.shape.back();
      for (std::int64_t r = 0; r < t.numel() / c; ++r) t.data<float>()[r * c + 3] = 300;
    }
    return t;
  }

  // The compressed tensors of `plan` and their codecs.
  std::vector<std::pair<model::TensorId, std::string>> compressed(const runtime::Plan& p) const {
    std::vector<std::pair<model::TensorId, std::string>> out;
    for (std::size_t t = 0; t < p.decisions.size(); ++t) {
      if (p.decisions[t].policy == runtime::Policy::compress) {
        out.emplace_back(static_cast<model::TensorId>(t), p.decisions[t].codec);
      }
    }
    return out;
  }

  runtime::Plan start_plan(std::size_t budget) const {
    plan::PolicyPlanner planner(graph_, 1, fixed_, &costs_, 0.05);
    planner.set_time_limit(1);
    planner.set_gap(0.01);
    return planner.choose("adacc", budget).plan;
  }

  std::size_t budget_share(double share) const {
    plan::Budget b;
    b.percent = true;
    b.share = share;
    return plan::PolicyPlanner(graph_, 1, fixed_, nullptr).resolve(b);
  }

  model::ModelConfig cfg_;
  model::StepGraph graph_;
  std::array<std::size_t, kMemCategories> fixed_;
  plan::StepCosts costs_;
  Allocator alloc_;
  Context ctx_;
};

TEST_F(EvolutionTest, PlantedOutliersDemoteExactlyThatTensorWithinOnePeriod) {
  const std::size_t budget = budget_share(0.45);
  Evolution ev(graph_, &costs_, options(5));
  const runtime::Plan start = start_plan(budget);
  const auto comp = compressed(start);
  std::vector<model::TensorId> naive;
  for (const auto& [t, c] : comp) {
    if (c == "int4-g64-naive") naive.push_back(t);
  }
  ASSERT_GE(naive.size(), 2u) << "the plan must use the low-bit codec on two tensors or more";
  const model::TensorId victim = naive.front();

  std::optional<Refusal> refused;
  CodecMonitor& m = *ev.monitor();
  // Steps 1..4 are not sampled; step 5 is, with normal activations: nothing happens.
  for (std::int64_t step = 1; step <= 5; ++step) {
    m.begin_step(step);
    EXPECT_EQ(m.sampling(), step == 5);
    for (const auto& [t, c] : comp) {
      m.observe(ctx_, t, compress::codec_by_name(c), activation(t, false, step * 100 + t));
    }
    EXPECT_FALSE(ev.at_boundary(step, start, budget, refused)) << step;
  }
  // From step 6 the victim has an outlier channel; the next sampled step (10) sees it.
  std::optional<Replan> r;
  for (std::int64_t step = 6; step <= 10 && !r; ++step) {
    m.begin_step(step);
    for (const auto& [t, c] : comp) {
      m.observe(ctx_, t, compress::codec_by_name(c), activation(t, t == victim, step * 100 + t));
    }
    r = ev.at_boundary(step, start, budget, refused);
    if (step < 10) {
      EXPECT_FALSE(r) << step;
    }
  }
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, "tolerance");
  ASSERT_EQ(r->violations.size(), 1u);
  EXPECT_EQ(r->violations[0].tensor, victim);
  EXPECT_GT(r->violations[0].grad_error, 2 * 0.05);
  ASSERT_EQ(ev.demoted().size(), 1u);
  EXPECT_EQ(ev.demoted()[0], std::make_pair(victim, std::string("int4-g64-naive")));
  // The victim no longer uses the codec; every other low-bit tensor may keep it; it fits.
  const runtime::Decision& d = r->plan.decisions[static_cast<std::size_t>(victim)];
  EXPECT_FALSE(d.policy == runtime::Policy::compress && d.codec == "int4-g64-naive");
  EXPECT_LE(r->predicted_peak, budget);
  EXPECT_EQ(runtime::predict_step_memory(graph_, r->plan, 1, fixed_).total_peak, r->predicted_peak);
  bool victim_changed = false;
  for (const PlanChange& c : r->changes) {
    victim_changed = victim_changed || c.tensor == graph_.tensor(victim).name;
  }
  EXPECT_TRUE(victim_changed);
}

TEST_F(EvolutionTest, NoiseAroundTheToleranceDoesNotMakeThePlanFlap) {
  const std::size_t budget = budget_share(0.45);
  EvolutionOptions o = options(1);
  o.tolerance = 0.02;  // the codec's profiled 0.01 times the noise below
  Evolution ev(graph_, &costs_, o);
  const runtime::Plan start = start_plan(budget);
  const auto comp = compressed(start);
  ASSERT_FALSE(comp.empty());
  CodecMonitor& m = *ev.monitor();
  std::optional<Refusal> refused;
  // Alternating just above and just below the tolerance: never two in a row above.
  int replans = 0;
  for (std::int64_t step = 1; step <= 11; ++step) {  // ends below
    m.begin_step(step);
    for (const auto& [t, c] : comp) {
      CodecSample s;
      // Estimated gradient error: sampled tensor error x the profile's ratio.
      const double ratio = c == "int4-g64-naive" ? 0.01 / 0.09 : 0.002 / 0.003;
      s.tensor_error =
          (step % 2 == 0 ? 1.2 : 0.8) * o.tolerance / ratio * (c == "int4-g64-naive" ? 1.0 : 0.2);
      m.record(t, c, s);
    }
    if (ev.at_boundary(step, start, budget, refused)) ++replans;
  }
  EXPECT_EQ(replans, 0);
  EXPECT_TRUE(ev.demoted().empty());
  // Steadily above: demoted once (after two samples in a row), then never changed back.
  runtime::Plan current = start;
  for (std::int64_t step = 12; step <= 24; ++step) {
    m.begin_step(step);
    for (const auto& [t, c] : compressed(current)) {
      CodecSample s;
      s.tensor_error = c == "int4-g64-naive" ? 1.2 * o.tolerance * 9 : 0.001;
      m.record(t, c, s);
    }
    if (std::optional<Replan> r = ev.at_boundary(step, current, budget, refused)) {
      ++replans;
      EXPECT_EQ(step, 13);  // the second sample in a row above
      current = r->plan;
    }
  }
  EXPECT_EQ(replans, 1);
  for (const auto& [t, c] : compressed(current)) EXPECT_NE(c, "int4-g64-naive");
}

TEST_F(EvolutionTest, ABudgetFileMovesTheBudgetOrIsRefused) {
  test::TempDir dir("evolution");
  const std::string file = (dir / "budget").string();
  EvolutionOptions o = options();
  o.budget_file = file;
  o.monitor = false;
  Evolution ev(graph_, &costs_, o);
  const std::size_t wide = budget_share(1.0);
  const runtime::Plan start = start_plan(wide);
  std::optional<Refusal> refused;
  EXPECT_FALSE(ev.at_boundary(1, start, wide, refused));  // no file yet
  EXPECT_FALSE(refused);
  std::ofstream(file) << "60%\n";
  std::optional<Replan> r = ev.at_boundary(2, start, wide, refused);
  ASSERT_TRUE(r) << (refused ? refused->message : "");
  EXPECT_FALSE(refused);
  EXPECT_EQ(r->reason, "budget");
  EXPECT_EQ(r->budget, budget_share(0.6));
  EXPECT_LE(runtime::predict_step_memory(graph_, r->plan, 1, fixed_).total_peak, r->budget);
  EXPECT_FALSE(ev.at_boundary(3, r->plan, r->budget, refused));  // unchanged content
  std::ofstream(file) << "1%\n";
  EXPECT_FALSE(ev.at_boundary(4, r->plan, r->budget, refused));
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->message.find("smallest feasible budget"), std::string::npos)
      << refused->message;
  std::ofstream(file) << "lots\n";
  EXPECT_FALSE(ev.at_boundary(5, r->plan, r->budget, refused));
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->message.find("not a budget"), std::string::npos) << refused->message;
}

// Op times that drift from the costs by more than the threshold in two sampled steps in a
// row replace them (reason "drift"); within it, nothing happens.
TEST_F(EvolutionTest, CostDriftBeyondTheThresholdReplans) {
  const std::size_t budget = budget_share(0.45);
  Evolution ev(graph_, &costs_, options(1));
  const runtime::Plan start = start_plan(budget);
  std::optional<Refusal> refused;
  auto times = [&](double factor) {
    std::vector<runtime::OpTiming> t(graph_.ops().size());
    for (std::size_t o = 0; o < t.size(); ++o) {
      t[o].forward = factor * costs_.forward_seconds[o];
      t[o].backward = factor * costs_.backward_seconds[o];
    }
    return t;
  };
  for (std::int64_t step = 1; step <= 4; ++step) {  // 20% slower: within 25%
    ev.observe_op_times(times(1.2));
    EXPECT_FALSE(ev.at_boundary(step, start, budget, refused));
  }
  EXPECT_EQ(ev.costs()->forward_seconds, costs_.forward_seconds);  // unchanged so far
  ev.observe_op_times(times(3.0));
  EXPECT_FALSE(ev.at_boundary(5, start, budget, refused));  // once: not yet
  EXPECT_EQ(ev.costs()->forward_seconds, costs_.forward_seconds);
  ev.observe_op_times(times(3.0));
  // Twice: the costs are the measured ones (a uniform slowdown keeps the same plan
  // optimal, so no re-plan need follow; one that does is reason "drift").
  if (std::optional<Replan> r = ev.at_boundary(6, start, budget, refused)) {
    EXPECT_EQ(r->reason, "drift");
    EXPECT_LE(r->predicted_peak, budget);
  }
  for (std::size_t o = 0; o < graph_.ops().size(); ++o) {
    EXPECT_DOUBLE_EQ(ev.costs()->forward_seconds[o], 3.0 * costs_.forward_seconds[o]);
    EXPECT_DOUBLE_EQ(ev.costs()->backward_seconds[o], 3.0 * costs_.backward_seconds[o]);
  }
  // Codec times scaled alike: every plan's predicted time is three times the old one's.
  const plan::PolicyPlanner before(graph_, 1, fixed_, &costs_, 0.05);
  const plan::PolicyPlanner after(graph_, 1, fixed_, ev.costs(), 0.05);
  EXPECT_NEAR(after.predict_seconds(start), 3.0 * before.predict_seconds(start),
              1e-9 * after.predict_seconds(start));
}

// The first steps of a run are all sampled (a resumed run's too), then every period-th.
TEST_F(EvolutionTest, TheMonitorSamplesTheWarmUpOfEveryRunThenEveryPeriod) {
  CodecMonitor m(graph_, costs_, 0.05);
  m.set_period(50);
  m.set_warmup(10);
  std::vector<std::int64_t> sampled;
  for (std::int64_t step = 1; step <= 120; ++step) {
    m.begin_step(step);
    if (m.sampling()) sampled.push_back(step);
  }
  std::vector<std::int64_t> want{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 100};
  EXPECT_EQ(sampled, want);
  m.set_first_step(1000);  // resumed after step 1000
  sampled.clear();
  for (std::int64_t step = 1001; step <= 1060; ++step) {
    m.begin_step(step);
    if (m.sampling()) sampled.push_back(step);
  }
  want = {1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1050};
  EXPECT_EQ(sampled, want);
}

}  // namespace
}  // namespace adacc::evolve
