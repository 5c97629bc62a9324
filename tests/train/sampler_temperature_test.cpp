// The sampler's temperature: near zero, sampling picks the most likely token every time,
// so the text no longer depends on the seed; at temperature 1 it does. (Logits multiplied
// by the temperature instead of divided give the opposite: near-uniform picks.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "adacc/core/allocator.h"
#include "adacc/core/rng.h"
#include "adacc/model/config.h"
#include "adacc/model/gpt2.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/sampler.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

class SamplerTemperature : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() /
            ("adacc_sampler_temperature_test_" + std::to_string(::getpid()) + ".safetensors");
    const model::ModelConfig cfg = model::parse_config("L=1,C=32,H=2,V=256,T=32");
    Allocator alloc;
    model::Gpt2 gpt(cfg, alloc);
    Rng rng(7);
    gpt.init_weights(rng);
    save_safetensors(path_, cfg, gpt.params());
  }
  void TearDown() override { fs::remove(path_); }

  // The texts sampled with seeds 1..5 at `temperature`, as a set.
  std::set<std::string> texts_at(float temperature) const {
    std::set<std::string> texts;
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      SampleOptions o;
      o.model = path_;
      o.prompt = "ab";
      o.tokens = 16;
      o.temperature = temperature;
      o.seed = seed;
      o.threads = 1;
      texts.insert(sample(o));
    }
    return texts;
  }

  fs::path path_;
};

TEST_F(SamplerTemperature, NearZeroItIsGreedyAndTheSeedNoLongerMatters) {
  EXPECT_EQ(texts_at(1e-6f).size(), 1u);
}

TEST_F(SamplerTemperature, AtOneTheSeedChangesTheText) {
  EXPECT_EQ(texts_at(1.0f).size(), 5u);
}

}  // namespace
}  // namespace adacc::train
