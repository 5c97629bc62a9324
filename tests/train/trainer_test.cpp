// The training loop: a tiny model overfits a short text; an interrupted and resumed run
// reproduces the uninterrupted run's losses bit for bit; gradients above --grad-clip are
// scaled to it (and only those, and none when it is 0); bad inputs are rejected with
// one-line errors before anything is written. (More on resume: resume_test.cpp.)
#include "adacc/train/trainer.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/param_set.h"
#include "adacc/train/checkpoint.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public ::testing::Test {
 protected:
  fs::path write_text(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  static TrainOptions tiny_options(const fs::path& data) {
    TrainOptions o;
    o.data = data;
    o.model = "L=2,C=32,H=2,V=256,T=32";
    o.batch = 4;
    o.seq = 16;
    o.steps = 30;
    o.lr = 3e-3f;
    o.val_fraction = 0;
    o.threads = 1;  // tiny ops: one thread avoids barrier overhead when tests run in parallel
    return o;
  }

  test::TempDir tmp_{"trainer_test"};

  fs::path dir_ = tmp_.path();
};

std::string pangrams(int repeats) {
  std::string text;
  for (int i = 0; i < repeats; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  return text;
}

TEST_F(TrainerTest, TinyModelOverfitsShortText) {
  TrainOptions o = tiny_options(write_text("short.txt", pangrams(6)));
  o.steps = 300;
  o.lr = 1e-2f;
  o.weight_decay = 0;
  o.warmup = 10;
  std::vector<float> losses;
  TrainCallbacks cb;
  cb.on_step = [&](const StepReport& r) { losses.push_back(r.loss); };
  const TrainResult r = train(o, cb);
  ASSERT_EQ(losses.size(), 300u);
  EXPECT_GT(losses.front(), 4.0f);  // ~ln(256) at initialisation
  EXPECT_LT(r.last_loss, 0.1f);
}

TEST_F(TrainerTest, ResumedRunReproducesUninterruptedLossesBitForBit) {
  const fs::path data = write_text("data.txt", pangrams(40));
  for (Shuffle shuffle : {Shuffle::on, Shuffle::off}) {
    TrainOptions o = tiny_options(data);
    o.shuffle = shuffle;
    o.val_fraction = 0.1;
    o.val_batches = 2;
    o.val_every = 7;
    std::vector<float> full, resumed;
    TrainCallbacks cb;
    cb.on_step = [&](const StepReport& r) { full.push_back(r.loss); };
    const std::string tag = shuffle == Shuffle::on ? "on" : "off";
    o.out_dir = dir_ / ("full-" + tag);
    const TrainResult a = train(o, cb);

    cb.on_step = [&](const StepReport& r) { resumed.push_back(r.loss); };
    o.out_dir = dir_ / ("part-" + tag);
    o.stop_after = 13;
    const TrainResult b1 = train(o, cb);
    EXPECT_EQ(b1.steps, 13);
    o.stop_after = -1;
    o.resume = o.out_dir;
    const TrainResult b2 = train(o, cb);
    EXPECT_EQ(b2.steps, 30);
    ASSERT_EQ(full.size(), resumed.size());
    for (std::size_t i = 0; i < full.size(); ++i) {
      ASSERT_EQ(full[i], resumed[i]) << "step " << i + 1;  // bit-exact
    }
    EXPECT_EQ(a.val_loss, b2.val_loss);
  }
}

TEST_F(TrainerTest, WritesMetricsAsJsonLines) {
  TrainOptions o = tiny_options(write_text("data.txt", pangrams(40)));
  o.steps = 5;
  o.val_fraction = 0.2;
  o.val_batches = 1;
  o.metrics = dir_ / "metrics" / "run.jsonl";
  train(o);
  std::ifstream in(o.metrics);
  std::string line;
  int steps = 0, vals = 0;
  while (std::getline(in, line)) {
    if (line.find("\"val_loss\"") != std::string::npos) {
      ++vals;
      continue;
    }
    ++steps;
    for (const char* key : {"\"step\"", "\"loss\"", "\"ms\"", "\"tok_s\"", "\"peak_bytes\""}) {
      EXPECT_NE(line.find(key), std::string::npos) << key << " in " << line;
    }
  }
  EXPECT_EQ(steps, 5);
  EXPECT_EQ(vals, 1);
}

// What one training step did to the gradient, seen from outside the loop: the gradient
// of the backward pass (through TrainCallbacks::on_gradients), the norm the step
// reported, and the gradient AdamW received, recovered from the first moment saved after
// the step: m = (1 - beta1) * g when m starts at 0.
struct FirstStep {
  std::vector<float> raw;
  double reported_norm = 0;
  std::vector<double> applied;
};

double norm_of(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

FirstStep first_step(TrainOptions o, const fs::path& out) {
  FirstStep f;
  o.out_dir = out;
  o.stop_after = 1;
  TrainCallbacks cb;
  cb.on_gradients = [&](std::int64_t, Tensor& g) {
    f.raw.assign(g.data<float>(), g.data<float>() + g.numel());
  };
  cb.on_step = [&](const StepReport& r) { f.reported_norm = r.grad_norm; };
  train(o, cb);
  const model::ModelConfig cfg = read_checkpoint_config(out);
  Allocator alloc;
  model::ParamSet p(cfg, alloc, MemCategory::params, "p");
  model::ParamSet m(cfg, alloc, MemCategory::optimizer, "m");
  model::ParamSet v(cfg, alloc, MemCategory::optimizer, "v");
  load_checkpoint(out, cfg, p, m, v);
  const float* md = m.flat.data<float>();
  for (std::int64_t i = 0; i < m.flat.numel(); ++i) {
    f.applied.push_back(md[i] / (1.0 - double{o.beta1}));
  }
  return f;
}

TEST_F(TrainerTest, GradientClippingScalesTheGlobalNormToTheCapOnlyWhenAbove) {
  TrainOptions o = tiny_options(write_text("data.txt", pangrams(40)));
  o.beta1 = 0.5f;  // a first moment of the same size as the gradient

  o.grad_clip = 0;  // off: AdamW gets the gradient of the backward pass
  const FirstStep off = first_step(o, dir_ / "off");
  std::vector<double> raw(off.raw.begin(), off.raw.end());
  const double norm = norm_of(raw);
  ASSERT_GT(norm, 0.1);
  EXPECT_NEAR(off.reported_norm, norm, 1e-5 * norm);
  ASSERT_EQ(off.applied.size(), raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    ASSERT_NEAR(off.applied[i], raw[i], 1e-6 * std::abs(raw[i]) + 1e-12) << i;
  }

  // A cap below the norm: the gradient is scaled to the cap, its direction kept.
  o.grad_clip = static_cast<float>(norm / 4);
  const FirstStep below = first_step(o, dir_ / "below");
  EXPECT_EQ(below.raw, off.raw);  // the same step: clipping comes after the backward pass
  EXPECT_NEAR(norm_of(below.applied), o.grad_clip, 1e-5 * o.grad_clip);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    ASSERT_NEAR(below.applied[i], raw[i] / 4, 1e-5 * std::abs(raw[i]) + 1e-12) << i;
  }

  // A cap above the norm: the gradient is untouched (bit for bit: the same moments).
  o.grad_clip = static_cast<float>(norm * 4);
  const FirstStep above = first_step(o, dir_ / "above");
  EXPECT_EQ(above.applied, off.applied);
}

// Runs training expecting an error of type E whose message contains `needle`, and checks
// that nothing was written to the output directory.
template <class E>
void expect_rejected(const TrainOptions& o, const std::string& needle) {
  try {
    train(o);
    FAIL() << "expected an error mentioning '" << needle << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
  if (!o.out_dir.empty()) {
    EXPECT_FALSE(fs::exists(o.out_dir)) << o.out_dir;
  }
  if (!o.metrics.empty()) {
    EXPECT_FALSE(fs::exists(o.metrics)) << o.metrics;
  }
}

TEST_F(TrainerTest, BadInputsAreRejectedBeforeAnythingIsWritten) {
  const fs::path data = write_text("data.txt", pangrams(40));
  TrainOptions o = tiny_options(data);
  o.out_dir = dir_ / "out";
  o.metrics = dir_ / "out" / "metrics.jsonl";

  TrainOptions missing = o;
  missing.data = dir_ / "nope.txt";
  expect_rejected<InvalidArgument>(missing, "nope.txt");

  TrainOptions empty = o;
  empty.data = write_text("empty.txt", "");
  expect_rejected<InvalidArgument>(empty, "empty.txt");

  TrainOptions vocab = o;
  vocab.model = "L=2,C=32,H=2,V=100,T=32";  // bytes of the text reach 'z' = 122
  expect_rejected<InvalidArgument>(vocab, "vocabulary");

  TrainOptions too_long = o;
  too_long.seq = 64;  // the model's maximum is 32
  expect_rejected<InvalidArgument>(too_long, "maximum");

  TrainOptions budget = o;
  budget.budget = "64KiB";  // the parameters alone need more
  expect_rejected<PlanInfeasible>(budget, "budget");

  TrainOptions bad_init = o;
  bad_init.init = write_text("init.safetensors", std::string("\x08\x00\x00", 3));
  expect_rejected<FormatError>(bad_init, "init.safetensors");
}

TEST_F(TrainerTest, RecomputePoliciesTrainBitIdenticallyAndBudgetsAreEnforced) {
  const fs::path data = write_text("data.txt", pangrams(40));
  std::vector<float> none, full;
  TrainOptions o = tiny_options(data);
  o.steps = 8;
  TrainCallbacks cb;
  cb.on_step = [&](const StepReport& r) { none.push_back(r.loss); };
  const TrainResult a = train(o, cb);
  o.policy = "full";
  o.budget = "60%";  // of the keep-everything step: full checkpointing needs ~53% here
  cb.on_step = [&](const StepReport& r) { full.push_back(r.loss); };
  const TrainResult b = train(o, cb);
  EXPECT_EQ(none, full);
  EXPECT_LT(b.peak_bytes, a.peak_bytes);

  TrainOptions tight = o;
  tight.policy = "none";
  tight.out_dir = dir_ / "out";
  expect_rejected<PlanInfeasible>(tight, "smallest feasible budget");
  TrainOptions bad_policy = o;
  bad_policy.policy = "magic";
  expect_rejected<InvalidArgument>(bad_policy, "magic");
}

TEST_F(TrainerTest, RepeatedNanStopsAndKeepsTheLastGoodCheckpoint) {
  TrainOptions o = tiny_options(write_text("data.txt", pangrams(40)));
  o.lr = 1e30f;  // the first update blows the weights up; the steps after it are NaN/inf
  o.grad_clip = 0;
  o.steps = 50;
  o.save_every = 1;
  o.max_bad_steps = 3;
  o.out_dir = dir_ / "out";
  std::vector<std::string> messages;
  TrainCallbacks cb;
  cb.on_message = [&](const std::string& m) { messages.push_back(m); };
  std::string what;
  try {
    train(o, cb);
    ADD_FAILURE() << "no NumericalError";
  } catch (const NumericalError& e) {
    what = e.what();
  }
  EXPECT_GE(messages.size(), 3u);
  EXPECT_NE(messages.back().find("update skipped"), std::string::npos) << messages.back();
  // The checkpoint is the last one saved before the NaN steps, and the message says so.
  std::ifstream state(o.out_dir / "checkpoint.json");
  const std::string json((std::istreambuf_iterator<char>(state)), {});
  const std::size_t at = json.find("\"step\": ");
  ASSERT_NE(at, std::string::npos) << json;
  const int saved = std::stoi(json.substr(at + 8));
  const std::size_t last = what.find("last at step ");
  ASSERT_NE(last, std::string::npos) << what;
  const int failed = std::stoi(what.substr(last + 13));
  EXPECT_EQ(saved, failed - o.max_bad_steps) << what;
  EXPECT_NE(what.find("(step " + std::to_string(saved) + ") is in"), std::string::npos) << what;
  EXPECT_FALSE(fs::exists(o.out_dir / ("model-" + std::to_string(failed) + ".safetensors")));
}

}  // namespace
}  // namespace adacc::train
