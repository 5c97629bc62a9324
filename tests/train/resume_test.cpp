// Resuming a run continues it exactly: after steps whose update was skipped for a
// non-finite gradient (AdamW's bias correction counts updates, not steps), across epoch
// boundaries of the shuffled order, and with the saved RNG state; the resumed run's
// checkpoint files equal the uninterrupted run's byte for byte, and a model sampled at a
// temperature from either gives the same text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <vector>

#include "adacc/train/checkpoint.h"
#include "adacc/train/sampler.h"
#include "adacc/train/trainer.h"
#include "support/temp_dir.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

class ResumeTest : public ::testing::Test {
 protected:
  // `repeats` pangrams of 45 bytes: 8 give 5 batches of 4x16 per epoch.
  fs::path write_data(int repeats) {
    std::string text;
    for (int i = 0; i < repeats; ++i) text += "the quick brown fox jumps over the lazy dog. ";
    const fs::path p = dir_ / "data.txt";
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  static TrainOptions tiny_options(const fs::path& data) {
    TrainOptions o;
    o.data = data;
    o.model = "L=2,C=16,H=2,V=256,T=32";
    o.batch = 4;
    o.seq = 16;
    o.steps = 16;
    o.lr = 3e-3f;
    o.warmup = 2;
    o.val_fraction = 0;
    o.threads = 1;
    return o;
  }

  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The checkpoint files of two run directories are equal byte for byte: checkpoint.json
  // (step, optimizer steps, RNG, loader, options) and the model and moments it names.
  static void expect_same_checkpoint(const fs::path& a, const fs::path& b) {
    const TrainingState sa = read_checkpoint_state(a), sb = read_checkpoint_state(b);
    EXPECT_EQ(sa.step, sb.step);
    EXPECT_EQ(sa.optimizer_steps, sb.optimizer_steps);
    EXPECT_EQ(sa.rng, sb.rng) << "the RNG state was not carried through the resume";
    EXPECT_EQ(sa.loader.position, sb.loader.position);
    EXPECT_EQ(sa.loader.epoch, sb.loader.epoch);
    for (const std::string& name :
         {std::string("checkpoint.json"), "model-" + std::to_string(sa.step) + ".safetensors",
          "optim-" + std::to_string(sa.step) + ".safetensors"}) {
      ASSERT_TRUE(fs::exists(a / name)) << a / name;
      EXPECT_TRUE(slurp(a / name) == slurp(b / name)) << name << " differs";
    }
  }

  test::TempDir tmp_{"resume_test"};

  fs::path dir_ = tmp_.path();
};

// Makes the gradient of the chosen (1-based) steps NaN, so the trainer skips their update.
TrainCallbacks poison_steps(const std::set<std::int64_t>& bad, std::vector<float>* losses,
                            std::vector<std::int64_t>* skipped) {
  TrainCallbacks cb;
  cb.on_gradients = [bad](std::int64_t step, Tensor& grads) {
    if (bad.count(step) != 0) grads.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  };
  cb.on_step = [losses, skipped](const StepReport& r) {
    losses->push_back(r.loss);
    if (r.skipped) skipped->push_back(r.step);
  };
  return cb;
}

TEST_F(ResumeTest, AfterSkippedUpdatesContinuesAdamWFromItsOwnStepCount) {
  const std::set<std::int64_t> bad = {3, 4, 9};
  TrainOptions o = tiny_options(write_data(8));
  o.out_dir = dir_ / "whole";
  std::vector<float> whole;
  std::vector<std::int64_t> whole_skipped;
  train(o, poison_steps(bad, &whole, &whole_skipped));
  EXPECT_EQ(whole_skipped, std::vector<std::int64_t>(bad.begin(), bad.end()));
  EXPECT_EQ(read_checkpoint_state(o.out_dir).optimizer_steps, o.steps - 3);

  // Stopped right after a skipped step (9) and one step after it (10).
  for (const std::int64_t stop : {9, 10}) {
    SCOPED_TRACE("stopped after step " + std::to_string(stop));
    TrainOptions part = o;
    part.out_dir = dir_ / ("part-" + std::to_string(stop));
    part.stop_after = stop;
    std::vector<float> losses;
    std::vector<std::int64_t> skipped;
    const TrainCallbacks cb = poison_steps(bad, &losses, &skipped);
    train(part, cb);
    const TrainingState saved = read_checkpoint_state(part.out_dir);
    EXPECT_EQ(saved.step, stop);
    EXPECT_EQ(saved.optimizer_steps, stop - 3) << "the checkpoint must count AdamW updates";

    part.stop_after = -1;
    part.resume = part.out_dir;
    train(part, cb);
    EXPECT_EQ(skipped, whole_skipped);
    ASSERT_EQ(losses.size(), whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      ASSERT_EQ(losses[i], whole[i]) << "step " << i + 1;  // bit-exact
    }
    expect_same_checkpoint(o.out_dir, part.out_dir);
    EXPECT_TRUE(slurp(o.out_dir / "model.safetensors") ==
                slurp(part.out_dir / "model.safetensors"));
  }
}

TEST_F(ResumeTest, ShuffledOrderRngStateAndSamplingContinueAcrossEpochs) {
  // 5 batches per epoch: stopped in the second epoch, resumed through the fourth.
  TrainOptions o = tiny_options(write_data(8));
  o.shuffle = Shuffle::on;
  o.seed = 4242;
  o.out_dir = dir_ / "whole";
  std::vector<float> whole, resumed;
  TrainCallbacks cb;
  cb.on_step = [&](const StepReport& r) { whole.push_back(r.loss); };
  train(o, cb);
  EXPECT_EQ(read_checkpoint_state(o.out_dir).loader.epoch, 3u);

  TrainOptions part = o;
  part.out_dir = dir_ / "part";
  part.stop_after = 7;
  cb.on_step = [&](const StepReport& r) { resumed.push_back(r.loss); };
  train(part, cb);
  EXPECT_EQ(read_checkpoint_state(part.out_dir).loader.epoch, 1u);
  part.stop_after = -1;
  part.resume = part.out_dir;
  train(part, cb);
  ASSERT_EQ(resumed.size(), whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    ASSERT_EQ(resumed[i], whole[i]) << "step " << i + 1;  // the same batch, bit-exact
  }
  expect_same_checkpoint(o.out_dir, part.out_dir);

  // Sampling at a temperature from the two final models gives the same text; another
  // seed gives other text (the comparison is not of two deterministic outputs).
  SampleOptions s;
  s.prompt = "the ";
  s.tokens = 48;
  s.temperature = 1.5f;
  s.threads = 1;
  s.model = o.out_dir;
  const std::string from_whole = sample(s);
  s.model = part.out_dir;
  EXPECT_EQ(sample(s), from_whole);
  s.seed = 7;
  EXPECT_NE(sample(s), from_whole);
}

}  // namespace
}  // namespace adacc::train
