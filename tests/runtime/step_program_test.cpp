// Lowering plans to step programs (runtime/step_program.h): the list equals the schedule
// the executor used to infer while the step ran (tests/runtime/reference_schedule.h) for
// keep-everything, recompute-everything and random plans; the list is well formed (every
// op finds what it reads, nothing is freed twice, a re-run rebuilds something); the
// executor runs exactly the list (its timeline's labels, one per instruction), the same
// list every step; the memory model's timeline has the same points; infeasible plans throw
// what validate throws.
#include "adacc/runtime/step_program.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/core/rng.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_analysis.h"
#include "adacc/runtime/step_executor.h"
#include "runtime/reference_schedule.h"
#include "support/expect_error.h"
#include "support/random_batch.h"
#include "support/small_graph.h"

namespace adacc::runtime {
namespace {

using model::Pass;
using model::TensorId;
using model::TensorKind;
using K = Instruction::Kind;
using test::expect_error;

// Recompute every saved activation that can be recomputed; keep the rest.
Plan recompute_all_plan(const model::StepGraph& graph) {
  const StepAnalysis a = analyze_step(graph);
  Plan plan = keep_all_plan(graph);
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    if (a.saved[i] && a.recomputable[i]) plan.decisions[i].policy = Policy::recompute;
  }
  return plan;
}

// Valid random plans: each saved activation kept, recomputed or compressed with one of its
// admissible codecs, at random; plans that validate refuses are drawn again.
std::vector<Plan> random_plans(const model::StepGraph& graph, int count, std::uint64_t seed) {
  const StepAnalysis a = analyze_step(graph);
  Rng rng(seed);
  std::vector<Plan> plans;
  while (static_cast<int>(plans.size()) < count) {
    Plan plan = keep_all_plan(graph);
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      if (!a.saved[i] || graph.tensors()[i].kind != TensorKind::activation) continue;
      const std::uint64_t choices = 2 + a.codecs[i].size();
      const std::uint64_t c = rng.next_u64() % choices;
      if (c == 1 && a.recomputable[i]) {
        plan.decisions[i].policy = Policy::recompute;
      } else if (c >= 2) {
        plan.decisions[i] = {Policy::compress, std::string(a.codecs[i][c - 2].codec->name())};
      }
    }
    try {
      validate(graph, plan);
      plans.push_back(std::move(plan));
    } catch (const Error&) {
    }
  }
  return plans;
}

// The program, checked instruction by instruction on presence flags, independently of how
// it was made: every forward and re-run finds its inputs, every backward its saved
// tensors; a tensor is encoded, decoded or freed only when it exists; a re-run rebuilds at
// least one missing output; a forward op's outputs do not exist before it runs.
void expect_well_formed(const model::StepGraph& graph, const StepProgram& program) {
  const std::size_t n = graph.tensors().size();
  std::vector<char> value(n, 0), encoded(n, 0), grad(n, 0);
  auto at = [](TensorId id) { return static_cast<std::size_t>(id); };
  for (std::size_t i = 0; i < n; ++i) {
    value[i] = graph.tensors()[i].kind == TensorKind::activation ? 0 : 1;
  }
  for (std::size_t k = 0; k < program.instructions.size(); ++k) {
    const Instruction& ins = program.instructions[k];
    const std::string where = std::to_string(k) + ": " + instruction_label(graph, ins);
    switch (ins.kind) {
      case K::forward:
      case K::recompute: {
        const model::OpNode& op = graph.op(ins.op);
        for (TensorId in : op.inputs()) EXPECT_TRUE(value[at(in)]) << where;
        bool rebuilt = false;
        for (TensorId out : op.outputs()) {
          const Pass pass = ins.kind == K::forward ? program.pass : Pass::train;
          if (!op.produces(out, pass)) continue;
          if (ins.kind == K::forward) {
            EXPECT_FALSE(value[at(out)]) << where;
          }
          rebuilt = rebuilt || value[at(out)] == 0;
          value[at(out)] = 1;
        }
        if (ins.kind == K::recompute) {
          EXPECT_TRUE(rebuilt) << where << " rebuilds nothing";
        }
        break;
      }
      case K::backward: {
        const model::OpNode& op = graph.op(ins.op);
        for (TensorId s : op.saved()) EXPECT_TRUE(value[at(s)]) << where;
        for (TensorId in : op.inputs()) {
          if (graph.tensor(in).kind == TensorKind::activation) grad[at(in)] = 1;
        }
        if (op.backward_reads_output_grad()) grad[at(op.outputs().front())] = 1;
        break;
      }
      case K::encode:
        EXPECT_TRUE(value[at(ins.tensor)]) << where;
        EXPECT_NE(ins.codec, nullptr) << where;
        value[at(ins.tensor)] = 0;
        encoded[at(ins.tensor)] = 1;
        break;
      case K::decode:
        EXPECT_TRUE(encoded[at(ins.tensor)]) << where;
        EXPECT_FALSE(value[at(ins.tensor)]) << where;
        value[at(ins.tensor)] = 1;
        break;
      case K::free_value:
        EXPECT_TRUE(value[at(ins.tensor)]) << where;
        value[at(ins.tensor)] = 0;
        break;
      case K::free_encoded:
        EXPECT_TRUE(encoded[at(ins.tensor)]) << where;
        encoded[at(ins.tensor)] = 0;
        break;
      case K::free_grad:
        EXPECT_TRUE(grad[at(ins.tensor)]) << where;
        grad[at(ins.tensor)] = 0;
        break;
    }
  }
  if (program.pass == Pass::train) {
    // At the end of the backward nothing of the step is held but what the fused loss made
    // in the forward and no backward reads after (its per-position losses).
    for (std::size_t i = 0; i < n; ++i) {
      const model::TensorInfo& t = graph.tensors()[i];
      if (t.kind != TensorKind::activation) continue;
      EXPECT_FALSE(encoded[i]) << t.name;
      EXPECT_FALSE(grad[i]) << t.name;
      if (t.role != model::TensorRole::losses) {
        EXPECT_FALSE(value[i]) << t.name;
      }
    }
  }
}

class StepProgramTest : public test::SmallGraph {
 protected:
  void expect_matches_reference(const Plan& plan) {
    const int n_ops = static_cast<int>(graph_.ops().size());
    for (Pass pass : {Pass::train, Pass::eval}) {
      const StepProgram p = lower(graph_, plan, pass);
      EXPECT_EQ(p.pass, pass);
      EXPECT_EQ(p.forward_ops, n_ops);
      EXPECT_EQ(p.instructions, test::reference_schedule(graph_, plan, pass, n_ops))
          << plan.planner << (pass == Pass::train ? " train" : " eval");
      expect_well_formed(graph_, p);
    }
    const StepProgram features = lower(graph_, plan, Pass::eval, n_ops - 1);
    EXPECT_EQ(features.instructions, test::reference_schedule(graph_, plan, Pass::eval, n_ops - 1));
    expect_well_formed(graph_, features);
  }
};

TEST_P(StepProgramTest, KeepEverythingHasNoRerunsAndNoCodecs) {
  const Plan plan = keep_all_plan(graph_);
  expect_matches_reference(plan);
  const StepProgram p = lower(graph_, plan, Pass::train);
  int forwards = 0, backwards = 0;
  for (const Instruction& ins : p.instructions) {
    EXPECT_NE(ins.kind, K::recompute);
    EXPECT_NE(ins.kind, K::encode);
    EXPECT_NE(ins.kind, K::decode);
    forwards += ins.kind == K::forward ? 1 : 0;
    backwards += ins.kind == K::backward ? 1 : 0;
  }
  EXPECT_EQ(forwards, static_cast<int>(graph_.ops().size()));
  EXPECT_EQ(backwards, static_cast<int>(graph_.ops().size()));
}

TEST_P(StepProgramTest, RecomputeEverythingMatchesTheReference) {
  const Plan plan = recompute_all_plan(graph_);
  expect_matches_reference(plan);
  // Every block op but the loss re-runs at least once.
  const StepProgram p = lower(graph_, plan, Pass::train);
  std::vector<int> reruns(graph_.ops().size(), 0);
  for (const Instruction& ins : p.instructions) {
    if (ins.kind == K::recompute) {
      ++reruns[static_cast<std::size_t>(ins.op)];
      EXPECT_TRUE(ins.in_backward);
      EXPECT_TRUE(graph_.op(ins.op).recomputable());
    }
  }
  for (std::size_t o = 0; o < reruns.size(); ++o) {
    if (graph_.op(static_cast<int>(o)).layer() >= 0) {
      EXPECT_GT(reruns[o], 0) << graph_.op(static_cast<int>(o)).name();
    }
  }
}

TEST_P(StepProgramTest, RandomPlansMatchTheReference) {
  for (const Plan& plan : random_plans(graph_, 40, 17)) expect_matches_reference(plan);
}

TEST_P(StepProgramTest, CompressedTensorsAreEncodedAndFreedOnce) {
  for (const Plan& plan : random_plans(graph_, 10, 5)) {
    const StepProgram p = lower(graph_, plan, Pass::train);
    const StepAnalysis a = analyze_step(graph_);
    std::vector<int> enc(graph_.tensors().size(), 0), dec(enc), freed(enc);
    for (const Instruction& ins : p.instructions) {
      const auto i = static_cast<std::size_t>(ins.tensor);
      if (ins.kind == K::encode) ++enc[i];
      if (ins.kind == K::decode) ++dec[i];
      if (ins.kind == K::free_encoded) ++freed[i];
      if (ins.kind == K::encode || ins.kind == K::decode || ins.kind == K::free_encoded) {
        EXPECT_EQ(ins.codec, &compress::codec_by_name(plan.decisions[i].codec));
      }
    }
    for (std::size_t i = 0; i < enc.size(); ++i) {
      const int want = a.saved[i] && plan.decisions[i].policy == Policy::compress ? 1 : 0;
      EXPECT_EQ(enc[i], want) << graph_.tensors()[i].name;
      // Decoded at most once: not at all when a re-run of its producer (for another of its
      // outputs) rebuilt it first, as attention's probabilities are with attn.out.
      EXPECT_LE(dec[i], want) << graph_.tensors()[i].name;
      EXPECT_EQ(freed[i], want) << graph_.tensors()[i].name;
    }
  }
}

TEST_P(StepProgramTest, InfeasiblePlansThrowWhatValidateThrows) {
  Plan plan = keep_all_plan(graph_);
  at(plan, "loss.grad").policy = Policy::recompute;
  expect_error<InvalidArgument>([&] { lower(graph_, plan, Pass::train); },
                                {"'loss.grad'", "cannot be recomputed", "keep or compress it"});
  // gelu.out re-run from fc.out, which is stored as a GELU derivative.
  plan = keep_all_plan(graph_);
  at(plan, "h1.fc.out") = {Policy::compress, "gelu-deriv-u8"};
  at(plan, "h1.gelu.out").policy = Policy::recompute;
  expect_error<PlanInfeasible>([&] { lower(graph_, plan, Pass::eval); },
                               {"recomputing 'h1.gelu.out'", "'h1.fc.out'", "derived form"});
  plan.decisions.pop_back();
  expect_error<InvalidArgument>([&] { lower(graph_, plan, Pass::train); }, {"decisions"});
  expect_error<InvalidArgument>([&] { lower(graph_, keep_all_plan(graph_), Pass::train, 3); },
                                {"cannot run"});
}

// The executor runs the list: its recorded timeline has one point per instruction with the
// instruction's label (between "before the step" and "after the step"), the memory model's
// too; and the list it runs is lowered once and the same every step.
class StepProgramExecution : public ::testing::TestWithParam<ops::AttentionKind> {};

TEST_P(StepProgramExecution, TheExecutorAndTheMemoryModelRunTheList) {
  model::ModelConfig cfg = model::parse_config("L=2,C=16,H=2,V=50,T=16");
  cfg.attention = GetParam();
  Allocator alloc;
  Context ctx(alloc, 2, 1);
  model::Gpt2 gpt(cfg, alloc);
  Rng rng(3);
  gpt.init_weights(rng);
  const model::StepGraph graph = gpt.build_graph(2, 8);
  test::TokenBatch batch = test::random_batch(alloc, rng, 2, 8, 50);
  std::vector<Plan> plans = {keep_all_plan(graph), recompute_all_plan(graph)};
  for (Plan& p : random_plans(graph, 4, 11)) plans.push_back(std::move(p));
  StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  exec.set_timeline_recording(true);
  for (const Plan& plan : plans) {
    exec.set_plan(plan);
    for (Pass pass : {Pass::train, Pass::eval}) {
      const StepProgram want = lower(graph, plan, pass);
      EXPECT_EQ(exec.program(pass), want);
      std::vector<std::string> labels = {"before the step"};
      for (const Instruction& ins : want.instructions)
        labels.push_back(instruction_label(graph, ins));
      labels.emplace_back("after the step");
      const StepTimeline predicted = predict_step_timeline(graph, plan, 2, {}, pass);
      ASSERT_EQ(predicted.size(), labels.size());
      for (std::size_t k = 0; k < labels.size(); ++k) EXPECT_EQ(predicted[k].label, labels[k]);
      const StepTimeline from_program = predict_step_timeline(graph, want, 2, {});
      EXPECT_EQ(first_difference(from_program, predicted), "");
      for (int step = 0; step < 2; ++step) {
        if (pass == Pass::train) {
          exec.forward_backward(batch.tokens, batch.targets);
        } else {
          exec.forward(batch.tokens, batch.targets);
        }
        ASSERT_EQ(exec.timeline().size(), labels.size());
        for (std::size_t k = 0; k < labels.size(); ++k) {
          EXPECT_EQ(exec.timeline()[k].label, labels[k]) << k;
        }
        EXPECT_EQ(exec.program(pass), want);  // the same list, not lowered again differently
      }
    }
    EXPECT_EQ(predict_step_memory(graph, plan, 2, {}).total_peak,
              predict_step_memory(graph, lower(graph, plan, Pass::train), 2, {}).total_peak);
  }
}

TEST(StepProgram, FormatCountsAndNumbersTheInstructions) {
  const model::StepGraph graph =
      model::build_gpt2_graph(model::parse_config("L=1,C=16,H=2,V=50,T=16"), 2, 8);
  Plan plan = keep_all_plan(graph);
  plan.decisions.at(static_cast<std::size_t>(graph.find("h0.gelu.out"))).policy = Policy::recompute;
  const StepProgram p = lower(graph, plan, Pass::train);
  const std::string text = format_step_program(graph, p);
  EXPECT_NE(text.find("schedule: " + std::to_string(p.instructions.size()) + " instructions"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("1 recompute"), std::string::npos) << text;
  EXPECT_NE(text.find("backward of h0.fc_proj (recomputing h0.gelu)"), std::string::npos) << text;
  EXPECT_NE(text.find("\n1  forward of embed\n"), std::string::npos) << text;
}

INSTANTIATE_TEST_SUITE_P(Attention, StepProgramTest, test::kAttentionForms, test::attention_name);
INSTANTIATE_TEST_SUITE_P(Attention, StepProgramExecution, test::kAttentionForms,
                         test::attention_name);

}  // namespace
}  // namespace adacc::runtime
