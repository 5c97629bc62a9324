// GPT-2 configs, parameter layout, initialisation and the step graph's structure.
#include "adacc/model/gpt2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "adacc/core/error.h"

namespace adacc::model {
namespace {

TEST(ModelConfig, NamedSizesHaveGpt2ParameterCounts) {
  // Counts with the padded vocabulary (Vp = 50304), as llm.c reports them.
  EXPECT_EQ(named_config("gpt2").num_parameters(), 124475904);
  EXPECT_EQ(named_config("gpt2-medium").num_parameters(), 354871296);
  EXPECT_EQ(named_config("gpt2-tiny").n_layer, 6);
  EXPECT_EQ(named_config("gpt2-tiny").n_embd, 384);
  EXPECT_EQ(named_config("gpt2-xl").n_head, 25);
  EXPECT_EQ(named_config("gpt2-large").padded_vocab, 50304);
  EXPECT_THROW(named_config("gpt3"), InvalidArgument);
}

TEST(ModelConfig, ParsesCustomSpecsAndRejectsBadOnes) {
  const ModelConfig c = parse_config("L=2,C=64,H=4,V=300,T=128");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.vocab, 300);
  EXPECT_EQ(c.padded_vocab, 384);
  EXPECT_EQ(c.max_seq, 128);
  EXPECT_EQ(padded_vocab(256), 256);
  EXPECT_EQ(padded_vocab(50257), 50304);
  EXPECT_THROW(parse_config("L=2,C=65,H=4"), InvalidArgument);  // C % H
  EXPECT_THROW(parse_config("L=x"), InvalidArgument);
  EXPECT_THROW(parse_config("Q=3"), InvalidArgument);
  EXPECT_THROW(parse_config("L=0"), InvalidArgument);
}

TEST(ParamSet, ViewsTileTheFlatTensorInLlmcOrder) {
  Allocator alloc;
  const ModelConfig cfg = parse_config("L=3,C=16,H=2,V=100,T=32");
  ParamSet p(cfg, alloc, MemCategory::params, "params");
  EXPECT_EQ(p.flat.numel(), cfg.num_parameters());
  EXPECT_EQ(alloc.stats().current_of(MemCategory::params),
            (static_cast<std::size_t>(cfg.num_parameters()) * 4 + 63) / 64 * 64);
  std::int64_t expected = 0;
  std::set<std::string> names;
  const float* base = p.flat.data<float>();
  for (const NamedParam& np : p.named()) {
    EXPECT_EQ(np.tensor.data<float>() - base, expected) << np.name;
    expected += np.tensor.numel();
    EXPECT_TRUE(names.insert(np.name).second) << np.name;
  }
  EXPECT_EQ(expected, p.flat.numel());
  EXPECT_EQ(p.named()[0].name, "transformer.wte.weight");
  EXPECT_EQ(p.named()[2].name, "transformer.h.0.ln_1.weight");
  EXPECT_EQ(p.named()[2 + 2 * 3 + 1].name, "transformer.h.1.attn.c_attn.weight");
  EXPECT_EQ(p.layers[1].qkvw.shape(), (Shape{48, 16}));
  EXPECT_EQ(p.layers[2].fcprojw.shape(), (Shape{16, 64}));
  EXPECT_EQ(p.layers[1].qkvw.data<float>(), p.named()[2 + 2 * 3 + 1].tensor.data<float>());
}

TEST(Gpt2, InitialisationFollowsGpt2) {
  Allocator alloc;
  const ModelConfig cfg = parse_config("L=4,C=64,H=4,V=1000,T=64");
  Gpt2 gpt(cfg, alloc);
  Rng rng(3);
  gpt.init_weights(rng);
  auto stddev = [](const Tensor& t) {
    double s = 0, s2 = 0;
    const float* x = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      s += x[i];
      s2 += static_cast<double>(x[i]) * x[i];
    }
    const double n = static_cast<double>(t.numel());
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  const ParamSet& p = gpt.params();
  EXPECT_NEAR(stddev(p.wte.view(0, {1000, 64})), 0.02, 0.001);
  EXPECT_NEAR(stddev(p.layers[0].fcw), 0.02, 0.001);
  EXPECT_NEAR(stddev(p.layers[0].fcprojw), 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_NEAR(stddev(p.layers[3].attprojw), 0.02 / std::sqrt(8.0), 0.001);
  EXPECT_EQ(p.layers[2].ln1w.data<float>()[5], 1.0f);
  EXPECT_EQ(p.layers[2].qkvb.data<float>()[7], 0.0f);
  EXPECT_EQ(p.lnfw.data<float>()[63], 1.0f);
  // Padded vocabulary rows are zero.
  const float* wte = p.wte.data<float>();
  for (std::int64_t i = 1000 * 64; i < p.wte.numel(); ++i) ASSERT_EQ(wte[i], 0.0f);
}

TEST(StepGraph, DeclaresOpsSavedTensorsAndLifetimes) {
  Allocator alloc;
  ModelConfig cfg = parse_config("L=2,C=16,H=2,V=50,T=16");
  Gpt2 gpt(cfg, alloc);
  for (auto kind : {ops::AttentionKind::naive, ops::AttentionKind::flash}) {
    cfg.attention = kind;
    Gpt2 g2(cfg, alloc);
    const StepGraph g = g2.build_graph(3, 8);
    ASSERT_EQ(g.ops().size(), 1u + 10u * 2 + 2);
    EXPECT_EQ(g.op(1).kind(), "layernorm");
    EXPECT_EQ(g.op(3).kind(), "attention");
    EXPECT_EQ(g.ops().back()->kind(), "lm_head_loss");
    const TensorId fch = g.find("h1.fc.out");
    EXPECT_EQ(g.tensor(fch).shape, (Shape{3, 8, 64}));
    EXPECT_EQ(g.tensor(fch).role, TensorRole::gelu_in);
    const auto life = analyze_lifetimes(g);
    // fc.out is read by gelu in the forward and saved by gelu for the backward.
    const int gelu = g.tensor(g.find("h1.gelu.out")).producer;
    EXPECT_EQ(life[static_cast<std::size_t>(fch)].last_forward_use, gelu);
    EXPECT_EQ(life[static_cast<std::size_t>(fch)].first_backward_use, gelu);
    // The residual add's output feeds ln2 (saved) and res2 (not saved).
    const TensorId res1 = g.find("h0.res1.out");
    EXPECT_EQ(life[static_cast<std::size_t>(res1)].last_backward_use,
              g.tensor(g.find("h0.ln2.out")).producer);
    EXPECT_EQ(life[static_cast<std::size_t>(res1)].last_forward_use,
              g.tensor(g.find("h0.res2.out")).producer);
    // Attention statistics: probabilities (B,H,T,T) or log-sum-exp (B,H,T).
    if (kind == ops::AttentionKind::naive) {
      EXPECT_EQ(g.tensor(g.find("h0.attn.probs")).shape, (Shape{3, 2, 8, 8}));
    } else {
      EXPECT_EQ(g.tensor(g.find("h0.attn.lse")).shape, (Shape{3, 2, 8}));
    }
    // Matmul FLOPs of the forward: 4 linears per block + attention + lm-head.
    double flops = 0;
    for (const auto& op : g.ops()) flops += op->forward_flops();
    const double N = 24, C = 16;
    const double expected =
        2 * (2 * N * C * (3 * C + C + 4 * C + 4 * C) + 2 * 2 * 3 * (8 * 9 / 2.0) * C) +
        2 * N * C * 50;
    EXPECT_DOUBLE_EQ(flops, expected);
  }
  EXPECT_THROW(gpt.build_graph(0, 4), InvalidArgument);
}

}  // namespace
}  // namespace adacc::model
