// The training loop (see trainer.h).
#include "adacc/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/evolve/evolution.h"
#include "adacc/model/gpt2.h"
#include "adacc/ops/vector_math.h"
#include "adacc/plan/plan_io.h"
#include "adacc/plan/plan_report.h"
#include "adacc/plan/policy.h"
#include "adacc/plan/policy_planner.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_analysis.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/adamw_optimizer.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/machine_memory.h"
#include "adacc/train/metrics_log.h"
#include "adacc/train/run_directory.h"
#include "adacc/train/run_options.h"
#include "adacc/train/step_costs_source.h"

namespace adacc::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
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

// The fixed part alone (parameters, gradients, AdamW state, the batch) must fit before any
// plan can. `budget_source`: "budget" for --budget, else how the machine's memory was found.
void check_fixed_fits(std::size_t budget, std::size_t fixed, const model::ModelConfig& cfg,
                      const std::string& budget_source) {
  if (fixed > budget) {
    throw PlanInfeasible("[train] " + budget_source + " " + format_bytes(budget) +
                         " is below the " + format_bytes(fixed) +
                         " that the parameters, gradients and AdamW state of " + cfg.describe() +
                         " and the batch need, before any activation; " +
                         (budget_source == "budget" ? "raise --budget" : "choose a smaller model"));
  }
}

// The fixed part and the policy's step must fit in what the machine has (no --budget).
void check_fits_machine(const runtime::MemoryPrediction& p, const MachineMemory& m,
                        const std::string& policy) {
  if (p.total_peak <= m.bytes) return;
  throw PlanInfeasible("[train] policy '" + policy + "' needs " + format_bytes(p.total_peak) +
                       " at its peak (" + p.where + ") but " + m.source + " is " +
                       format_bytes(m.bytes) +
                       "; lower --batch or --seq, choose a policy that saves memory (adacc plan "
                       "compares them), or a smaller model");
}

std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

}  // namespace

void check_train_options(const TrainOptions& o) {
  auto fail = [](const std::string& m) { throw InvalidArgument("[train] " + m); };
  auto num = [](double v) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (o.data.empty()) fail("no training data: pass --data FILE (a text file or llm.c shard)");
  if (o.batch <= 0) fail("--batch must be positive, got " + std::to_string(o.batch));
  if (o.seq <= 0) fail("--seq must be positive, got " + std::to_string(o.seq));
  if (o.steps <= 0) fail("--steps must be positive, got " + std::to_string(o.steps));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("--lr must be a positive number, got " + num(o.lr));
  if (!(o.min_lr_fraction >= 0 && o.min_lr_fraction <= 1)) {
    fail("--min-lr-fraction must be in [0, 1], got " + num(o.min_lr_fraction));
  }
  if (o.warmup < -1)
    fail("--warmup must be >= 0 (or -1: 2% of --steps), got " + std::to_string(o.warmup));
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) {
    fail("--val-fraction must be in [0, 1), got " + num(o.val_fraction));
  }
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip)) {
    fail("--grad-clip must be >= 0 (0 turns clipping off), got " + num(o.grad_clip));
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    fail("--weight-decay must be >= 0, got " + num(o.weight_decay));
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) fail("--beta1 must be in [0, 1), got " + num(o.beta1));
  if (!(o.beta2 >= 0 && o.beta2 < 1)) fail("--beta2 must be in [0, 1), got " + num(o.beta2));
  if (!(o.eps > 0) || !std::isfinite(o.eps)) {
    fail("--eps must be a positive number, got " + num(o.eps));
  }
  if (o.threads < 0 || o.threads > kMaxThreads) {
    fail("--threads must be 0 (all cores) or 1.." + std::to_string(kMaxThreads) + ", got " +
         std::to_string(o.threads));
  }
  if (o.val_every < 0) fail("--val-every must be >= 0, got " + std::to_string(o.val_every));
  if (o.val_batches <= 0) {
    fail("--val-batches must be positive, got " + std::to_string(o.val_batches));
  }
  if (o.save_every < 0) fail("--save-every must be >= 0, got " + std::to_string(o.save_every));
  if (o.max_bad_steps <= 0) {
    fail("--max-bad-steps must be positive, got " + std::to_string(o.max_bad_steps));
  }
  if (o.stop_after < -1) fail("--stop-after must be >= 0, got " + std::to_string(o.stop_after));
  if (!o.init.empty() && !o.resume.empty()) fail("give either --init or --resume, not both");
  if (o.evolve != "on" && o.evolve != "off" && o.evolve != "auto" && o.evolve != "monitor") {
    fail("--evolve must be on, off, auto or monitor, got '" + o.evolve + "'");
  }
  if (!(o.time_limit > 0))
    fail("--time-limit must be a positive number of seconds, got " + num(o.time_limit));
  if (o.monitor_every <= 0) {
    fail("--monitor-every must be positive, got " + std::to_string(o.monitor_every));
  }
}

// The run's state, built phase by phase in the constructor (run directory, model, budget,
// plan, data, memory, initial weights) and stepped by run(): load batch, forward/backward,
// after-backward hooks, clip, update, step-boundary hooks, log, validate, checkpoint.
struct Trainer::State {
  State(const TrainOptions& options, const TrainCallbacks& callbacks)
      : o(options), cb(callbacks), t_start(Clock::now()) {}

  void message(const std::string& m) const {
    if (cb.on_message) cb.on_message(m);
  }

  // ---- setup phases, in order
  void open_run_directory();
  void read_model();
  void choose_plan();
  void load_data();
  void allocate();
  void initialise_weights();

  // ---- step phases
  void load_batch();
  float forward_backward();
  // NaN/inf handling, clipping and the optimizer update; fills r.lr / r.skipped.
  void update(StepReport& r, float loss, double norm);
  void log(StepReport& r, float loss);
  float validate();
  void save(std::int64_t step);
  std::string last_good() const;

  // Copies: the trainer outlives the arguments it was built from (e.g. default callbacks).
  const TrainOptions o;
  const TrainCallbacks cb;
  Clock::time_point t_start;

  std::filesystem::path out;
  bool resume_in_place = false;
  std::optional<RunDirectory> run_dir;
  model::ModelConfig cfg;
  TrainingState resumed;

  MachineMemory machine;
  std::optional<model::StepGraph> graph;
  int threads = 1;
  std::array<std::size_t, kMemCategories> fixed{};
  double tolerance = 0;
  std::size_t budget = SIZE_MAX;
  std::optional<plan::StepCosts> costs;
  runtime::Plan plan;  // chosen before the executor exists; exec->plan() is the one in force

  std::optional<BatchLoader> loader;
  std::vector<std::int32_t> val_tokens;
  std::size_t window = 0;
  bool has_val = false;

  std::optional<Allocator> alloc;
  std::optional<Context> ctx;
  std::optional<model::Gpt2> gpt;
  std::optional<AdamWOptimizer> opt;
  std::optional<runtime::StepExecutor> exec;
  Tensor tokens, targets;
  LrSchedule schedule;
  std::optional<MetricsLog> metrics;
  std::string options_record;

  std::int64_t start_step = 0;
  std::int64_t step = 0;
  std::int64_t steps_this_run = 0;
  int bad_in_a_row = 0;
  TrainResult result;

  std::vector<StepHook> after_backward, step_boundary;

  // ---- evolution (evolve/evolution.h)
  void start_evolution();
  void evolve_at_boundary();
  std::optional<evolve::Evolution> evolution;
};

void Trainer::State::open_run_directory() {
  // An unusable --out, or one that another trainer holds, is an error before any work.
  out = !o.out_dir.empty() ? o.out_dir : o.resume;  // a resumed run saves where it was
  std::error_code ec;
  resume_in_place = !o.resume.empty() && std::filesystem::exists(out, ec) &&
                    std::filesystem::equivalent(out, o.resume, ec);
  if (!out.empty()) {
    run_dir.emplace(out, resume_in_place ? RunDirectory::Mode::resume
                         : o.overwrite   ? RunDirectory::Mode::overwrite
                                         : RunDirectory::Mode::fresh);
  }
}

void Trainer::State::read_model() {
  // The model, and (on resume) the checkpoint's state, before any data or memory.
  if (!o.resume.empty()) {
    resumed = read_checkpoint_state(o.resume);
    cfg = read_checkpoint_config(o.resume);
    if (!o.model.empty()) {
      if (!model::parse_config(o.model).same_shape(cfg)) {
        throw InvalidArgument("[train] --model " + o.model + " contradicts the run in " +
                              quoted(o.resume) + ", which is of model " + cfg.describe() +
                              "; leave --model out to continue with the checkpoint's model");
      }
    }
    check_resume_options(o, resumed.options_json, o.resume);
    if (resumed.step > o.steps) {
      throw InvalidArgument("[train] the checkpoint in " + quoted(o.resume) + " is at step " +
                            std::to_string(resumed.step) + ", beyond --steps " +
                            std::to_string(o.steps));
    }
    // Finish what a save killed in this directory left (this process holds its lock).
    if (resume_in_place) remove_interrupted_writes(run_dir->path());
  } else if (!o.init.empty() && o.model.empty()) {
    cfg = read_model_config(o.init);
  } else {
    cfg = model::parse_config(o.model.empty() ? kDefaultModel : o.model);
  }
  cfg.attention = o.attention;
  cfg.validate();
  if (o.seq > cfg.max_seq) {
    throw InvalidArgument("[train] --seq " + std::to_string(o.seq) +
                          " is longer than the model's maximum T=" + std::to_string(cfg.max_seq));
  }
}

void Trainer::State::choose_plan() {
  // The budget: --budget, capped by what the machine has. The fixed part is checked
  // before the step graph is built, the plan by the memory model; nothing is allocated
  // yet.
  machine = machine_memory();
  fixed = runtime::training_fixed_bytes(cfg, o.batch, o.seq);
  std::size_t fixed_total = 0;
  for (std::size_t b : fixed) fixed_total += b;
  std::optional<plan::Budget> request;
  if (!o.budget.empty()) request = plan::parse_budget(o.budget);
  if (request && !request->percent) check_fixed_fits(request->bytes, fixed_total, cfg, "budget");
  if (machine.bytes > 0) check_fixed_fits(machine.bytes, fixed_total, cfg, machine.source);
  graph.emplace(model::build_gpt2_graph(cfg, o.batch, o.seq));
  threads = Context::resolve_threads(o.threads);
  tolerance = o.tolerance < 0 ? plan::kDefaultTolerance : o.tolerance;
  if (request) {
    budget = plan::PolicyPlanner(*graph, threads, fixed, nullptr, tolerance).resolve(*request);
  }
  // The cost-based policies plan from measured costs: a profile of one block (within the
  // budget), cached for the next run.
  if (plan::is_cost_based_policy(o.policy)) {
    CostsRequest cr;
    cr.config = cfg;
    cr.batch = o.batch;
    cr.seq = o.seq;
    cr.threads = threads;
    cr.profile_file = o.profile.string();
    cr.budget = std::min(budget, machine.bytes > 0 ? machine.bytes : SIZE_MAX);
    cr.seed = o.seed;
    costs = costs_for_run(*graph, cr, [this](const std::string& m) { message(m); });
  }
  plan::PolicyPlanner planner(*graph, threads, fixed, costs ? &*costs : nullptr, tolerance);
  planner.set_time_limit(o.time_limit);
  if (!resumed.plan_json.empty()) {
    // The run evolved its plan: it continues under the plan (and budget) in force when it
    // was saved, unless --budget changed on resume (then it plans anew).
    const nlohmann::json ev = resumed.evolve_json.empty()
                                  ? nlohmann::json::object()
                                  : nlohmann::json::parse(resumed.evolve_json);
    const std::size_t saved_budget = ev.value("budget", std::size_t{SIZE_MAX});
    const std::string saved_request = ev.value("request", std::string());
    if (saved_request == o.budget && ev.value("policy", std::string()) == o.policy) {
      plan = plan::from_json(*graph, resumed.plan_json);
      budget = saved_budget;
      const runtime::MemoryPrediction p =
          runtime::predict_step_memory(*graph, plan, threads, fixed);
      message("continuing under the checkpoint's plan: predicted peak " +
              format_bytes(p.total_peak) + " of budget " +
              (budget == SIZE_MAX ? std::string("none") : format_bytes(budget)));
      if (machine.bytes > 0) check_fits_machine(p, machine, o.policy);
      return;
    }
  }
  const plan::ChosenPlan chosen = planner.choose(o.policy, budget);
  plan = chosen.plan;
  const runtime::MemoryPrediction& predicted = chosen.memory;
  if (plan::is_cost_based_policy(o.policy)) {
    char how[96];
    if (chosen.source == "MILP") {
      std::snprintf(how, sizeof how, "solved%s in %.2f s, gap %.2g%%",
                    chosen.method == "blocks" ? " by blocks" : "", chosen.solve_seconds,
                    100 * chosen.gap);
    } else {
      std::snprintf(how, sizeof how, "the plan of %s (the MILP found none faster)",
                    chosen.source.c_str());
    }
    char line[320];
    std::snprintf(line, sizeof line,
                  "plan '%s': predicted peak %s of budget %s; predicted step %.1f ms = %.3fx "
                  "none's; %s",
                  o.policy.c_str(), format_bytes(predicted.total_peak).c_str(),
                  budget == SIZE_MAX ? "none" : format_bytes(budget).c_str(),
                  chosen.predicted_seconds * 1e3,
                  chosen.predicted_seconds / costs->keep_all_seconds(), how);
    message(line);
    std::string summary = plan::format_role_summary(*graph, plan);
    while (!summary.empty() && summary.back() == '\n') summary.pop_back();
    message(summary);
  }
  // Whatever the budget says, the step must fit in what the machine has.
  if (machine.bytes > 0) check_fits_machine(predicted, machine, o.policy);
}

void Trainer::State::load_data() {
  // Train/validation split and loaders.
  TokenStream stream = load_tokens(o.data, LoadOptions{o.sentencepiece_model});
  check_vocabulary(stream, cfg);
  window = static_cast<std::size_t>(o.batch) * static_cast<std::size_t>(o.seq) + 1;
  std::vector<std::int32_t> train_tokens;
  if (o.val_fraction > 0) {
    TrainValSplit split = split_train_val(stream.tokens, o.val_fraction, window);
    train_tokens = std::move(split.train);
    val_tokens = std::move(split.val);
  } else {
    train_tokens = std::move(stream.tokens);
  }
  stream.tokens.clear();
  loader.emplace(std::move(train_tokens), o.batch, o.seq, o.shuffle, o.seed);
  has_val = val_tokens.size() >= window;
}

void Trainer::State::allocate() {
  alloc.emplace(Device::cpu, budget);
  ctx.emplace(*alloc, o.threads, o.seed);
  gpt.emplace(cfg, *alloc);
  opt.emplace(cfg, *alloc, ops::AdamWConfig{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  options_record = run_options_json(o, cfg);
}

void Trainer::State::initialise_weights() {
  if (!o.resume.empty()) {
    const TrainingState state = load_checkpoint(o.resume, cfg, gpt->params(), opt->m(), opt->v());
    start_step = state.step;
    opt->set_steps_taken(state.optimizer_steps);
    loader->set_state(state.loader);
    ctx->rng().set_state(state.rng);
    if (resume_in_place) {
      result.out_dir = run_dir->path();
      result.saved_step = start_step;
    }
    message("resumed from " + o.resume.string() + " at step " + std::to_string(start_step));
  } else if (!o.init.empty()) {
    load_parameters(o.init, cfg, gpt->params());
    message("initialised from " + o.init.string());
  } else {
    gpt->init_weights(ctx->rng());
  }

  exec.emplace(*graph, gpt->params(), gpt->grads(), *ctx, plan);
  tokens =
      Tensor::empty(*alloc, {o.batch, o.seq}, DType::int32, MemCategory::activations, "tokens");
  targets =
      Tensor::empty(*alloc, {o.batch, o.seq}, DType::int32, MemCategory::activations, "targets");

  schedule.kind = o.schedule;
  schedule.max_lr = o.lr;
  schedule.min_lr_fraction = o.min_lr_fraction;
  schedule.warmup_steps = o.warmup >= 0 ? o.warmup : o.steps / 50;
  schedule.total_steps = o.steps;

  metrics.emplace(o.metrics, o.resume.empty() ? -1 : start_step);
  if (o.val_fraction > 0 && !has_val) {
    message("validation split has fewer than B*T+1 tokens; no validation");
  }
}

namespace {

// What a plan does with the saved activations' bytes (f32 sizes): kept, recomputed, and
// compressed per codec, as one "plan" event of the metrics log (tools/plot_evolution.sh).
nlohmann::ordered_json plan_event(const model::StepGraph& graph, const runtime::Plan& plan,
                                  std::int64_t step) {
  const std::vector<bool> saved = runtime::saved_tensors(graph);
  std::size_t kept = 0, recomputed = 0;
  std::map<std::string, std::size_t> codecs;
  for (std::size_t t = 0; t < graph.tensors().size() && t < plan.decisions.size(); ++t) {
    const model::TensorInfo& info = graph.tensors()[t];
    if (info.kind != model::TensorKind::activation || !saved[t]) continue;
    const runtime::Decision& d = plan.decisions[t];
    if (d.policy == runtime::Policy::keep) kept += info.nbytes();
    if (d.policy == runtime::Policy::recompute) recomputed += info.nbytes();
    if (d.policy == runtime::Policy::compress) codecs[d.codec] += info.nbytes();
  }
  nlohmann::ordered_json j{
      {"event", "plan"}, {"step", step}, {"keep", kept}, {"recompute", recomputed}};
  for (const auto& [name, bytes] : codecs) j[name] = bytes;
  return j;
}

}  // namespace

void Trainer::State::start_evolution() {
  const bool on =
      o.evolve == "on" || o.evolve == "monitor" || (o.evolve == "auto" && o.policy == "adacc");
  if (!on && o.budget_file.empty()) return;
  evolve::EvolutionOptions eo;
  eo.policy = o.policy;
  eo.tolerance = tolerance;
  eo.threads = threads;
  eo.fixed = fixed;
  eo.monitor = on && costs.has_value();
  eo.demote = o.evolve != "monitor";
  eo.monitor_period = o.monitor_every;
  eo.budget_file = o.budget_file.string();
  eo.solver_seconds = o.time_limit;
  evolution.emplace(*graph, costs ? &*costs : nullptr, eo);
  if (!resumed.evolve_json.empty()) {
    const nlohmann::json ev = nlohmann::json::parse(resumed.evolve_json);
    std::vector<std::pair<model::TensorId, std::string>> demoted;
    for (const auto& d : ev.value("demoted", nlohmann::json::array())) {
      demoted.emplace_back(graph->find(d.at(0).get<std::string>()), d.at(1).get<std::string>());
    }
    evolution->restore_demoted(demoted);
  }
  metrics->write(plan_event(*graph, exec->plan(), start_step).dump());
  if (evolve::CodecMonitor* m = evolution->monitor()) {
    m->set_first_step(start_step);
    exec->set_encode_observer(
        [this, m](model::TensorId id, const compress::Codec& codec, const Tensor& value) {
          m->observe(*ctx, id, codec, value);
        });
  }
  message(std::string("evolution on: ") +
          (evolution->monitor() != nullptr
               ? "codecs sampled every " + std::to_string(o.monitor_every) + " steps"
               : "no codec monitor") +
          (o.budget_file.empty() ? "" : "; budget file " + o.budget_file.string()));
}

void Trainer::State::evolve_at_boundary() {
  if (!evolution) return;
  const std::int64_t done = step + 1;
  if (evolve::CodecMonitor* m = evolution->monitor(); m != nullptr && m->sampling()) {
    nlohmann::ordered_json samples = nlohmann::ordered_json::array();
    int violations = 0;
    for (const auto& [id, cs] : m->samples()) {
      const double grad_error = m->estimate_grad_error(id, cs.first, cs.second.tensor_error);
      violations += grad_error > tolerance ? 1 : 0;
      samples.push_back({{"tensor", graph->tensor(id).name},
                         {"codec", cs.first},
                         {"tensor_error", cs.second.tensor_error},
                         {"grad_error", grad_error},
                         {"outlier_share", cs.second.outlier_share},
                         {"max_over_sigma", cs.second.max_over_sigma}});
    }
    metrics->write(nlohmann::ordered_json{
        {"event", "monitor"}, {"step", done}, {"violations", violations}, {"samples", samples}}
                       .dump());
  }
  if (evolve::CodecMonitor* m = evolution->monitor();
      m != nullptr && m->sampling() && !m->in_warmup()) {
    evolution->observe_op_times(exec->op_timings());
  }
  std::optional<evolve::Refusal> refused;
  std::optional<evolve::Replan> r = evolution->at_boundary(done, exec->plan(), budget, refused);
  if (refused) {
    metrics->write(nlohmann::ordered_json{{"event", "refused"},
                                          {"step", done},
                                          {"request", refused->text},
                                          {"message", refused->message}}
                       .dump());
    message("step " + std::to_string(done) + ": " + refused->message);
  }
  if (!r) return;
  // Growing: the budget first; shrinking: the plan first (the step boundary holds only
  // the fixed part, which fits any budget a plan was found for).
  exec->set_plan(r->plan);
  alloc->set_budget(r->budget);
  budget = r->budget;
  nlohmann::ordered_json changes = nlohmann::ordered_json::array();
  for (const evolve::PlanChange& c : r->changes) {
    changes.push_back({{"tensor", c.tensor}, {"from", c.from}, {"to", c.to}});
  }
  nlohmann::ordered_json event{{"event", "replan"},   {"step", done},
                               {"reason", r->reason}, {"changes", changes},
                               {"budget", r->budget}, {"predicted_peak", r->predicted_peak}};
  if (r->predicted_seconds >= 0) event["predicted_ms"] = r->predicted_seconds * 1e3;
  if (!r->violations.empty()) {
    nlohmann::ordered_json v = nlohmann::ordered_json::array();
    for (const evolve::Violation& x : r->violations) {
      v.push_back({{"tensor", graph->tensor(x.tensor).name},
                   {"codec", x.codec},
                   {"grad_error", x.grad_error}});
    }
    event["violations"] = v;
  }
  metrics->write(event.dump());
  metrics->write(plan_event(*graph, r->plan, done).dump());
  message("step " + std::to_string(done) + ": re-planned (" + r->reason +
          "): " + std::to_string(r->changes.size()) + " tensor(s) changed; predicted peak " +
          format_bytes(r->predicted_peak) + " of budget " + format_bytes(r->budget) +
          (r->predicted_seconds >= 0
               ? ", predicted step " +
                     std::to_string(static_cast<long>(r->predicted_seconds * 1e3)) + " ms"
               : std::string()));
}

void Trainer::State::load_batch() {
  alloc->start_interval();  // the step's own peak (StepReport::step_peak_bytes)
  loader->next(tokens.data<std::int32_t>(), targets.data<std::int32_t>());
}

float Trainer::State::forward_backward() {
  return exec->forward_backward(tokens, targets);
}

void Trainer::State::update(StepReport& r, float loss, double norm) {
  if (!std::isfinite(loss) || !std::isfinite(norm)) {
    gpt->grads().flat.zero();
    ++bad_in_a_row;
    r.skipped = true;
    message("step " + std::to_string(step + 1) + ": " +
            (!std::isfinite(loss) ? "loss is " + std::to_string(loss)
                                  : "gradient norm is " + std::to_string(norm)) +
            "; update skipped (" + std::to_string(bad_in_a_row) + " in a row)");
    if (bad_in_a_row >= o.max_bad_steps) {
      // The state that diverged is not saved: it would replace the last good one.
      throw NumericalError("[train] " + std::to_string(bad_in_a_row) +
                           " steps in a row had NaN/inf loss or gradients (last at step " +
                           std::to_string(step + 1) + "); " + last_good() +
                           "; lower --lr or check the data");
    }
    return;
  }
  bad_in_a_row = 0;
  if (o.grad_clip > 0 && norm > o.grad_clip) {
    ops::scale_inplace(*ctx, gpt->grads().flat, static_cast<float>(o.grad_clip / norm));
  }
  r.lr = schedule.at(step);
  opt->step(*ctx, gpt->params(), gpt->grads(), r.lr);
}

void Trainer::State::log(StepReport& r, float loss) {
  r.tok_s = static_cast<double>(o.batch) * o.seq / (r.ms / 1e3);
  r.peak_bytes = alloc->stats().total_peak;
  r.step_peak_bytes = alloc->stats().interval_peak;
  r.elapsed_s = seconds_since(t_start);
  result.last_loss = loss;
  metrics->write(nlohmann::json{
      {"step", r.step},
      {"loss", r.loss},
      {"lr", r.lr},
      {"grad_norm", r.grad_norm},
      {"ms", r.ms},
      {"tok_s", r.tok_s},
      {"peak_bytes", r.peak_bytes},
      {"step_peak_bytes", r.step_peak_bytes},
      {"skipped",
       r.skipped}}.dump());
  if (cb.on_step) cb.on_step(r);
}

float Trainer::State::validate() {
  BatchLoader val_loader(val_tokens, o.batch, o.seq, Shuffle::off, 0);
  const std::int64_t n = std::min<std::int64_t>(
      o.val_batches, static_cast<std::int64_t>(val_loader.batches_per_epoch()));
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    val_loader.next(tokens.data<std::int32_t>(), targets.data<std::int32_t>());
    sum += exec->forward(tokens, targets);
  }
  return static_cast<float>(sum / static_cast<double>(std::max<std::int64_t>(n, 1)));
}

void Trainer::State::save(std::int64_t at) {
  if (!run_dir) return;
  TrainingState state;
  state.step = at;
  state.optimizer_steps = opt->steps_taken();
  state.rng = ctx->rng().state();
  state.loader = loader->state();
  state.options_json = options_record;
  if (evolution) {
    state.plan_json = plan::to_json(exec->plan(), *graph);
    nlohmann::json demoted = nlohmann::json::array();
    for (const auto& [id, codec] : evolution->demoted()) {
      demoted.push_back({graph->tensor(id).name, codec});
    }
    state.evolve_json = nlohmann::json{
        {"budget", budget},
        {"request", o.budget},
        {"policy", o.policy},
        {"demoted",
         demoted}}.dump();
  }
  run_dir->commit();
  save_checkpoint(run_dir->path(), cfg, gpt->params(), opt->m(), opt->v(), state);
  result.out_dir = run_dir->path();
  result.saved_step = at;
}

std::string Trainer::State::last_good() const {
  if (result.saved_step < 0) return "no checkpoint was saved";
  return "the last good checkpoint (step " + std::to_string(result.saved_step) + ") is in " +
         quoted(result.out_dir) + "; resume with --resume " + result.out_dir.string();
}

Trainer::Trainer(const TrainOptions& options, const TrainCallbacks& callbacks) {
  check_train_options(options);
  s_ = std::make_unique<State>(options, callbacks);
  s_->open_run_directory();
  s_->read_model();
  s_->choose_plan();
  s_->load_data();
  s_->allocate();
  s_->initialise_weights();
  s_->start_evolution();
}

Trainer::~Trainer() = default;

void Trainer::add_after_backward(StepHook hook) {
  s_->after_backward.push_back(std::move(hook));
}
void Trainer::add_step_boundary(StepHook hook) {
  s_->step_boundary.push_back(std::move(hook));
}

const model::StepGraph& Trainer::graph() const {
  return *s_->graph;
}
const runtime::Plan& Trainer::plan() const {
  return s_->exec->plan();
}
Allocator& Trainer::allocator() {
  return *s_->alloc;
}
std::int64_t Trainer::step() const {
  return s_->step;
}

TrainResult Trainer::run() {
  State& t = *s_;
  const TrainOptions& o = t.o;
  t.step = t.start_step;
  for (; t.step < o.steps; ++t.step) {
    if (o.stop_after >= 0 && t.steps_this_run >= o.stop_after) {
      t.result.stop = StopReason::stop_after;
      break;
    }
    if (t.cb.interrupt != nullptr && t.cb.interrupt->load()) {
      t.message("interrupted at step " + std::to_string(t.step) +
                (t.run_dir ? "; saving" : "; nothing is saved (no --out)"));
      t.result.stop = StopReason::interrupted;
      break;
    }
    if (t.evolution && t.evolution->monitor() != nullptr) {
      t.evolution->monitor()->begin_step(t.step + 1);
      t.exec->set_profiling(t.evolution->monitor()->sampling());  // op times for drift
    }
    const auto t0 = Clock::now();
    t.load_batch();
    const float loss = t.forward_backward();
    if (t.cb.on_gradients) t.cb.on_gradients(t.step + 1, t.gpt->grads().flat);
    for (const StepHook& h : t.after_backward) h(*this, t.step + 1);
    const double norm = std::sqrt(ops::sum_of_squares(*t.ctx, t.gpt->grads().flat));
    StepReport r;
    r.step = t.step + 1;
    r.total = o.steps;
    r.loss = loss;
    r.grad_norm = norm;
    t.update(r, loss, norm);
    r.ms = seconds_since(t0) * 1e3;
    ++t.steps_this_run;
    const bool last = t.step + 1 == o.steps;
    // The step boundary (not after the last step): before the log and the checkpoint, so
    // that a checkpoint holds what the next step runs under.
    if (!last) {
      t.evolve_at_boundary();
      for (const StepHook& h : t.step_boundary) h(*this, t.step + 1);
    }
    t.log(r, loss);

    if (t.has_val && !last && o.val_every > 0 && (t.step + 1) % o.val_every == 0) {
      const ValReport v{t.step + 1, t.validate()};
      t.metrics->write(nlohmann::json{{"step", v.step}, {"val_loss", v.val_loss}}.dump());
      if (t.cb.on_validation) t.cb.on_validation(v);
    }
    // No checkpoint of a step whose update was skipped: it may be the start of a
    // divergence, and would replace the last good checkpoint.
    if (o.save_every > 0 && (t.step + 1) % o.save_every == 0 && !last && t.bad_in_a_row == 0) {
      t.save(t.step + 1);
    }
  }

  if (t.step == o.steps && t.has_val) {
    t.result.val_loss = t.validate();
    const ValReport v{t.step, t.result.val_loss};
    t.metrics->write(nlohmann::json{{"step", v.step}, {"val_loss", v.val_loss}}.dump());
    if (t.cb.on_validation) t.cb.on_validation(v);
  }
  if (t.result.saved_step != t.step) t.save(t.step);
  if (t.run_dir && t.step == o.steps) {
    save_safetensors(t.run_dir->path() / "model.safetensors", t.cfg, t.gpt->params());
    remove_interrupted_writes(t.run_dir->path());  // e.g. of a model.safetensors killed mid-way
  }
  t.result.steps = t.step;
  t.result.seconds = seconds_since(t.t_start);
  t.result.peak_bytes = t.alloc->stats().total_peak;
  return t.result;
}

TrainResult train(const TrainOptions& options, const TrainCallbacks& callbacks) {
  Trainer trainer(options, callbacks);
  return trainer.run();
}

}  // namespace adacc::train
