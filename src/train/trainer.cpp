// The training loop (see trainer.h).
#include "adacc/train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/vector_math.h"
#include "adacc/plan/policy.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/adamw_optimizer.h"
#include "adacc/train/checkpoint.h"

namespace adacc::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_options(const TrainOptions& o) {
  auto fail = [](const std::string& m) { throw InvalidArgument("[train] " + m); };
  if (o.data.empty()) fail("no training data: pass --data FILE (a text file or llm.c shard)");
  if (o.batch <= 0) fail("--batch must be positive, got " + std::to_string(o.batch));
  if (o.seq <= 0) fail("--seq must be positive, got " + std::to_string(o.seq));
  if (o.steps <= 0) fail("--steps must be positive, got " + std::to_string(o.steps));
  if (!(o.lr > 0)) fail("--lr must be positive");
  if (o.val_fraction < 0 || o.val_fraction >= 1) fail("--val-fraction must be in [0, 1)");
  if (o.grad_clip < 0) fail("--grad-clip must be >= 0 (0 turns clipping off)");
  if (o.weight_decay < 0) fail("--weight-decay must be >= 0");
  if (!o.init.empty() && !o.resume.empty()) fail("give either --init or --resume, not both");
}

// The options that must not change across a resume, as JSON.
std::string resume_key(const TrainOptions& o, const model::ModelConfig& cfg) {
  nlohmann::json j;
  j["model"] = cfg.describe();
  j["batch"] = o.batch;
  j["seq"] = o.seq;
  j["data"] = std::filesystem::absolute(o.data).lexically_normal().string();
  j["shuffle"] = o.shuffle == Shuffle::on ? "on" : "off";
  j["seed"] = o.seed;
  j["val_fraction"] = o.val_fraction;
  return j.dump();
}

// The first token id that is not below `vocab`, as an error.
void check_vocabulary(const TokenStream& stream, const model::ModelConfig& cfg) {
  for (std::size_t i = 0; i < stream.tokens.size(); ++i) {
    if (stream.tokens[i] < 0 || stream.tokens[i] >= cfg.vocab) {
      throw InvalidArgument("[train] token " + std::to_string(stream.tokens[i]) + " at position " +
                            std::to_string(i) + " of " + stream.source +
                            " is outside the model's vocabulary V=" + std::to_string(cfg.vocab) +
                            "; use a model with V >= " + std::to_string(stream.vocab));
    }
  }
}

// The fixed part alone (parameters, gradients, AdamW state) must fit before any plan can.
void check_fixed_fits(std::size_t budget, const model::ModelConfig& cfg) {
  const std::size_t fixed = 4 * static_cast<std::size_t>(cfg.num_parameters()) * sizeof(float);
  if (fixed > budget) {
    throw PlanInfeasible("[train] budget " + format_bytes(budget) + " is below the " +
                         format_bytes(fixed) +
                         " that the parameters, gradients and AdamW state of " + cfg.describe() +
                         " need, before any activation; raise --budget");
  }
}

class MetricsWriter {
 public:
  MetricsWriter(const std::filesystem::path& path, bool append) {
    if (path.empty()) return;
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    out_.open(path, append ? std::ios::app : std::ios::trunc);
    if (!out_) {
      throw InvalidArgument("[train] cannot write metrics to '" + path.string() + "'");
    }
  }
  void write(const nlohmann::json& j) {
    if (!out_.is_open()) return;
    out_ << j.dump() << '\n';
    out_.flush();
  }

 private:
  std::ofstream out_;
};

}  // namespace

TrainResult train(const TrainOptions& o, const TrainCallbacks& cb) {
  check_options(o);
  const auto t_start = Clock::now();
  auto message = [&](const std::string& m) {
    if (cb.on_message) cb.on_message(m);
  };

  TokenStream stream = load_tokens(o.data, LoadOptions{o.sentencepiece_model});
  model::ModelConfig cfg;
  if (!o.resume.empty()) {
    cfg = read_checkpoint_config(o.resume);
  } else if (!o.init.empty() && o.model.empty()) {
    cfg = read_model_config(o.init);
  } else {
    cfg = model::parse_config(o.model.empty() ? kDefaultModel : o.model);
  }
  cfg.attention = o.attention;
  cfg.validate();
  check_vocabulary(stream, cfg);
  if (o.seq > cfg.max_seq) {
    throw InvalidArgument("[train] --seq " + std::to_string(o.seq) +
                          " is longer than the model's maximum T=" + std::to_string(cfg.max_seq));
  }

  // The plan and the budget, checked by the memory model before anything is allocated.
  const model::StepGraph graph = model::build_gpt2_graph(cfg, o.batch, o.seq);
  const runtime::Plan plan = plan::plan_for_policy(graph, o.policy);
  const int threads = Context::resolve_threads(o.threads);
  const auto fixed = runtime::training_fixed_bytes(cfg, o.batch, o.seq);
  std::size_t budget = SIZE_MAX;
  if (!o.budget.empty()) {
    const plan::Budget request = plan::parse_budget(o.budget);
    if (!request.percent) check_fixed_fits(request.bytes, cfg);
    budget = plan::resolve_budget(
        request,
        runtime::predict_step_memory(graph, runtime::keep_all_plan(graph), threads, fixed));
    plan::check_fits(runtime::predict_step_memory(graph, plan, threads, fixed), budget, o.policy);
  }

  // Data: train/validation split and loaders.
  const std::size_t window =
      static_cast<std::size_t>(o.batch) * static_cast<std::size_t>(o.seq) + 1;
  std::vector<std::int32_t> train_tokens, val_tokens;
  if (o.val_fraction > 0) {
    TrainValSplit split = split_train_val(stream.tokens, o.val_fraction, window);
    train_tokens = std::move(split.train);
    val_tokens = std::move(split.val);
  } else {
    train_tokens = std::move(stream.tokens);
  }
  stream.tokens.clear();
  BatchLoader loader(std::move(train_tokens), o.batch, o.seq, o.shuffle, o.seed);

  Allocator alloc(Device::cpu, budget);
  Context ctx(alloc, o.threads, o.seed);
  model::Gpt2 gpt(cfg, alloc);
  AdamWOptimizer opt(cfg, alloc, ops::AdamWConfig{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});

  const std::string key = resume_key(o, cfg);
  std::int64_t start_step = 0;
  if (!o.resume.empty()) {
    const TrainingState state = load_checkpoint(o.resume, cfg, gpt.params(), opt.m(), opt.v());
    if (state.options_json != key) {
      throw InvalidArgument("[train] cannot resume from " + o.resume.string() +
                            ": it was trained with other options (" + state.options_json +
                            "); now " + key);
    }
    start_step = state.step;
    opt.set_steps_taken(state.optimizer_steps);
    loader.set_state(state.loader);
    ctx.rng().set_state(state.rng);
    message("resumed from " + o.resume.string() + " at step " + std::to_string(start_step));
  } else if (!o.init.empty()) {
    load_parameters(o.init, cfg, gpt.params());
    message("initialised from " + o.init.string());
  } else {
    gpt.init_weights(ctx.rng());
  }
  if (start_step > o.steps) {
    throw InvalidArgument("[train] the checkpoint is at step " + std::to_string(start_step) +
                          ", beyond --steps " + std::to_string(o.steps));
  }

  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx, plan);
  Tensor tokens =
      Tensor::empty(alloc, {o.batch, o.seq}, DType::int32, MemCategory::activations, "tokens");
  Tensor targets =
      Tensor::empty(alloc, {o.batch, o.seq}, DType::int32, MemCategory::activations, "targets");

  LrSchedule schedule;
  schedule.kind = o.schedule;
  schedule.max_lr = o.lr;
  schedule.min_lr_fraction = o.min_lr_fraction;
  schedule.warmup_steps = o.warmup >= 0 ? o.warmup : o.steps / 50;
  schedule.total_steps = o.steps;

  MetricsWriter metrics(o.metrics, start_step > 0);

  const bool has_val = val_tokens.size() >= window;
  if (o.val_fraction > 0 && !has_val) {
    message("validation split has fewer than B*T+1 tokens; no validation");
  }
  auto validate = [&]() -> float {
    BatchLoader val_loader(val_tokens, o.batch, o.seq, Shuffle::off, 0);
    const std::int64_t n = std::min<std::int64_t>(
        o.val_batches, static_cast<std::int64_t>(val_loader.batches_per_epoch()));
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      val_loader.next(tokens.data<std::int32_t>(), targets.data<std::int32_t>());
      sum += exec.forward(tokens, targets);
    }
    return static_cast<float>(sum / static_cast<double>(std::max<std::int64_t>(n, 1)));
  };

  auto save = [&](std::int64_t step) {
    if (o.out_dir.empty()) return;
    TrainingState state;
    state.step = step;
    state.optimizer_steps = opt.steps_taken();
    state.rng = ctx.rng().state();
    state.loader = loader.state();
    state.options_json = key;
    save_checkpoint(o.out_dir, cfg, gpt.params(), opt.m(), opt.v(), state);
  };

  TrainResult result;
  int bad_in_a_row = 0;
  std::int64_t step = start_step;
  std::int64_t steps_this_run = 0;
  for (; step < o.steps; ++step) {
    if (o.stop_after >= 0 && steps_this_run >= o.stop_after) break;
    if (cb.interrupt != nullptr && cb.interrupt->load()) {
      message("interrupted at step " + std::to_string(step) + "; saving");
      break;
    }
    const auto t0 = Clock::now();
    loader.next(tokens.data<std::int32_t>(), targets.data<std::int32_t>());
    const float loss = exec.forward_backward(tokens, targets);
    const double norm = std::sqrt(ops::sum_of_squares(ctx, gpt.grads().flat));
    StepReport r;
    r.step = step + 1;
    r.total = o.steps;
    r.loss = loss;
    r.grad_norm = norm;
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      gpt.grads().flat.zero();
      ++bad_in_a_row;
      r.skipped = true;
      message("step " + std::to_string(step + 1) + ": " +
              (!std::isfinite(loss) ? "loss is " + std::to_string(loss)
                                    : "gradient norm is " + std::to_string(norm)) +
              "; update skipped (" + std::to_string(bad_in_a_row) + " in a row)");
      if (bad_in_a_row >= o.max_bad_steps) {
        save(step + 1);
        throw NumericalError(
            "[train] " + std::to_string(bad_in_a_row) +
            " steps in a row had NaN/inf loss or gradients (last at step " +
            std::to_string(step + 1) + ")" +
            (o.out_dir.empty() ? "" : "; checkpoint saved in " + o.out_dir.string()) +
            "; lower --lr or check the data");
      }
    } else {
      bad_in_a_row = 0;
      if (o.grad_clip > 0 && norm > o.grad_clip) {
        ops::scale_inplace(ctx, gpt.grads().flat, static_cast<float>(o.grad_clip / norm));
      }
      r.lr = schedule.at(step);
      opt.step(ctx, gpt.params(), gpt.grads(), r.lr);
    }
    r.ms = seconds_since(t0) * 1e3;
    r.tok_s = static_cast<double>(o.batch) * o.seq / (r.ms / 1e3);
    r.peak_bytes = alloc.stats().total_peak;
    r.elapsed_s = seconds_since(t_start);
    result.last_loss = loss;
    ++steps_this_run;
    metrics.write({{"step", r.step},
                   {"loss", r.loss},
                   {"lr", r.lr},
                   {"grad_norm", r.grad_norm},
                   {"ms", r.ms},
                   {"tok_s", r.tok_s},
                   {"peak_bytes", r.peak_bytes},
                   {"skipped", r.skipped}});
    if (cb.on_step) cb.on_step(r);

    const bool last = step + 1 == o.steps;
    if (has_val && !last && o.val_every > 0 && (step + 1) % o.val_every == 0) {
      const ValReport v{step + 1, validate()};
      metrics.write({{"step", v.step}, {"val_loss", v.val_loss}});
      if (cb.on_validation) cb.on_validation(v);
    }
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && !last) save(step + 1);
  }

  if (step == o.steps && has_val) {
    result.val_loss = validate();
    const ValReport v{step, result.val_loss};
    metrics.write({{"step", v.step}, {"val_loss", v.val_loss}});
    if (cb.on_validation) cb.on_validation(v);
  }
  save(step);
  if (!o.out_dir.empty() && step == o.steps) {
    save_safetensors(o.out_dir / "model.safetensors", cfg, gpt.params());
  }
  result.steps = step;
  result.seconds = seconds_since(t_start);
  result.peak_bytes = alloc.stats().total_peak;
  return result;
}

}  // namespace adacc::train
