// AdamWOptimizer, the class the trainer steps: its updates over several steps against
// the float64 formula (bias correction from its own step count, the learning rate it is
// given, epsilon, decoupled weight decay) with the decay mask taken from each tensor's
// name and rank, not from the optimizer's own table; a step with zero gradients decays
// exactly the matrices and embeddings; a restored step count continues the bias
// correction bit for bit; the gradients are zeroed.
#include "adacc/train/adamw_optimizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adacc/model/config.h"
#include "adacc/model/param_set.h"
#include "adacc/train/lr_schedule.h"
#include "reference/adamw_ref.h"
#include "reference/test_util.h"

namespace adacc::train {
namespace {

constexpr const char* kModel = "L=2,C=16,H=2,V=64,T=16";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Whether AdamW should decay a GPT-2 parameter, decided from what it is: biases and
// LayerNorm gains and biases are not decayed; weight matrices and the two embeddings are.
bool should_decay(const model::NamedParam& p) {
  const bool layer_norm = p.name.find(".ln_") != std::string::npos;
  const bool bias = ends_with(p.name, ".bias");
  return p.tensor.ndim() == 2 && !layer_norm && !bias;
}

void fill(Tensor& t, const test::Vec& values) {
  ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  float* d = t.data<float>();
  for (std::size_t i = 0; i < values.size(); ++i) d[i] = static_cast<float>(values[i]);
}

test::Vec to_vec(const Tensor& t) {
  const float* d = t.data<float>();
  return test::Vec(d, d + t.numel());
}

struct Model {
  model::ModelConfig cfg = model::parse_config(kModel);
  Allocator alloc;
  Context ctx{alloc, 1, 7};
  model::ParamSet params{cfg, alloc, MemCategory::params, "p"};
  model::ParamSet grads{cfg, alloc, MemCategory::grads, "g"};
};

TEST(AdamWOptimizer, ClassifiesEveryParameterAsMatrixOrBiasOrNorm) {
  // The test's own mask must see both kinds, or the tests below prove nothing.
  Model m;
  int decayed = 0, kept = 0;
  for (const model::NamedParam& p : m.params.named()) {
    if (should_decay(p)) {
      ++decayed;
    } else {
      ++kept;
      EXPECT_EQ(p.tensor.ndim(), 1) << p.name;
    }
  }
  // wte, wpe and 4 matrices per layer; 2 LayerNorms x 2 and 4 biases per layer, ln_f x 2.
  EXPECT_EQ(decayed, 2 + 4 * m.cfg.n_layer);
  EXPECT_EQ(kept, 8 * m.cfg.n_layer + 2);
}

TEST(AdamWOptimizer, ZeroGradientsDecayExactlyTheMatricesAndEmbeddings) {
  Model m;
  Rng rng(11);
  fill(m.params.flat, test::random_vec(rng, static_cast<std::size_t>(m.params.flat.numel())));
  const test::Vec before = to_vec(m.params.flat);
  const float lr = 0.25f, wd = 0.5f;
  AdamWOptimizer opt(m.cfg, m.alloc, ops::AdamWConfig{lr, 0.9f, 0.999f, 1e-8f, wd});
  opt.step(m.ctx, m.params, m.grads, lr);  // m = v = 0: the Adam term is 0 exactly
  for (const model::NamedParam& p : m.params.named()) {
    const std::int64_t offset = p.tensor.data<float>() - m.params.flat.data<float>();
    const float* now = p.tensor.data<float>();
    const double factor = should_decay(p) ? 1.0 - double{lr} * wd : 1.0;
    int changed = 0;
    for (std::int64_t i = 0; i < p.tensor.numel(); ++i) {
      const double was = before[static_cast<std::size_t>(offset + i)];
      ASSERT_NEAR(now[i], was * factor, 1e-6) << p.name << "[" << i << "]";
      changed += now[i] != static_cast<float>(was) ? 1 : 0;
    }
    if (!should_decay(p)) {
      EXPECT_EQ(changed, 0) << p.name << " was decayed";
    }
  }
}

// Runs `steps` updates with random gradients of varied scale and a warmup-then-cosine
// learning rate, comparing params, m and v with the float64 formula after every step.
TEST(AdamWOptimizer, MatchesTheFloat64FormulaOverSeveralSteps) {
  Model m;
  Rng rng(3);
  const auto n = static_cast<std::size_t>(m.params.flat.numel());
  fill(m.params.flat, test::random_vec(rng, n));
  // eps comparable to the gradients' size, so a misplaced or missing eps shows.
  const ops::AdamWConfig hyper{1e-2f, 0.8f, 0.95f, 1e-3f, 0.3f};
  AdamWOptimizer opt(m.cfg, m.alloc, hyper);
  LrSchedule schedule;
  schedule.max_lr = 1e-2f;
  schedule.warmup_steps = 2;
  schedule.total_steps = 6;

  test::Vec p = to_vec(m.params.flat), mm(n, 0.0), vv(n, 0.0);
  // m of |g|: the size of the terms that m sums, which may cancel.
  test::Vec m_scale(n, 0.0);
  for (std::int64_t step = 0; step < schedule.total_steps; ++step) {
    test::Vec g = test::normal_vec(rng, n, 1e-3);
    for (std::size_t i = 0; i < n; i += 7) g[i] *= 100;  // some large, most small
    fill(m.grads.flat, g);
    g = to_vec(m.grads.flat);  // the float values the optimizer sees
    for (std::size_t i = 0; i < n; ++i) {
      m_scale[i] = hyper.beta1 * m_scale[i] + (1 - hyper.beta1) * std::abs(g[i]);
    }
    const float lr = schedule.at(step);
    opt.step(m.ctx, m.params, m.grads, lr);
    EXPECT_EQ(opt.steps_taken(), step + 1);

    for (const model::NamedParam& np : m.params.named()) {
      const auto off =
          static_cast<std::size_t>(np.tensor.data<float>() - m.params.flat.data<float>());
      const auto len = static_cast<std::size_t>(np.tensor.numel());
      test::Vec sp(p.begin() + off, p.begin() + off + len),
          sg(g.begin() + off, g.begin() + off + len), sm(mm.begin() + off, mm.begin() + off + len),
          sv(vv.begin() + off, vv.begin() + off + len);
      ref::adamw_update(sp, sg, sm, sv, step + 1, lr, hyper.beta1, hyper.beta2, hyper.eps,
                        should_decay(np) ? hyper.weight_decay : 0.0);
      std::copy(sp.begin(), sp.end(), p.begin() + off);
      std::copy(sm.begin(), sm.end(), mm.begin() + off);
      std::copy(sv.begin(), sv.end(), vv.begin() + off);
    }
    const float* fp = m.params.flat.data<float>();
    const float* fm = opt.m().flat.data<float>();
    const float* fv = opt.v().flat.data<float>();
    const float* fg = m.grads.flat.data<float>();
    for (std::size_t i = 0; i < n; ++i) {
      // Each update moves a parameter by ~lr = 1e-2; 2e-6 is float rounding of |p| <= 1.
      ASSERT_NEAR(fp[i], p[i], 2e-6) << "param " << i << " after step " << step + 1;
      ASSERT_NEAR(fm[i], mm[i], 1e-6 * m_scale[i] + 1e-12) << "m " << i;
      ASSERT_NEAR(fv[i], vv[i], 1e-5 * std::abs(vv[i]) + 1e-18) << "v " << i;
      ASSERT_EQ(fg[i], 0.0f) << "gradient " << i << " not zeroed";
    }
  }
}

// A second optimizer given the first one's moments and step count continues exactly as
// the first does: the bias correction comes from the restored count.
TEST(AdamWOptimizer, RestoredStepCountContinuesTheBiasCorrectionBitForBit) {
  Model a, b;
  Rng rng(5);
  const auto n = static_cast<std::size_t>(a.params.flat.numel());
  const test::Vec p0 = test::random_vec(rng, n);
  std::vector<test::Vec> grads;
  for (int s = 0; s < 6; ++s) grads.push_back(test::normal_vec(rng, n, 1e-2));
  const ops::AdamWConfig hyper{1e-2f, 0.9f, 0.99f, 1e-8f, 0.1f};

  fill(a.params.flat, p0);
  AdamWOptimizer whole(a.cfg, a.alloc, hyper);
  fill(b.params.flat, p0);
  AdamWOptimizer first(b.cfg, b.alloc, hyper);
  for (int s = 0; s < 3; ++s) {
    fill(a.grads.flat, grads[s]);
    whole.step(a.ctx, a.params, a.grads, 1e-2f);
    fill(b.grads.flat, grads[s]);
    first.step(b.ctx, b.params, b.grads, 1e-2f);
  }
  // As a resumed run: a new optimizer, the moments copied in, the count set (to 3, as
  // if earlier training steps had been skipped it would be less than the step number).
  AdamWOptimizer resumed(b.cfg, b.alloc, hyper);
  fill(resumed.m().flat, to_vec(first.m().flat));
  fill(resumed.v().flat, to_vec(first.v().flat));
  resumed.set_steps_taken(first.steps_taken());
  for (int s = 3; s < 6; ++s) {
    fill(a.grads.flat, grads[s]);
    whole.step(a.ctx, a.params, a.grads, 1e-2f);
    fill(b.grads.flat, grads[s]);
    resumed.step(b.ctx, b.params, b.grads, 1e-2f);
  }
  EXPECT_EQ(resumed.steps_taken(), 6);
  EXPECT_EQ(to_vec(a.params.flat), to_vec(b.params.flat));
  EXPECT_EQ(to_vec(whole.m().flat), to_vec(resumed.m().flat));
  EXPECT_EQ(to_vec(whole.v().flat), to_vec(resumed.v().flat));

  // And the count matters: the same moments with a count of 0 give another update.
  Model c;
  fill(c.params.flat, p0);
  AdamWOptimizer recount(c.cfg, c.alloc, hyper);
  fill(recount.m().flat, to_vec(first.m().flat));
  fill(recount.v().flat, to_vec(first.v().flat));
  fill(c.grads.flat, grads[3]);
  recount.step(c.ctx, c.params, c.grads, 1e-2f);
  Model d;
  fill(d.params.flat, p0);
  fill(d.grads.flat, grads[3]);
  fill(resumed.m().flat, to_vec(first.m().flat));
  fill(resumed.v().flat, to_vec(first.v().flat));
  resumed.set_steps_taken(3);
  resumed.step(d.ctx, d.params, d.grads, 1e-2f);
  EXPECT_NE(to_vec(c.params.flat), to_vec(d.params.flat));
}

}  // namespace
}  // namespace adacc::train
