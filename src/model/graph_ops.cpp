// Op nodes of the step graph (see graph_ops.h): thin adapters from tensor ids to the
// ops/ functions, with the saved-tensor declarations the runtime plans over.
#include "adacc/model/graph_ops.h"

#include "adacc/ops/embedding.h"
#include "adacc/ops/gelu.h"
#include "adacc/ops/layernorm.h"
#include "adacc/ops/linear.h"
#include "adacc/ops/lm_head_loss.h"
#include "adacc/ops/residual.h"

namespace adacc::model {

namespace {

class EmbeddingNode final : public OpNode {
 public:
  EmbeddingNode(std::string name, TensorId tokens, TensorId wte, TensorId wpe, TensorId out)
      : OpNode(std::move(name), -1), tokens_(tokens), wte_(wte), wpe_(wpe), out_(out) {
    inputs_ = {tokens, wte, wpe};
    outputs_ = {out};
    saved_ = {tokens};
  }
  std::string_view kind() const override { return "embedding"; }
  void forward(OpEnv& env) const override {
    ops::embedding_forward(env.ctx(), env.value(tokens_), env.value(wte_), env.value(wpe_),
                           env.output(out_));
  }
  void backward(OpEnv& env) const override {
    ops::embedding_backward(env.ctx(), env.value(tokens_), env.grad(out_), env.grad(wte_),
                            env.grad(wpe_));
  }

 private:
  TensorId tokens_, wte_, wpe_, out_;
};

class LayerNormNode final : public OpNode {
 public:
  LayerNormNode(std::string name, int layer, std::int64_t channels, TensorId inp, TensorId w,
                TensorId b, TensorId out, TensorId mean, TensorId rstd)
      : OpNode(std::move(name), layer),
        inp_(inp),
        w_(w),
        b_(b),
        out_(out),
        mean_(mean),
        rstd_(rstd),
        channels_(channels) {
    inputs_ = {inp, w, b};
    outputs_ = {out, mean, rstd};
    saved_ = {inp, mean, rstd};
  }
  std::string_view kind() const override { return "layernorm"; }
  std::size_t backward_workspace(int threads) const override {
    return ops::layernorm_backward_workspace_bytes(channels_, threads);
  }
  void forward(OpEnv& env) const override {
    ops::layernorm_forward(env.ctx(), env.value(inp_), env.value(w_), env.value(b_),
                           env.output(out_), env.output(mean_), env.output(rstd_));
  }
  void backward(OpEnv& env) const override {
    ops::layernorm_backward(env.ctx(), env.grad(out_), env.value(inp_), env.value(w_),
                            env.value(mean_), env.value(rstd_), env.grad(inp_), env.grad(w_),
                            env.grad(b_));
  }

 private:
  TensorId inp_, w_, b_, out_, mean_, rstd_;
  std::int64_t channels_ = 0;
};

class LinearNode final : public OpNode {
 public:
  LinearNode(std::string name, int layer, double flops, TensorId inp, TensorId w, TensorId b,
             TensorId out)
      : OpNode(std::move(name), layer), flops_(flops), inp_(inp), w_(w), b_(b), out_(out) {
    inputs_ = {inp, w, b};
    outputs_ = {out};
    saved_ = {inp};
  }
  std::string_view kind() const override { return "linear"; }
  double forward_flops() const override { return flops_; }
  double backward_flops() const override { return 2 * flops_; }
  void forward(OpEnv& env) const override {
    ops::linear_forward(env.ctx(), env.value(inp_), env.value(w_), env.value(b_), env.output(out_));
  }
  void backward(OpEnv& env) const override {
    ops::linear_backward(env.ctx(), env.grad(out_), env.value(inp_), env.value(w_), env.grad(inp_),
                         env.grad(w_), env.grad(b_));
  }

 private:
  double flops_;
  TensorId inp_, w_, b_, out_;
};

class AttentionNode final : public OpNode {
 public:
  AttentionNode(std::string name, int layer, double flops, const Shape& out_shape,
                ops::AttentionKind kind, int heads, TensorId qkv, TensorId out, TensorId stats)
      : OpNode(std::move(name), layer),
        B_(out_shape[0]),
        T_(out_shape[1]),
        C_(out_shape[2]),
        flops_(flops),
        kind_(kind),
        heads_(heads),
        qkv_(qkv),
        out_(out),
        stats_(stats) {
    inputs_ = {qkv};
    outputs_ = {out, stats};
    saved_ = kind == ops::AttentionKind::naive ? std::vector<TensorId>{qkv, stats}
                                               : std::vector<TensorId>{qkv, out, stats};
  }
  std::string_view kind() const override { return "attention"; }
  std::size_t forward_workspace(Pass, int threads) const override {
    return kind_ == ops::AttentionKind::naive
               ? ops::attention_naive_forward_workspace_bytes(B_, T_, C_, heads_, threads)
               : ops::attention_flash_forward_workspace_bytes(B_, T_, C_, heads_, threads);
  }
  std::size_t backward_workspace(int threads) const override {
    return kind_ == ops::AttentionKind::naive
               ? ops::attention_naive_backward_workspace_bytes(B_, T_, C_, heads_, threads)
               : ops::attention_flash_backward_workspace_bytes(B_, T_, C_, heads_, threads);
  }
  double forward_flops() const override { return flops_; }
  double backward_flops() const override { return 2 * flops_; }
  void forward(OpEnv& env) const override {
    if (kind_ == ops::AttentionKind::naive) {
      ops::attention_naive_forward(env.ctx(), env.value(qkv_), heads_, env.output(out_),
                                   env.output(stats_));
    } else {
      ops::attention_flash_forward(env.ctx(), env.value(qkv_), heads_, env.output(out_),
                                   env.output(stats_));
    }
  }
  void backward(OpEnv& env) const override {
    if (kind_ == ops::AttentionKind::naive) {
      ops::attention_naive_backward(env.ctx(), env.grad(out_), env.value(qkv_), env.value(stats_),
                                    heads_, env.grad(qkv_));
    } else {
      ops::attention_flash_backward(env.ctx(), env.grad(out_), env.value(qkv_), env.value(out_),
                                    env.value(stats_), heads_, env.grad(qkv_));
    }
  }

 private:
  std::int64_t B_, T_, C_;
  double flops_;
  ops::AttentionKind kind_;
  int heads_;
  TensorId qkv_, out_, stats_;
};

class GeluNode final : public OpNode {
 public:
  GeluNode(std::string name, int layer, TensorId inp, TensorId out)
      : OpNode(std::move(name), layer), inp_(inp), out_(out) {
    inputs_ = {inp};
    outputs_ = {out};
    saved_ = {inp};
  }
  std::string_view kind() const override { return "gelu"; }
  bool accepts_saved_form(SavedForm) const override { return true; }
  void forward(OpEnv& env) const override {
    ops::gelu_forward(env.ctx(), env.value(inp_), env.output(out_));
  }
  void backward(OpEnv& env) const override {
    if (env.form(inp_) == SavedForm::gelu_derivative) {
      ops::gelu_backward_from_derivative(env.ctx(), env.grad(out_), env.value(inp_),
                                         env.grad(inp_));
    } else {
      ops::gelu_backward(env.ctx(), env.grad(out_), env.value(inp_), env.grad(inp_));
    }
  }

 private:
  TensorId inp_, out_;
};

class ResidualNode final : public OpNode {
 public:
  ResidualNode(std::string name, int layer, TensorId a, TensorId b, TensorId out)
      : OpNode(std::move(name), layer), a_(a), b_(b), out_(out) {
    inputs_ = {a, b};
    outputs_ = {out};
  }
  std::string_view kind() const override { return "residual"; }
  void forward(OpEnv& env) const override {
    ops::residual_forward(env.ctx(), env.value(a_), env.value(b_), env.output(out_));
  }
  void backward(OpEnv& env) const override {
    ops::residual_backward(env.ctx(), env.grad(out_), env.grad(a_), env.grad(b_));
  }

 private:
  TensorId a_, b_, out_;
};

class LmHeadLossNode final : public OpNode {
 public:
  LmHeadLossNode(std::string name, double flops, std::int64_t rows, int vocab, TensorId inp,
                 TensorId wte, TensorId targets, TensorId losses, TensorId loss_grad)
      : OpNode(std::move(name), -1),
        rows_(rows),
        flops_(flops),
        vocab_(vocab),
        inp_(inp),
        wte_(wte),
        targets_(targets),
        losses_(losses),
        loss_grad_(loss_grad) {
    inputs_ = {inp, wte, targets};
    outputs_ = {losses, loss_grad};
    saved_ = {loss_grad};
  }
  std::string_view kind() const override { return "lm_head_loss"; }
  bool recomputable() const override { return false; }
  bool backward_reads_output_grad() const override { return false; }
  std::size_t forward_workspace(Pass, int) const override {
    return ops::lm_head_loss_workspace_bytes(rows_, vocab_);
  }
  bool produces(TensorId id, Pass pass) const override {
    return id != loss_grad_ || pass == Pass::train;
  }
  double forward_flops() const override { return flops_; }
  double backward_flops() const override { return 2 * flops_; }
  void forward(OpEnv& env) const override {
    const Tensor& inp = env.value(inp_);
    float loss = 0;
    if (env.pass() == Pass::train) {
      const float scale = 1.0f / static_cast<float>(inp.dim(0) * inp.dim(1));
      loss = ops::lm_head_loss_forward_backward(
          env.ctx(), inp, env.value(wte_), env.value(targets_), vocab_, scale, env.output(losses_),
          env.output(loss_grad_), env.grad(wte_));
    } else {
      loss = ops::lm_head_loss_forward(env.ctx(), inp, env.value(wte_), env.value(targets_), vocab_,
                                       env.output(losses_));
    }
    env.set_loss(loss);
  }
  void backward(OpEnv& env) const override {
    // The gradient was computed in the forward; hand it to the input.
    const Tensor& g = env.value(loss_grad_);
    Tensor& dinp = env.grad(inp_);
    const float* src = g.data<float>();
    float* dst = dinp.data<float>();
    const std::int64_t n = g.numel();
#pragma omp parallel for simd schedule(static)
    for (std::int64_t i = 0; i < n; ++i) dst[i] += src[i];
  }

 private:
  std::int64_t rows_;
  double flops_;
  int vocab_;
  TensorId inp_, wte_, targets_, losses_, loss_grad_;
};

double linear_flops(const StepGraph& graph, TensorId inp, TensorId w) {
  const Shape& x = graph.tensor(inp).shape;
  const Shape& ws = graph.tensor(w).shape;
  const std::int64_t rows = shape_numel(x) / x.back();  // exact: numel is rows * last dim
  return 2.0 * static_cast<double>(rows) * static_cast<double>(ws[0]) * static_cast<double>(ws[1]);
}

}  // namespace

std::unique_ptr<OpNode> make_embedding(std::string name, TensorId tokens, TensorId wte,
                                       TensorId wpe, TensorId out) {
  return std::make_unique<EmbeddingNode>(std::move(name), tokens, wte, wpe, out);
}

std::unique_ptr<OpNode> make_layernorm(std::string name, int layer, const StepGraph& graph,
                                       TensorId inp, TensorId w, TensorId b, TensorId out,
                                       TensorId mean, TensorId rstd) {
  return std::make_unique<LayerNormNode>(std::move(name), layer, graph.tensor(inp).shape.back(),
                                         inp, w, b, out, mean, rstd);
}

std::unique_ptr<OpNode> make_linear(std::string name, int layer, const StepGraph& graph,
                                    TensorId inp, TensorId w, TensorId b, TensorId out) {
  return std::make_unique<LinearNode>(std::move(name), layer, linear_flops(graph, inp, w), inp, w,
                                      b, out);
}

std::unique_ptr<OpNode> make_attention(std::string name, int layer, const StepGraph& graph,
                                       ops::AttentionKind kind, int heads, TensorId qkv,
                                       TensorId out, TensorId stats) {
  const Shape& s = graph.tensor(out).shape;  // (B,T,C)
  const double B = static_cast<double>(s[0]), T = static_cast<double>(s[1]),
               C = static_cast<double>(s[2]);
  // q k^T and p v over the causal triangle: 2 matmuls of T(T+1)/2 x hs per head.
  const double flops = 2.0 * 2.0 * B * (T * (T + 1) / 2) * C;
  return std::make_unique<AttentionNode>(std::move(name), layer, flops, s, kind, heads, qkv, out,
                                         stats);
}

std::unique_ptr<OpNode> make_gelu(std::string name, int layer, TensorId inp, TensorId out) {
  return std::make_unique<GeluNode>(std::move(name), layer, inp, out);
}

std::unique_ptr<OpNode> make_residual(std::string name, int layer, TensorId a, TensorId b,
                                      TensorId out) {
  return std::make_unique<ResidualNode>(std::move(name), layer, a, b, out);
}

std::unique_ptr<OpNode> make_lm_head_loss(std::string name, const StepGraph& graph, int vocab,
                                          TensorId inp, TensorId wte, TensorId targets,
                                          TensorId losses, TensorId loss_grad) {
  const Shape& x = graph.tensor(inp).shape;
  const double flops = 2.0 * static_cast<double>(x[0] * x[1]) * static_cast<double>(x[2]) *
                       static_cast<double>(vocab);
  return std::make_unique<LmHeadLossNode>(std::move(name), flops, x[0] * x[1], vocab, inp, wte,
                                          targets, losses, loss_grad);
}

}  // namespace adacc::model
