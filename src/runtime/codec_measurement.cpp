// Codec measurements on a real step (see codec_measurement.h). Memory is not a concern
// here: every activation and every gradient of the step is kept at once, so that each
// op's backward can be replayed in isolation as often as needed.
#include "adacc/runtime/codec_measurement.h"

#include <chrono>
#include <cmath>
#include <utility>

#include "adacc/compress/codec.h"
#include "adacc/core/error.h"
#include "adacc/ops/gelu_math.h"
#include "adacc/runtime/step_analysis.h"

namespace adacc::runtime {

namespace {

using model::TensorId;
using model::TensorKind;
using Clock = std::chrono::steady_clock;

// Every tensor and gradient of a step, never freed. Values can be overridden per id (with
// a form) to replay a backward on a decoded tensor.
class KeepAllEnv final : public model::OpEnv {
 public:
  KeepAllEnv(const model::StepGraph& graph, const model::ParamSet& params, Context& ctx,
             model::Pass pass)
      : graph_(graph),
        ctx_(ctx),
        pass_(pass),
        values_(graph.tensors().size()),
        grads_(graph.tensors().size()),
        forms_(graph.tensors().size(), model::SavedForm::value) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      const model::TensorInfo& t = graph.tensors()[i];
      if (t.kind == TensorKind::param) {
        values_[i] = params.named().at(static_cast<std::size_t>(t.param_index)).tensor;
      }
    }
  }

  Context& ctx() override { return ctx_; }
  model::Pass pass() const override { return pass_; }
  const Tensor& value(TensorId id) override {
    const Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      throw InvalidArgument("[measure] tensor '" + graph_.tensor(id).name + "' is not available");
    }
    return t;
  }
  Tensor& output(TensorId id) override {
    Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      const model::TensorInfo& info = graph_.tensor(id);
      t = Tensor::empty(ctx_.allocator(), info.shape, info.dtype, MemCategory::activations,
                        info.name);
    }
    return t;
  }
  Tensor& grad(TensorId id) override {
    Tensor& g = grads_.at(static_cast<std::size_t>(id));
    if (!g.defined()) {
      const model::TensorInfo& info = graph_.tensor(id);
      g = Tensor::zeros(ctx_.allocator(), info.shape, info.dtype, MemCategory::workspace,
                        "d" + info.name);
    }
    return g;
  }
  void set_loss(float) override {}
  model::SavedForm form(TensorId id) const override {
    return forms_.at(static_cast<std::size_t>(id));
  }

  // A copy of this env (sharing the tensors) whose gradients are empty but for the given
  // ones, for replaying one op's backward.
  KeepAllEnv replay(const std::vector<TensorId>& keep_grads) const {
    KeepAllEnv e = *this;
    for (Tensor& g : e.grads_) g = Tensor();
    for (TensorId id : keep_grads)
      e.grads_[static_cast<std::size_t>(id)] = grads_[static_cast<std::size_t>(id)];
    return e;
  }
  void set_value(TensorId id, Tensor t, model::SavedForm form) {
    values_[static_cast<std::size_t>(id)] = std::move(t);
    forms_[static_cast<std::size_t>(id)] = form;
  }
  const std::vector<Tensor>& grads() const { return grads_; }

 private:
  const model::StepGraph& graph_;
  Context& ctx_;
  model::Pass pass_;
  std::vector<Tensor> values_;
  std::vector<Tensor> grads_;
  std::vector<model::SavedForm> forms_;
};

// The gradients an op's backward writes (its inputs' and parameters'), as one vector of
// (tensor, is a parameter) pairs.
std::vector<std::pair<Tensor, bool>> written_grads(const model::StepGraph& graph,
                                                   const model::OpNode& op, KeepAllEnv& env) {
  std::vector<std::pair<Tensor, bool>> out;
  for (TensorId id : op.inputs()) {
    const model::TensorInfo& t = graph.tensor(id);
    if (t.dtype != DType::f32 || t.kind == TensorKind::input) continue;
    out.emplace_back(env.grads()[static_cast<std::size_t>(id)], t.kind == TensorKind::param);
  }
  return out;
}

// Squared norms accumulated in double.
struct ErrorSums {
  double diff = 0, ref = 0;
  void add(const Tensor& got, const Tensor& want) {
    if (!got.defined() || !want.defined()) return;
    const float* a = got.data<float>();
    const float* b = want.data<float>();
    for (std::int64_t i = 0; i < got.numel(); ++i) {
      const double d = static_cast<double>(a[i]) - b[i];
      diff += d * d;
      ref += static_cast<double>(b[i]) * b[i];
    }
  }
  double relative() const {
    if (ref > 0) return std::sqrt(diff / ref);
    return diff > 0 ? INFINITY : 0.0;
  }
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

std::vector<CodecMeasurement> measure_codecs(const model::StepGraph& graph,
                                             const model::ParamSet& params, Context& ctx,
                                             const Tensor& tokens, const Tensor& targets,
                                             const std::vector<std::string>& codecs) {
  const std::vector<std::string> names = codecs.empty() ? compress::codec_names() : codecs;
  for (const std::string& n : names) compress::codec_by_name(n);  // unknown names throw

  // One step, keeping everything.
  KeepAllEnv env(graph, params, ctx, model::Pass::train);
  env.set_value(graph.tokens, tokens, model::SavedForm::value);
  env.set_value(graph.targets, targets, model::SavedForm::value);
  for (const auto& op : graph.ops()) op->forward(env);
  for (auto it = graph.ops().rbegin(); it != graph.ops().rend(); ++it) (*it)->backward(env);

  const StepAnalysis analysis = analyze_step(graph);

  std::vector<CodecMeasurement> out;
  for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
    const auto id = static_cast<TensorId>(i);
    const model::TensorInfo& t = graph.tensor(id);
    if (t.kind != TensorKind::activation || t.dtype != DType::f32 || !analysis.saved[i] ||
        !analysis.recomputable[i]) {
      continue;
    }
    const std::vector<int>& readers = analysis.readers[i];
    const Tensor& x = env.value(id);
    // Reference gradients of each reader's backward, replayed on the exact tensor (equal
    // to the step's own, but computed alone, so that the comparison is like for like).
    std::vector<std::vector<std::pair<Tensor, bool>>> ref;
    for (int o : readers) {
      const model::OpNode* op = &graph.op(o);
      KeepAllEnv e = env.replay(op->outputs());
      op->backward(e);
      ref.push_back(written_grads(graph, *op, e));
    }
    for (const std::string& name : names) {
      const compress::Codec& codec = compress::codec_by_name(name);
      if (!codec.applies_to(t.role)) continue;
      CodecMeasurement m;
      m.tensor = id;
      m.codec = name;
      m.ratio = static_cast<double>(t.nbytes()) / static_cast<double>(codec.encoded_bytes(t.shape));
      auto t0 = Clock::now();
      const Tensor enc = codec.encode(ctx, x);
      m.encode_seconds = seconds_since(t0);
      Tensor dec = Tensor::empty(ctx.allocator(), t.shape, DType::f32, MemCategory::workspace,
                                 t.name + " (decoded)");
      t0 = Clock::now();
      codec.decode(ctx, enc, dec);
      m.decode_seconds = seconds_since(t0);
      // The tensor error, in the form the codec stores.
      ErrorSums tensor_err;
      if (codec.decodes_to() == model::SavedForm::gelu_derivative) {
        Tensor exact =
            Tensor::empty(ctx.allocator(), t.shape, DType::f32, MemCategory::workspace, "gelu'");
        for (std::int64_t k = 0; k < x.numel(); ++k) {
          exact.data<float>()[k] = ops::gelu_math::gelu_derivative(x.data<float>()[k]);
        }
        tensor_err.add(dec, exact);
      } else {
        tensor_err.add(dec, x);
      }
      m.tensor_error = tensor_err.relative();
      // The gradient error: each reader's backward on the decoded tensor.
      ErrorSums all, weights;
      bool has_weights = false;
      for (std::size_t r = 0; r < readers.size(); ++r) {
        const model::OpNode* op = &graph.op(readers[r]);
        KeepAllEnv e = env.replay(op->outputs());
        e.set_value(id, dec, codec.decodes_to());
        op->backward(e);
        const auto got = written_grads(graph, *op, e);
        for (std::size_t g = 0; g < got.size(); ++g) {
          all.add(got[g].first, ref[r][g].first);
          if (got[g].second) {
            weights.add(got[g].first, ref[r][g].first);
            has_weights = true;
          }
        }
      }
      m.grad_error = all.relative();
      m.weight_grad_error = has_weights ? weights.relative() : -1.0;
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace adacc::runtime
