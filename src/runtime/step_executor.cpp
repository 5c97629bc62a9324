// Keep-everything step execution over a step graph (see step_executor.h).
#include "adacc/runtime/step_executor.h"

#include <chrono>

#include "adacc/core/error.h"

namespace adacc::runtime {

using model::Pass;
using model::TensorId;
using model::TensorKind;

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

class StepExecutor::Env final : public model::OpEnv {
 public:
  Env(StepExecutor& ex, Pass pass)
      : ex_(ex),
        pass_(pass),
        values_(ex.graph_.tensors().size()),
        grads_(ex.graph_.tensors().size()) {
    const auto& tensors = ex.graph_.tensors();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].kind != TensorKind::param) continue;
      const auto p = static_cast<std::size_t>(tensors[i].param_index);
      values_[i] = ex.params_.named().at(p).tensor;
      grads_[i] = ex.grads_.named().at(p).tensor;
    }
  }

  Context& ctx() override { return ex_.ctx_; }
  Pass pass() const override { return pass_; }

  const Tensor& value(TensorId id) override {
    const Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      throw InvalidArgument("[runtime] tensor '" + ex_.graph_.tensor(id).name +
                            "' is read but not available");
    }
    return t;
  }

  Tensor& output(TensorId id) override {
    Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      const model::TensorInfo& info = ex_.graph_.tensor(id);
      t = Tensor::empty(ex_.ctx_.allocator(), info.shape, info.dtype, MemCategory::activations,
                        info.name);
    }
    return t;
  }

  Tensor& grad(TensorId id) override {
    Tensor& g = grads_.at(static_cast<std::size_t>(id));
    if (!g.defined()) {
      const model::TensorInfo& info = ex_.graph_.tensor(id);
      g = Tensor::zeros(ex_.ctx_.allocator(), info.shape, info.dtype, MemCategory::workspace,
                        "d" + info.name);
    }
    return g;
  }

  void set_loss(float loss) override { loss_ = loss; }

  void bind_input(TensorId id, const Tensor& t) {
    const model::TensorInfo& info = ex_.graph_.tensor(id);
    if (t.shape() != info.shape || t.dtype() != info.dtype) {
      throw InvalidArgument("[runtime] " + info.name + " must be " + shape_str(info.shape) + " " +
                            std::string(dtype_name(info.dtype)) + " but is " + t.describe());
    }
    values_[static_cast<std::size_t>(id)] = t;
  }
  void free_value(TensorId id) { values_[static_cast<std::size_t>(id)] = Tensor(); }
  void free_grad(TensorId id) { grads_[static_cast<std::size_t>(id)] = Tensor(); }
  float loss() const { return loss_; }

 private:
  StepExecutor& ex_;
  Pass pass_;
  std::vector<Tensor> values_;
  std::vector<Tensor> grads_;
  float loss_ = 0;
};

StepExecutor::StepExecutor(const model::StepGraph& graph, const model::ParamSet& params,
                           model::ParamSet& grads, Context& ctx)
    : graph_(graph),
      params_(params),
      grads_(grads),
      ctx_(ctx),
      life_(model::analyze_lifetimes(graph)) {}

float StepExecutor::forward_backward(const Tensor& tokens, const Tensor& targets) {
  Env env(*this, Pass::train);
  env.bind_input(graph_.tokens, tokens);
  env.bind_input(graph_.targets, targets);
  return run(env, static_cast<int>(graph_.ops().size()));
}

float StepExecutor::forward(const Tensor& tokens, const Tensor& targets) {
  Env env(*this, Pass::eval);
  env.bind_input(graph_.tokens, tokens);
  env.bind_input(graph_.targets, targets);
  return run(env, static_cast<int>(graph_.ops().size()));
}

Tensor StepExecutor::features(const Tensor& tokens) {
  Env env(*this, Pass::eval);
  env.bind_input(graph_.tokens, tokens);
  const int n_ops = static_cast<int>(graph_.ops().size());
  run(env, n_ops - 1);
  // The loss op's input outlives the loop: its last forward use is the loss op.
  return env.value(graph_.op(n_ops - 1).inputs().front());
}

float StepExecutor::run(Env& env, int n_forward) {
  const int n_ops = static_cast<int>(graph_.ops().size());
  const bool train = env.pass() == Pass::train;
  if (profiling_) timings_.assign(static_cast<std::size_t>(n_ops), OpTiming{});

  auto is_activation = [&](TensorId id) {
    return graph_.tensor(id).kind == TensorKind::activation;
  };
  for (int o = 0; o < n_forward; ++o) {
    const model::OpNode& op = graph_.op(o);
    const auto t0 = Clock::now();
    op.forward(env);
    if (profiling_) timings_[static_cast<std::size_t>(o)].forward = seconds_since(t0);
    // Free what neither a later forward op nor (when training) any backward op needs.
    auto release = [&](TensorId id) {
      const auto& l = life_[static_cast<std::size_t>(id)];
      if (is_activation(id) && l.last_forward_use == o && (!train || l.first_backward_use < 0)) {
        env.free_value(id);
      }
    };
    for (TensorId id : op.inputs()) release(id);
    for (TensorId id : op.outputs()) release(id);
  }
  if (!train) return env.loss();

  for (int o = n_ops - 1; o >= 0; --o) {
    const model::OpNode& op = graph_.op(o);
    const auto t0 = Clock::now();
    op.backward(env);
    if (profiling_) timings_[static_cast<std::size_t>(o)].backward = seconds_since(t0);
    for (TensorId id : op.saved()) {
      if (is_activation(id) && life_[static_cast<std::size_t>(id)].last_backward_use == o) {
        env.free_value(id);
      }
    }
    // Gradients of this op's outputs are fully consumed now.
    for (TensorId id : op.outputs()) env.free_grad(id);
  }
  return env.loss();
}

}  // namespace adacc::runtime
