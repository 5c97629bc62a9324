// Step execution under a Plan (see step_executor.h): the plan's step program run on tensors.
#include "adacc/runtime/step_executor.h"

#include <chrono>
#include <deque>

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

// The tensors of one step, as the ops see them.
class StepExecutor::Env final : public model::OpEnv {
 public:
  Env(StepExecutor& ex, Pass pass)
      : ex_(ex),
        pass_(pass),
        values_(ex.graph_.tensors().size()),
        encoded_(ex.graph_.tensors().size()),
        forms_(ex.graph_.tensors().size(), model::SavedForm::value),
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

  // While an op is being recomputed, outputs that are still present are written to
  // scratch tensors (equal to the present ones: recompute is exact) and dropped after.
  Tensor& output(TensorId id) override {
    Tensor& t = values_.at(static_cast<std::size_t>(id));
    const model::TensorInfo& info = ex_.graph_.tensor(id);
    if (t.defined() && recomputing_) {
      scratch_.push_back(Tensor::empty(ex_.ctx_.allocator(), info.shape, info.dtype,
                                       MemCategory::activations, info.name + " (scratch)"));
      return scratch_.back();
    }
    if (!t.defined()) {
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
  model::SavedForm form(TensorId id) const override {
    return forms_.at(static_cast<std::size_t>(id));
  }

  void bind_input(TensorId id, const Tensor& t) {
    const model::TensorInfo& info = ex_.graph_.tensor(id);
    if (t.shape() != info.shape || t.dtype() != info.dtype) {
      throw InvalidArgument("[runtime] " + info.name + " must be " + shape_str(info.shape) + " " +
                            std::string(dtype_name(info.dtype)) + " but is " + t.describe());
    }
    values_[static_cast<std::size_t>(id)] = t;
  }
  float loss() const { return loss_; }

 private:
  friend class StepExecutor::Store;
  StepExecutor& ex_;
  Pass pass_;
  std::vector<Tensor> values_;
  std::vector<Tensor> encoded_;
  std::vector<model::SavedForm> forms_;  // of values_: a decoded tensor may be a derived form
  std::vector<Tensor> grads_;
  std::deque<Tensor> scratch_;  // stable references while an op holds several
  bool recomputing_ = false;
  float loss_ = 0;
};

// The program's store on real tensors: runs the ops and holds their results. It checks
// what the lowering assumed about presence (a tensor freed, encoded or decoded exists), so
// that a lowering bug fails loudly instead of silently freeing nothing.
class StepExecutor::Store {
 public:
  explicit Store(Env& env) : env_(env), ex_(env.ex_) {}

  void forward(int o) {
    const auto t0 = Clock::now();
    ex_.graph_.op(o).forward(env_);
    if (ex_.profiling_) ex_.timings_[static_cast<std::size_t>(o)].forward = seconds_since(t0);
  }
  void recompute(int o) {
    env_.recomputing_ = true;
    ex_.graph_.op(o).forward(env_);
    env_.recomputing_ = false;
    env_.scratch_.clear();
  }
  void backward(int o) {
    const auto t0 = Clock::now();
    ex_.graph_.op(o).backward(env_);
    if (ex_.profiling_) ex_.timings_[static_cast<std::size_t>(o)].backward = seconds_since(t0);
  }
  void encode(TensorId id, const compress::Codec& codec) {
    require(env_.values_[idx(id)].defined(), "encodes", id);
    if (ex_.encode_observer_) ex_.encode_observer_(id, codec, env_.values_[idx(id)]);
    env_.encoded_[idx(id)] = codec.encode(ex_.ctx_, env_.values_[idx(id)]);
    env_.values_[idx(id)] = Tensor();
  }
  void decode(TensorId id, const compress::Codec& codec) {
    const model::TensorInfo& info = ex_.graph_.tensor(id);
    Tensor t = Tensor::empty(ex_.ctx_.allocator(), info.shape, info.dtype, MemCategory::workspace,
                             info.name + " (decoded)");
    require(env_.encoded_[idx(id)].defined(), "decodes", id);
    codec.decode(ex_.ctx_, env_.encoded_[idx(id)], t);
    env_.values_[idx(id)] = std::move(t);
    env_.forms_[idx(id)] = codec.decodes_to();
  }
  void free_value(TensorId id) {
    require(env_.values_[idx(id)].defined(), "frees", id);
    env_.values_[idx(id)] = Tensor();
    env_.forms_[idx(id)] = model::SavedForm::value;
  }
  void free_encoded(TensorId id) {
    require(env_.encoded_[idx(id)].defined(), "frees the encoding of", id);
    env_.encoded_[idx(id)] = Tensor();
  }
  void free_grad(TensorId id) {
    require(env_.grads_[idx(id)].defined(), "frees the gradient of", id);
    env_.grads_[idx(id)] = Tensor();
  }

  void run(const Instruction& ins) {
    using K = Instruction::Kind;
    switch (ins.kind) {
      case K::forward:
        forward(ins.op);
        break;
      case K::backward:
        backward(ins.op);
        break;
      case K::recompute:
        recompute(ins.op);
        break;
      case K::encode:
        encode(ins.tensor, *ins.codec);
        break;
      case K::decode:
        decode(ins.tensor, *ins.codec);
        break;
      case K::free_value:
        free_value(ins.tensor);
        break;
      case K::free_encoded:
        free_encoded(ins.tensor);
        break;
      case K::free_grad:
        free_grad(ins.tensor);
        break;
    }
  }

 private:
  static std::size_t idx(TensorId id) { return static_cast<std::size_t>(id); }
  void require(bool holds, const char* what, TensorId id) const {
    if (holds) return;
    throw Error(std::string("[runtime] the step program ") + what + " '" +
                ex_.graph_.tensor(id).name +
                "', which does not exist at that point: a bug in the lowering, please report it");
  }
  Env& env_;
  StepExecutor& ex_;
};

StepExecutor::StepExecutor(const model::StepGraph& graph, const model::ParamSet& params,
                           model::ParamSet& grads, Context& ctx)
    : StepExecutor(graph, params, grads, ctx, keep_all_plan(graph)) {}

StepExecutor::StepExecutor(const model::StepGraph& graph, const model::ParamSet& params,
                           model::ParamSet& grads, Context& ctx, Plan plan)
    : graph_(graph), params_(params), grads_(grads), ctx_(ctx), analysis_(analyze_step(graph)) {
  set_plan(std::move(plan));
}

void StepExecutor::set_plan(Plan plan) {
  StepProgram train = lower(graph_, analysis_, plan, Pass::train);  // validates
  plan_ = std::move(plan);
  train_program_ = std::move(train);
  eval_program_.reset();
  features_program_.reset();
}

const StepProgram& StepExecutor::program(Pass pass) {
  if (pass == Pass::train) return train_program_;
  if (!eval_program_) eval_program_ = lower(graph_, analysis_, plan_, Pass::eval);
  return *eval_program_;
}

float StepExecutor::forward_backward(const Tensor& tokens, const Tensor& targets) {
  return recorded_step(Pass::train, tokens, targets);
}

float StepExecutor::forward(const Tensor& tokens, const Tensor& targets) {
  return recorded_step(Pass::eval, tokens, targets);
}

float StepExecutor::recorded_step(Pass pass, const Tensor& tokens, const Tensor& targets) {
  if (recording_) {
    timeline_.clear();
    ctx_.allocator().start_interval();
    record("before the step");
  }
  float loss = 0;
  {
    Env env(*this, pass);
    env.bind_input(graph_.tokens, tokens);
    env.bind_input(graph_.targets, targets);
    loss = run(env, program(pass));
  }  // the step's tensors go here
  if (recording_) record("after the step");
  return loss;
}

void StepExecutor::record(std::string label) {
  Allocator& alloc = ctx_.allocator();
  timeline_.push_back(timeline_point(std::move(label), alloc.stats()));
  alloc.start_interval();
}

Tensor StepExecutor::features(const Tensor& tokens) {
  Env env(*this, Pass::eval);
  env.bind_input(graph_.tokens, tokens);
  const int n_ops = static_cast<int>(graph_.ops().size());
  if (!features_program_)
    features_program_ = lower(graph_, analysis_, plan_, Pass::eval, n_ops - 1);
  run(env, *features_program_);
  // The loss op's input outlives the loop: its last forward use is the loss op.
  return env.value(graph_.op(n_ops - 1).inputs().front());
}

float StepExecutor::run(Env& env, const StepProgram& program) {
  if (profiling_) timings_.assign(graph_.ops().size(), OpTiming{});
  Store store(env);
  for (const Instruction& ins : program.instructions) {
    store.run(ins);
    if (recording_) record(instruction_label(graph_, ins));
  }
  return env.loss();
}

}  // namespace adacc::runtime
