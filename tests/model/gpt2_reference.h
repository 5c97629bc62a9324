// A float64 GPT-2 forward and backward composed from the float64 reference ops, used to
// check the whole fp32 model's loss and every parameter gradient.
#pragma once

#include <vector>

#include "adacc/model/config.h"
#include "reference/attention_ref.h"
#include "reference/embedding_ref.h"
#include "reference/gelu_ref.h"
#include "reference/layernorm_ref.h"
#include "reference/linear_ref.h"
#include "reference/lm_head_loss_ref.h"
#include "reference/residual_ref.h"
#include "reference/test_util.h"

namespace adacc::test {

// Parameters and gradients are float64 vectors in ParamSet::named() order:
// wte, wpe, then 12 kinds x L layers (ln1w ln1b qkvw qkvb attprojw attprojb ln2w ln2b
// fcw fcb fcprojw fcprojb), then lnfw, lnfb.
struct RefGpt2 {
  const model::ModelConfig& cfg;
  const std::vector<Vec>& p;

  const Vec& layer_param(int kind, int l) const {
    return p[static_cast<std::size_t>(2 + kind * cfg.n_layer + l)];
  }
  static std::size_t layer_index(const model::ModelConfig& cfg, int kind, int l) {
    return static_cast<std::size_t>(2 + kind * cfg.n_layer + l);
  }

  // Returns the mean loss; adds the gradients into `grads` (sized like p).
  double forward_backward(const std::vector<int>& tokens, const std::vector<int>& targets, int B,
                          int T, std::vector<Vec>& grads) const {
    const int C = cfg.n_embd, H = cfg.n_head, L = cfg.n_layer, N = B * T;
    const int V = cfg.vocab, Vp = cfg.padded_vocab;
    enum { ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb };
    struct Acts {
      Vec x, ln1, ln1m, ln1r, qkv, atty, probs, attproj, res1, ln2, ln2m, ln2r, fch, gelu, fcproj;
    };
    std::vector<Acts> a(static_cast<std::size_t>(L));
    Vec x;
    ref::embedding_forward(tokens, p[0], p[1], B, T, C, x);
    for (int l = 0; l < L; ++l) {
      Acts& s = a[static_cast<std::size_t>(l)];
      s.x = x;
      ref::layernorm_forward(s.x, layer_param(ln1w, l), layer_param(ln1b, l), N, C, s.ln1, s.ln1m,
                             s.ln1r);
      ref::linear_forward(s.ln1, layer_param(qkvw, l), &layer_param(qkvb, l), N, C, 3 * C, s.qkv);
      ref::attention_forward(s.qkv, B, T, C, H, s.atty, s.probs);
      ref::linear_forward(s.atty, layer_param(attprojw, l), &layer_param(attprojb, l), N, C, C,
                          s.attproj);
      ref::residual_forward(s.x, s.attproj, s.res1);
      ref::layernorm_forward(s.res1, layer_param(ln2w, l), layer_param(ln2b, l), N, C, s.ln2,
                             s.ln2m, s.ln2r);
      ref::linear_forward(s.ln2, layer_param(fcw, l), &layer_param(fcb, l), N, C, 4 * C, s.fch);
      ref::gelu_forward(s.fch, s.gelu);
      ref::linear_forward(s.gelu, layer_param(fcprojw, l), &layer_param(fcprojb, l), N, 4 * C, C,
                          s.fcproj);
      ref::residual_forward(s.res1, s.fcproj, x);
    }
    const std::size_t lnfw = static_cast<std::size_t>(2 + 12 * L), lnfb = lnfw + 1;
    Vec lnf, lnfm, lnfr, losses;
    ref::layernorm_forward(x, p[lnfw], p[lnfb], N, C, lnf, lnfm, lnfr);
    const double loss = ref::lm_head_loss_forward(lnf, p[0], targets, N, C, V, Vp, losses);

    Vec dlnf(lnf.size(), 0.0), dx(x.size(), 0.0);
    ref::lm_head_loss_backward(lnf, p[0], targets, N, C, V, Vp, 1.0 / N, dlnf, grads[0]);
    ref::layernorm_backward(dlnf, x, p[lnfw], lnfm, lnfr, N, C, dx, grads[lnfw], grads[lnfb]);
    for (int l = L - 1; l >= 0; --l) {
      const Acts& s = a[static_cast<std::size_t>(l)];
      auto g = [&](int kind) -> Vec& { return grads[layer_index(cfg, kind, l)]; };
      auto zeros = [](std::size_t n) { return Vec(n, 0.0); };
      // res2 = res1 + fcproj
      Vec dres1 = zeros(dx.size()), dfcproj = zeros(dx.size());
      ref::residual_backward(dx, dres1, dfcproj);
      Vec dgelu = zeros(s.gelu.size());
      Vec* dfcprojb = &g(fcprojb);
      ref::linear_backward(dfcproj, s.gelu, layer_param(fcprojw, l), N, 4 * C, C, dgelu, g(fcprojw),
                           dfcprojb);
      Vec dfch = zeros(s.fch.size());
      ref::gelu_backward(dgelu, s.fch, dfch);
      Vec dln2 = zeros(s.ln2.size());
      Vec* dfcb = &g(fcb);
      ref::linear_backward(dfch, s.ln2, layer_param(fcw, l), N, C, 4 * C, dln2, g(fcw), dfcb);
      ref::layernorm_backward(dln2, s.res1, layer_param(ln2w, l), s.ln2m, s.ln2r, N, C, dres1,
                              g(ln2w), g(ln2b));
      // res1 = x + attproj
      Vec dxl = zeros(dx.size()), dattproj = zeros(dx.size());
      ref::residual_backward(dres1, dxl, dattproj);
      Vec datty = zeros(s.atty.size());
      Vec* dattprojb = &g(attprojb);
      ref::linear_backward(dattproj, s.atty, layer_param(attprojw, l), N, C, C, datty, g(attprojw),
                           dattprojb);
      Vec dqkv = zeros(s.qkv.size());
      ref::attention_backward(datty, s.qkv, s.probs, B, T, C, H, dqkv);
      Vec dln1 = zeros(s.ln1.size());
      Vec* dqkvb = &g(qkvb);
      ref::linear_backward(dqkv, s.ln1, layer_param(qkvw, l), N, C, 3 * C, dln1, g(qkvw), dqkvb);
      ref::layernorm_backward(dln1, s.x, layer_param(ln1w, l), s.ln1m, s.ln1r, N, C, dxl, g(ln1w),
                              g(ln1b));
      dx = std::move(dxl);
    }
    ref::embedding_backward(tokens, dx, B, T, C, grads[0], grads[1]);
    return loss;
  }
};

}  // namespace adacc::test
