// A test fixture: a small GPT-2 (L=2, C=64, H=4, V=64) with random weights and one random
// batch (B=2, T=16), for tests that run steps of a real model.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "adacc/model/gpt2.h"
#include "reference/test_util.h"
#include "support/random_batch.h"

namespace adacc::test {

class SmallGpt2 : public ::testing::Test {
 protected:
  static constexpr int B = 2, T = 16;
  SmallGpt2(ops::AttentionKind attention, std::uint64_t seed)
      : gpt_(config(attention), alloc_), graph_(gpt_.build_graph(B, T)) {
    Rng rng(seed);
    gpt_.init_weights(rng);
    TokenBatch batch = random_batch(alloc_, rng, B, T, 64);
    tokens_ = batch.tokens;
    targets_ = batch.targets;
  }
  static model::ModelConfig config(ops::AttentionKind attention) {
    model::ModelConfig c = model::parse_config("L=2,C=64,H=4,V=64,T=32");
    c.attention = attention;
    return c;
  }

  Allocator alloc_;
  Context ctx_{alloc_, 2, 1};
  model::Gpt2 gpt_;
  model::StepGraph graph_;
  Tensor tokens_, targets_;
};

}  // namespace adacc::test
