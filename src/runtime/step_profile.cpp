// The step profiler (see step_profile.h): a one-block model, timed step by step under the
// keep-everything plan, then its saved activations measured with every codec, all under
// the request's byte budget.
#include "adacc/runtime/step_profile.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <utility>

#include "adacc/compress/codec.h"
#include "adacc/core/context.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/runtime/codec_measurement.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_executor.h"

namespace adacc::runtime {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void check_request(const ProfileRequest& r) {
  r.config.validate();
  if (r.batch < 1 || r.seq < 1 || r.seq > r.config.max_seq) {
    throw InvalidArgument(
        "[profile] need batch >= 1 and 1 <= seq <= " + std::to_string(r.config.max_seq) +
        ", got batch " + std::to_string(r.batch) + ", seq " + std::to_string(r.seq));
  }
  if (r.warmup < 0 || r.steps < 1 || r.codec_repeats < 1) {
    throw InvalidArgument("[profile] need warmup >= 0, steps >= 1 and codec repeats >= 1");
  }
  const std::size_t need = static_cast<std::size_t>(r.batch) * static_cast<std::size_t>(r.seq) + 1;
  if (!r.data.empty()) {
    if (r.data.size() != need) {
      throw InvalidArgument("[profile] data holds " + std::to_string(r.data.size()) +
                            " tokens; a batch of " + std::to_string(r.batch) + " x " +
                            std::to_string(r.seq) + " needs " + std::to_string(need));
    }
    for (std::int32_t t : r.data) {
      if (t < 0 || t >= r.config.vocab) {
        throw InvalidArgument("[profile] token " + std::to_string(t) +
                              " is outside the model's vocabulary of " +
                              std::to_string(r.config.vocab));
      }
    }
  }
  for (const std::string& n : r.codecs) compress::codec_by_name(n);  // unknown names throw
}

// The forward of a step keeping every tensor, for timing codecs on the real activations.
class ForwardEnv final : public model::OpEnv {
 public:
  ForwardEnv(const model::StepGraph& graph, const model::ParamSet& params, Context& ctx,
             const Tensor& tokens, const Tensor& targets)
      : graph_(graph), ctx_(ctx), values_(graph.tensors().size()) {
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      const model::TensorInfo& t = graph.tensors()[i];
      if (t.kind == model::TensorKind::param) {
        values_[i] = params.named().at(static_cast<std::size_t>(t.param_index)).tensor;
      }
    }
    values_.at(static_cast<std::size_t>(graph.tokens)) = tokens;
    values_.at(static_cast<std::size_t>(graph.targets)) = targets;
  }
  Context& ctx() override { return ctx_; }
  model::Pass pass() const override { return model::Pass::train; }
  const Tensor& value(model::TensorId id) override {
    const Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      throw InvalidArgument("[profile] tensor '" + graph_.tensor(id).name + "' is not available");
    }
    return t;
  }
  Tensor& output(model::TensorId id) override {
    Tensor& t = values_.at(static_cast<std::size_t>(id));
    if (!t.defined()) {
      const model::TensorInfo& info = graph_.tensor(id);
      t = Tensor::empty(ctx_.allocator(), info.shape, info.dtype, MemCategory::activations,
                        info.name);
    }
    return t;
  }
  Tensor& grad(model::TensorId id) override {
    Tensor& g = grads_[id];
    if (!g.defined()) {
      const model::TensorInfo& info = graph_.tensor(id);
      g = Tensor::zeros(ctx_.allocator(), info.shape, info.dtype, MemCategory::workspace,
                        "d" + info.name);
    }
    return g;
  }
  void set_loss(float) override {}

 private:
  const model::StepGraph& graph_;
  Context& ctx_;
  std::vector<Tensor> values_;
  std::map<model::TensorId, Tensor> grads_;  // the loss op's gradient of its parameter
};

double seconds_of(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string describe(const ProfileRequest& r) {
  std::string s = "one block of ";
  s += one_block_config(r.config).spec();
  s += ", batch ";
  s += std::to_string(r.batch);
  s += " x ";
  s += std::to_string(r.seq);
  s += ", ";
  s += ops::attention_kind_name(r.config.attention);
  s += " attention";
  return s;
}

}  // namespace

const ProfiledOp* StepProfile::find_op(std::string_view name) const {
  for (const ProfiledOp& op : ops) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

const ProfiledTensor* StepProfile::find_tensor(std::string_view name) const {
  for (const ProfiledTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

model::ModelConfig one_block_config(const model::ModelConfig& config) {
  model::ModelConfig c = config;
  c.n_layer = 1;
  c.name = "custom";
  return c;
}

std::string block_zero_name(std::string_view name, int layer) {
  if (layer < 0) return std::string(name);
  std::string prefix = "h";
  prefix += std::to_string(layer);
  prefix += '.';
  if (name.substr(0, prefix.size()) != prefix) {
    throw InvalidArgument("[profile] '" + std::string(name) + "' of block " +
                          std::to_string(layer) + " does not start with '" + prefix + "'");
  }
  std::string out = "h0.";
  out += name.substr(prefix.size());
  return out;
}

bool is_codec_candidate(const model::StepGraph& graph, const std::vector<bool>& saved,
                        model::TensorId id) {
  const model::TensorInfo& t = graph.tensor(id);
  return t.kind == model::TensorKind::activation && t.dtype == DType::f32 &&
         saved.at(static_cast<std::size_t>(id)) && is_recomputable(graph, id);
}

std::size_t profile_bytes_lower_bound(const ProfileRequest& request) {
  const model::ModelConfig cfg = one_block_config(request.config);
  const model::StepGraph graph = model::build_gpt2_graph(cfg, request.batch, request.seq);
  const auto fixed = training_fixed_bytes(cfg, request.batch, request.seq, false);
  return predict_step_memory(graph, keep_all_plan(graph), Context::resolve_threads(request.threads),
                             fixed)
      .total_peak;
}

StepProfile profile_step(const ProfileRequest& request) {
  check_request(request);
  const auto t_start = Clock::now();
  auto say = [&](const std::string& line) {
    if (request.progress) request.progress(line);
  };
  const int threads = Context::resolve_threads(request.threads);
  const model::ModelConfig cfg = one_block_config(request.config);
  const std::size_t lower = profile_bytes_lower_bound(request);
  const auto infeasible = [&](const std::string& detail) {
    std::string m = "[profile] profiling ";
    m += describe(request);
    m += " needs at least ";
    m += format_bytes(lower);
    m += " (";
    m += std::to_string(lower);
    m += " bytes: the one-block model's parameters and gradients, the batch and a "
         "keep-everything step), more to measure the codecs; the budget is ";
    m += format_bytes(request.budget);
    m += detail;
    m += "; raise --budget";
    return PlanInfeasible(m);
  };
  if (lower > request.budget) throw infeasible("");

  StepProfile p;
  p.config = cfg;
  p.batch = request.batch;
  p.seq = request.seq;
  p.threads = threads;
  p.warmup = request.warmup;
  p.steps = request.steps;
  p.codec_repeats = request.codec_repeats;
  p.seed = request.seed;
  p.real_data = !request.data.empty();
  p.budget = request.budget;

  Allocator alloc(Device::cpu, request.budget);
  try {
    Context ctx(alloc, threads, request.seed);
    model::Gpt2 gpt(cfg, alloc);
    Rng rng(request.seed);
    gpt.init_weights(rng);
    const std::int64_t n = static_cast<std::int64_t>(request.batch) * request.seq;
    Tensor tokens = Tensor::empty(alloc, {request.batch, request.seq}, DType::int32,
                                  MemCategory::activations, "tokens");
    Tensor targets = Tensor::empty(alloc, {request.batch, request.seq}, DType::int32,
                                   MemCategory::activations, "targets");
    std::vector<std::int32_t> ids = request.data;
    if (ids.empty()) {
      for (std::int64_t i = 0; i <= n; ++i) {
        ids.push_back(
            static_cast<std::int32_t>(rng.next_u64() % static_cast<std::uint64_t>(cfg.vocab)));
      }
    }
    std::copy_n(ids.begin(), n, tokens.data<std::int32_t>());
    std::copy_n(ids.begin() + 1, n, targets.data<std::int32_t>());
    const model::StepGraph graph = gpt.build_graph(request.batch, request.seq);

    // Op times: keep-everything steps, the median of each op over the timed steps.
    {
      StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
      exec.set_profiling(true);
      say("warming up: " + std::to_string(request.warmup) + " step(s)");
      for (int s = 0; s < request.warmup; ++s) exec.forward_backward(tokens, targets);
      say("timing " + std::to_string(request.steps) + " step(s) of " + describe(request));
      std::vector<std::vector<double>> fwd(graph.ops().size()), bwd(graph.ops().size());
      for (int s = 0; s < request.steps; ++s) {
        exec.forward_backward(tokens, targets);
        const std::vector<OpTiming>& t = exec.op_timings();
        for (std::size_t i = 0; i < t.size() && i < fwd.size(); ++i) {
          fwd[i].push_back(t[i].forward);
          bwd[i].push_back(t[i].backward);
        }
      }
      for (std::size_t i = 0; i < graph.ops().size(); ++i) {
        const model::OpNode& op = graph.op(static_cast<int>(i));
        p.ops.push_back(
            ProfiledOp{op.name(), std::string(op.kind()), median(fwd[i]), median(bwd[i])});
      }
    }

    // Codec errors: measure_codecs on the same step.
    say("measuring codec errors");
    std::vector<CodecMeasurement> errors;
    p.error_batch = request.batch;
    for (;;) {
      try {
        // The same graph on the first error_batch sequences: the tensor ids are the same.
        const model::StepGraph g = gpt.build_graph(p.error_batch, request.seq);
        const Tensor tok = tokens.view(0, {p.error_batch, request.seq});
        const Tensor tgt = targets.view(0, {p.error_batch, request.seq});
        errors = measure_codecs(g, gpt.params(), ctx, tok, tgt, request.codecs);
        break;
      } catch (const OutOfMemory&) {
        if (p.error_batch == 1) throw;
        p.error_batch /= 2;
        say("the codec errors do not fit the budget at this batch; measuring them on " +
            std::to_string(p.error_batch) + " sequence(s)");
      }
    }
    const std::vector<bool> saved = saved_tensors(graph);
    std::map<model::TensorId, std::size_t> index;  // tensor -> p.tensors
    for (std::size_t i = 0; i < graph.tensors().size(); ++i) {
      const auto id = static_cast<model::TensorId>(i);
      if (!is_codec_candidate(graph, saved, id)) continue;
      const model::TensorInfo& t = graph.tensor(id);
      index[id] = p.tensors.size();
      p.tensors.push_back(ProfiledTensor{t.name, t.role, t.nbytes(), {}});
    }
    for (const CodecMeasurement& m : errors) {
      const auto it = index.find(m.tensor);
      if (it == index.end()) {
        throw InvalidArgument("[profile] codec measured on '" + graph.tensor(m.tensor).name +
                              "', which is not a saved recomputable f32 activation");
      }
      const compress::Codec& codec = compress::codec_by_name(m.codec);
      p.tensors[it->second].codecs.push_back(
          ProfiledCodec{m.codec, codec.encoded_bytes(graph.tensor(m.tensor).shape), 0, 0,
                        m.tensor_error, m.grad_error, m.weight_grad_error});
    }
    // Codec times: each codec on the real activation, the median of `codec_repeats`
    // encodes and decodes (into one buffer, as the executor decodes into workspace).
    say("timing codecs (" + std::to_string(request.codec_repeats) + " times each)");
    ForwardEnv env(graph, gpt.params(), ctx, tokens, targets);
    for (const auto& op : graph.ops()) op->forward(env);
    for (const auto& [id, k] : index) {
      const model::TensorInfo& t = graph.tensor(id);
      const Tensor& x = env.value(id);
      Tensor dec =
          Tensor::empty(alloc, t.shape, DType::f32, MemCategory::workspace, t.name + " (decoded)");
      for (ProfiledCodec& pc : p.tensors[k].codecs) {
        const compress::Codec& codec = compress::codec_by_name(pc.codec);
        std::vector<double> enc, decs;
        for (int r = 0; r < request.codec_repeats; ++r) {
          Tensor e;
          enc.push_back(seconds_of([&] { e = codec.encode(ctx, x); }));
          decs.push_back(seconds_of([&] { codec.decode(ctx, e, dec); }));
        }
        pc.encode_seconds = median(enc);
        pc.decode_seconds = median(decs);
      }
    }
  } catch (const OutOfMemory& e) {
    std::string detail = " (";
    detail += e.what();
    detail += ")";
    throw infeasible(detail);
  }
  p.peak_bytes = alloc.stats().total_peak;
  p.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  say("profiled in " + std::to_string(p.seconds) + " s, peak " + format_bytes(p.peak_bytes));
  return p;
}

}  // namespace adacc::runtime
