// adacc's command line: `adacc train`, `sample`, `plan`, `profile`, `bench`, `codecs`. Library
// errors arrive as adacc::Error exceptions and leave here as one line on stderr and exit code 1.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <optional>
#include <set>
#include <string>

#include "adacc/core/byte_size.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/block_planner.h"
#include "adacc/plan/milp_planner.h"
#include "adacc/plan/plan_io.h"
#include "adacc/plan/plan_report.h"
#include "adacc/plan/policy.h"
#include "adacc/plan/policy_planner.h"
#include "adacc/runtime/step_program.h"
#include "adacc/train/checkpoint.h"
#include "adacc/train/run_options.h"
#include "adacc/train/sampler.h"
#include "adacc/train/step_costs_source.h"
#include "adacc/train/trainer.h"
#include "bench_command.h"
#include "codecs_command.h"
#include "profile_command.h"
#include "progress.h"
#include "stop_signals.h"

namespace {

struct TrainArgs {
  CLI::App* command = nullptr;
  adacc::train::TrainOptions options;
  std::string schedule = "cosine";
  std::string shuffle = "on";
  std::string attention = "flash";
  std::int64_t log_every = 0;
  int sample_tokens = 0;
};

void add_train_command(CLI::App& app, TrainArgs& a) {
  auto& o = a.options;
  CLI::App* c = app.add_subcommand("train", "Train a GPT-2 model on a text file or token shard");
  a.command = c;
  c->add_option("--data", o.data,
                "Training data: a text file (byte tokens) or an llm.c .bin shard (required "
                "unless --resume)");
  c->add_option("--model", o.model,
                std::string("gpt2-tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl, or "
                            "L=..,C=..,H=..,V=..,T=.. (default: --init's shape, else ") +
                    adacc::train::kDefaultModel + ")");
  c->add_option("--sentencepiece", o.sentencepiece_model,
                "Encode text with this sentencepiece (BPE) model instead of bytes");
  c->add_option("--init", o.init, "Start from these weights: an llm.c checkpoint or safetensors");
  c->add_option("--resume", o.resume,
                "Continue the run saved in this checkpoint directory, with its options (a "
                "flag that contradicts them is an error; --steps, --policy, --budget, --threads "
                "and the validation, saving and metrics flags may change)");
  c->add_option("--out", o.out_dir,
                "Checkpoint directory (model.safetensors is written at the end); locked while "
                "training; a new run needs it empty or absent; default with --resume: the "
                "resumed directory");
  c->add_flag("--overwrite", o.overwrite,
              "Let a new run replace the checkpoint in a non-empty --out (files adacc did "
              "not write are never deleted)");
  c->add_option("--metrics", o.metrics, "Write one JSON object per step to this file (JSONL)");
  c->add_option("--batch", o.batch, "Sequences per batch (B)")->capture_default_str();
  c->add_option("--seq", o.seq, "Tokens per sequence (T)")->capture_default_str();
  c->add_option("--steps", o.steps, "Optimizer steps in total")->capture_default_str();
  c->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--min-lr-fraction", o.min_lr_fraction, "Cosine floor as a fraction of --lr")
      ->capture_default_str();
  c->add_option("--warmup", o.warmup, "Warmup steps (-1: 2% of --steps)")->capture_default_str();
  c->add_option("--schedule", a.schedule, "cosine or constant")->capture_default_str();
  c->add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay (matrices only)")
      ->capture_default_str();
  c->add_option("--grad-clip", o.grad_clip, "Clip the global gradient norm to this (0: off)")
      ->capture_default_str();
  c->add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str();
  c->add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str();
  c->add_option("--eps", o.eps, "AdamW epsilon")->capture_default_str();
  c->add_option("--shuffle", a.shuffle,
                "on: windows in a seeded random order; off: llm.c's sequential batches")
      ->capture_default_str();
  c->add_option("--seed", o.seed, "Seed for initialisation and shuffling")->capture_default_str();
  c->add_option("--threads", o.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--attention", a.attention, "flash (saves log-sum-exp) or naive (saves T×T)")
      ->capture_default_str();
  c->add_option("--budget", o.budget,
                "Hard cap on engine memory: bytes (6GiB) or a share of the keep-everything peak "
                "above the fixed part (30%); default: what the machine has (its physical "
                "memory, or the cgroup's memory limit when lower)");
  c->add_option("--policy", o.policy,
                "Memory policy: adacc (keep, compress or recompute each tensor, chosen by an "
                "exact MILP from costs measured on this machine, within --budget), checkmate "
                "(the same, recompute only), none, full, selective, llmc, every-K, compress, "
                "compress-CODEC, or a plan file: a path ending in .json or containing / "
                "(./full is the file, full the baseline)")
      ->capture_default_str();
  c->add_option("--tolerance", o.tolerance,
                "adacc: the largest relative gradient error a codec may cause on a tensor "
                "(default " +
                    std::to_string(adacc::plan::kDefaultTolerance) + ")");
  c->add_option("--profile", o.profile,
                "adacc, checkmate: costs from this profile (adacc profile --out); default: the "
                "cached profile of this shape, else one measured now");
  c->add_option("--evolve", o.evolve,
                "Evolve the plan while training (docs/evolution.md): on, off, auto (on with "
                "--policy adacc): sample the compressed tensors, demote a codec that breaks "
                "--tolerance and re-plan between steps; monitor: sample and log only")
      ->capture_default_str();
  c->add_option("--time-limit", o.time_limit,
                "adacc, checkmate: CBC's limit per MILP solve in CPU seconds, for the first "
                "plan and every re-plan")
      ->capture_default_str();
  c->add_option("--monitor-every", o.monitor_every,
                "With --evolve: sample the compressed tensors every N steps (and each of the "
                "first 10)")
      ->capture_default_str();
  c->add_option("--budget-file", o.budget_file,
                "A file holding the budget (one line: 6GiB or 30%), read between steps: a new "
                "budget takes effect at the next step with a new plan, or is refused while "
                "training goes on");
  c->add_option("--val-fraction", o.val_fraction, "Share of the data held out for validation")
      ->capture_default_str();
  c->add_option("--val-every", o.val_every, "Validate every N steps (0: only at the end)")
      ->capture_default_str();
  c->add_option("--val-batches", o.val_batches, "Batches per validation")->capture_default_str();
  c->add_option("--save-every", o.save_every, "Save a checkpoint every N steps (0: at the end)")
      ->capture_default_str();
  c->add_option("--max-bad-steps", o.max_bad_steps,
                "Stop (after saving) after this many NaN/inf steps in a row")
      ->capture_default_str();
  c->add_option("--log-every", a.log_every,
                "Progress line every N steps when stdout is not a terminal (0: ~20 per run)")
      ->capture_default_str();
  c->add_option("--stop-after", o.stop_after,
                "Stop after N steps of this run, saving a checkpoint (to resume later)");
  c->add_option("--sample", a.sample_tokens, "Print this many sampled tokens at the end")
      ->capture_default_str();
}

// The flags the user typed, without their dashes.
std::set<std::string> given_flags(const CLI::App& command) {
  std::set<std::string> given;
  for (const CLI::Option* opt : command.get_options()) {
    if (opt->count() == 0) continue;
    std::string name = opt->get_name();
    name.erase(0, name.find_first_not_of('-'));
    given.insert(name);
  }
  return given;
}

int run_train(TrainArgs& a, adacc::cli::StopSignals& stop) {
  using namespace adacc;
  auto& o = a.options;
  if (!o.resume.empty()) {
    // The run's options come from its checkpoint; flags given again are checked against
    // them by train().
    const std::set<std::string> given = given_flags(*a.command);
    const train::TrainingState saved = train::read_checkpoint_state(o.resume);
    train::inherit_run_options(o, given, saved.options_json, o.resume);
    if (given.count("schedule") == 0) {
      a.schedule = o.schedule == train::ScheduleKind::cosine ? "cosine" : "constant";
    }
    if (given.count("shuffle") == 0) a.shuffle = o.shuffle == train::Shuffle::on ? "on" : "off";
    if (given.count("attention") == 0) {
      a.attention = std::string(ops::attention_kind_name(o.attention));
    }
  } else if (o.data.empty()) {
    throw InvalidArgument(
        "[train] no training data: pass --data FILE (a text file or llm.c "
        "shard), or --resume DIR to continue a run");
  }
  if (a.log_every < 0) {
    throw InvalidArgument("[train] --log-every must be >= 0, got " + std::to_string(a.log_every));
  }
  if (a.sample_tokens < 0) {
    throw InvalidArgument("[train] --sample must be >= 0, got " + std::to_string(a.sample_tokens));
  }
  o.schedule = train::parse_schedule(a.schedule);
  if (a.shuffle == "on") {
    o.shuffle = train::Shuffle::on;
  } else if (a.shuffle == "off") {
    o.shuffle = train::Shuffle::off;
  } else {
    throw InvalidArgument("[train] --shuffle must be on or off, not '" + a.shuffle + "'");
  }
  o.attention = ops::attention_kind_from_name(a.attention, "[train] --attention");
  const bool tty = isatty(fileno(stdout)) != 0;
  cli::ProgressDisplay progress(
      stdout, tty, a.log_every > 0 ? a.log_every : std::max<std::int64_t>(1, o.steps / 20));
  train::TrainCallbacks cb;
  cb.on_step = [&](const train::StepReport& r) { progress.step(r); };
  cb.on_validation = [&](const train::ValReport& v) { progress.validation(v); };
  cb.on_message = [&](const std::string& m) { progress.message(m); };
  cb.interrupt = stop.flag();
  stop.arm();
  const train::TrainResult r = train::train(o, cb);
  progress.finish();
  std::printf("%s: %lld steps in %s, last loss %.4f",
              r.stop == train::StopReason::interrupted ? "interrupted" : "done",
              static_cast<long long>(r.steps),
              cli::ProgressDisplay::format_duration(r.seconds).c_str(), r.last_loss);
  if (r.val_loss >= 0) std::printf(", validation loss %.4f", r.val_loss);
  std::printf(", peak memory %s\n", format_bytes(r.peak_bytes).c_str());
  const bool finished = r.steps == o.steps;
  if (!r.out_dir.empty()) {
    std::printf("checkpoint: %s (step %lld)%s\n", r.out_dir.c_str(),
                static_cast<long long>(r.saved_step),
                finished ? (", model: " + (r.out_dir / "model.safetensors").string()).c_str() : "");
    if (!finished) std::printf("resume with: adacc train --resume %s\n", r.out_dir.c_str());
  } else if (!finished) {
    std::printf("nothing was saved: pass --out DIR to keep a run that stops early\n");
  }
  if (r.stop == train::StopReason::interrupted) {
    std::fflush(stdout);
    return stop.exit_code();
  }
  if (a.sample_tokens > 0 && !r.out_dir.empty() && finished) {
    train::SampleOptions s;
    s.model = r.out_dir;
    s.sentencepiece_model = o.sentencepiece_model;
    s.tokens = a.sample_tokens;
    s.threads = o.threads;
    s.seed = o.seed;
    s.interrupt = stop.flag();
    std::printf("sample:\n");
    train::sample(s, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::printf("\n");
    if (stop.requested()) return stop.exit_code();
  }
  return 0;
}

void add_sample_command(CLI::App& app, adacc::train::SampleOptions& s) {
  CLI::App* c = app.add_subcommand("sample", "Generate text from a trained model");
  c->add_option("--model", s.model,
                "A checkpoint directory, a safetensors file or an llm.c checkpoint")
      ->required();
  c->add_option("--prompt", s.prompt, "Text to continue");
  c->add_option("--tokens", s.tokens, "Tokens to generate")->capture_default_str();
  c->add_option("--temperature", s.temperature, "Softmax temperature")->capture_default_str();
  c->add_option("--top-k", s.top_k, "Sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  c->add_option("--seed", s.seed, "Sampling seed")->capture_default_str();
  c->add_option("--threads", s.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--sentencepiece", s.sentencepiece_model,
                "The BPE model the model was trained with");
}

int run_sample(adacc::train::SampleOptions& s, adacc::cli::StopSignals& stop) {
  s.interrupt = stop.flag();
  stop.arm();
  std::fwrite(s.prompt.data(), 1, s.prompt.size(), stdout);
  adacc::train::sample(s, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  return stop.requested() ? stop.exit_code() : 0;
}

struct PlanArgs {
  std::string model = "gpt2";
  int batch = 4;
  int seq = 256;
  std::string policy = "none";
  std::string budget;
  int threads = 0;
  std::string attention = "flash";
  std::string out;
  bool table = false;
  bool explain = false;
  double tolerance = -1;  // -1: plan::kDefaultTolerance
  std::string profile;
  std::string export_mps, export_lp;
  double gap = adacc::plan::MilpOptions{}.gap;
  double time_limit = adacc::plan::MilpOptions{}.time_limit_seconds;
  bool schedule = false;
};

void add_plan_command(CLI::App& app, PlanArgs& a) {
  CLI::App* c = app.add_subcommand(
      "plan", "Print a memory plan and its predicted peak, without training or allocating");
  c->add_option("--model", a.model, "A GPT-2 size or L=..,C=..,H=..,V=..,T=..")
      ->capture_default_str();
  c->add_option("--batch", a.batch, "Sequences per batch (B)")->capture_default_str();
  c->add_option("--seq", a.seq, "Tokens per sequence (T)")->capture_default_str();
  c->add_option("--policy", a.policy,
                "adacc (keep/compress/recompute per tensor by an exact MILP over measured "
                "costs), checkmate (the same, recompute only), none, full, selective, llmc, "
                "every-K, compress, compress-CODEC, or a plan file: a path ending in .json or "
                "containing /")
      ->capture_default_str();
  c->add_option("--budget", a.budget,
                "Memory budget (6GiB or 30%): adacc and checkmate plan within it, other "
                "policies are checked against it");
  c->add_option("--tolerance", a.tolerance,
                "Largest relative gradient error a codec may cause on a tensor for adacc to use "
                "it there (default " +
                    std::to_string(adacc::plan::kDefaultTolerance) + ")");
  c->add_option("--profile", a.profile,
                "Costs from this profile (adacc profile --out) instead of the cache or a new "
                "profile");
  c->add_flag("--explain", a.explain,
              "Per saved tensor: the plan's choice and every choice's bytes saved per ms");
  c->add_option("--export-mps", a.export_mps,
                "adacc/checkmate: write the MILP to this file (free MPS) and solve exactly "
                "it: the whole step's model, also at depths planned by blocks otherwise");
  c->add_option("--export-lp", a.export_lp, "adacc/checkmate: as --export-mps, in CPLEX LP format");
  c->add_option("--gap", a.gap,
                "adacc/checkmate: relative optimality gap at which CBC stops (0: solve to "
                "optimality, which may take CBC's whole time limit)")
      ->capture_default_str();
  c->add_option("--time-limit", a.time_limit,
                "adacc/checkmate: CBC's limit per MILP solve, CPU seconds (the plan is then "
                "the best found, with its proven gap)")
      ->capture_default_str();
  c->add_option("--threads", a.threads, "Threads the step would use (0: all cores)")
      ->capture_default_str();
  c->add_option("--attention", a.attention, "flash or naive")->capture_default_str();
  c->add_option("--out", a.out, "Write the plan to this JSON file");
  c->add_flag("--table", a.table,
              "Print the policy of every saved tensor and what the step's schedule runs");
  c->add_flag("--schedule", a.schedule,
              "Print the training step's schedule: every forward, re-run, encode, decode, "
              "backward and free, in order");
}

std::string category_line(const std::array<std::size_t, adacc::kMemCategories>& bytes) {
  std::string line;
  for (int c = 0; c < adacc::kMemCategories; ++c) {
    if (bytes[c] == 0) continue;
    if (!line.empty()) line += ", ";
    line += std::string(adacc::category_name(static_cast<adacc::MemCategory>(c))) + " " +
            adacc::format_bytes(bytes[c]);
  }
  return line;
}

int run_plan(const PlanArgs& a) {
  using namespace adacc;
  if (a.batch <= 0)
    throw InvalidArgument("[plan] --batch must be positive, got " + std::to_string(a.batch));
  if (a.seq <= 0)
    throw InvalidArgument("[plan] --seq must be positive, got " + std::to_string(a.seq));
  if (a.threads < 0) {
    throw InvalidArgument("[plan] --threads must be 0 (all cores) or positive, got " +
                          std::to_string(a.threads));
  }
  if (!(a.gap >= 0 && a.gap < 1)) {
    throw InvalidArgument("[plan] --gap must be at least 0 and below 1 (0.001 is 0.1%), got " +
                          std::to_string(a.gap));
  }
  if (!(a.time_limit > 0)) {
    throw InvalidArgument("[plan] --time-limit must be a positive number of seconds, got " +
                          std::to_string(a.time_limit));
  }
  model::ModelConfig cfg = model::parse_config(a.model);
  cfg.attention = ops::attention_kind_from_name(a.attention, "[plan] --attention");
  const bool cost_based = plan::is_cost_based_policy(a.policy);
  if (!cost_based && (!a.export_mps.empty() || !a.export_lp.empty())) {
    throw InvalidArgument(
        "[plan] --export-mps and --export-lp write the MILP of --policy adacc "
        "or checkmate; policy '" +
        a.policy + "' solves none");
  }
  const double tolerance = a.tolerance < 0 ? plan::kDefaultTolerance : a.tolerance;
  const int threads = Context::resolve_threads(a.threads);
  const model::StepGraph graph = model::build_gpt2_graph(cfg, a.batch, a.seq);
  const auto fixed = runtime::training_fixed_bytes(cfg, a.batch, a.seq);
  std::printf("model: %s, batch %d x %d, %d threads, %s attention\n", cfg.describe().c_str(),
              a.batch, a.seq, threads, a.attention.c_str());
  std::printf("fixed: %s\n", category_line(fixed).c_str());
  std::fflush(stdout);

  // Costs: needed by adacc and checkmate, and by --explain; otherwise only used when a
  // profile is given (then every policy's predicted time is printed too).
  std::optional<plan::StepCosts> costs;
  const plan::PolicyPlanner bare(graph, threads, fixed, nullptr, tolerance);
  std::size_t budget = Allocator::kUnlimited;
  if (!a.budget.empty()) budget = bare.resolve(plan::parse_budget(a.budget));
  if (cost_based || a.explain || !a.profile.empty()) {
    train::CostsRequest request;
    request.config = cfg;
    request.batch = a.batch;
    request.seq = a.seq;
    request.threads = threads;
    request.profile_file = a.profile;
    request.budget = budget;
    costs = train::costs_for_run(graph, request, [](const std::string& line) {
      std::fprintf(stderr, "plan: %s\n", line.c_str());
    });
  }
  plan::PolicyPlanner planner(graph, threads, fixed, costs ? &*costs : nullptr, tolerance);
  planner.set_gap(a.gap);
  planner.set_time_limit(a.time_limit);
  // An exported model is the one solved: the whole step's, at every depth (docs/planner.md).
  const bool exporting = !a.export_mps.empty() || !a.export_lp.empty();
  if (exporting) {
    planner.set_whole_step(true);
    if (graph.config && graph.config->n_layer >= plan::kBlockPlannerFromLayers) {
      std::printf(
          "exporting: the whole step's MILP is solved instead of planning by blocks (slower "
          "at this depth; up to CBC's %g s limit, --time-limit)\n",
          a.time_limit);
    }
    if (!a.export_mps.empty()) {
      planner.export_milp(a.policy, budget, a.export_mps, plan::MilpFormat::mps);
      std::printf("MILP written to %s (free MPS)\n", a.export_mps.c_str());
    }
    if (!a.export_lp.empty()) {
      planner.export_milp(a.policy, budget, a.export_lp, plan::MilpFormat::lp);
      std::printf("MILP written to %s (CPLEX LP)\n", a.export_lp.c_str());
    }
    std::fflush(stdout);
  }
  const plan::ChosenPlan chosen = planner.choose(a.policy, budget);
  const runtime::MemoryPrediction& p = chosen.memory;
  std::printf("policy '%s': predicted peak %s (%zu bytes) at the %s\n", a.policy.c_str(),
              format_bytes(p.total_peak).c_str(), p.total_peak, p.where.c_str());
  std::printf("  at the peak: %s\n", category_line(p.at_peak).c_str());
  if (chosen.solved) {
    char objective[64] = "";
    if (chosen.method != "blocks") {  // the block planner solves several models
      std::snprintf(objective, sizeof objective, " to objective %.9g", chosen.model_objective);
    }
    std::printf(
        "  solved by CBC (%s) in %.3f s%s (time over none %.6f s; predicted step %.2f ms), "
        "proven gap %.4g%%%s\n",
        chosen.method == "blocks" ? "by blocks, docs/planner.md" : "the whole step",
        chosen.solve_seconds, objective, chosen.predicted_seconds - costs->keep_all_seconds(),
        chosen.predicted_seconds * 1e3, 100 * chosen.gap,
        chosen.proven_optimal ? " (optimal)" : "");
  }
  if (!chosen.source.empty() && chosen.source != "MILP") {
    std::printf("  the plan of %s: the MILP found none faster within its time limit\n",
                chosen.source.c_str());
  }
  if (chosen.predicted_seconds >= 0) {
    const double none_s = costs->keep_all_seconds();
    std::printf("  predicted step time %.2f ms, %.3fx none's %.2f ms\n",
                chosen.predicted_seconds * 1e3, chosen.predicted_seconds / none_s, none_s * 1e3);
  }
  std::printf("%s", plan::format_role_summary(graph, chosen.plan).c_str());
  std::printf("policies (predicted peak; step part above the fixed part%s):\n",
              costs ? "; predicted step time" : "");
  for (const std::string& name : plan::compared_policies()) {
    if (plan::is_cost_based_policy(name) && !costs) continue;
    std::string line;
    try {
      const plan::ChosenPlan b =
          planner.choose(name, plan::is_cost_based_policy(name) ? budget : Allocator::kUnlimited);
      char buf[200];
      std::snprintf(buf, sizeof buf, "  %-10s %12s  (%s)", name.c_str(),
                    format_bytes(b.memory.total_peak).c_str(),
                    format_bytes(b.memory.step_peak()).c_str());
      line = buf;
      if (b.predicted_seconds >= 0) {
        std::snprintf(buf, sizeof buf, "  %9.2f ms", b.predicted_seconds * 1e3);
        line += buf;
      }
      if (b.memory.total_peak > budget) line += "  over the budget";
    } catch (const PlanInfeasible&) {
      line = "  " + name + ": no plan within the budget; smallest feasible " +
             format_bytes(planner.smallest_budget(name));
    }
    std::printf("%s\n", line.c_str());
  }
  if (a.explain) {
    std::printf("\n%s", plan::format_explanation(graph, chosen.plan, *costs, tolerance).c_str());
  }
  if (a.table || a.schedule) {
    const std::string program =
        runtime::format_step_program(graph, runtime::lower(graph, chosen.plan, model::Pass::train));
    if (a.table) {
      std::printf("\n%s", plan::format_plan_table(graph, chosen.plan).c_str());
      std::printf("%s", program.substr(0, program.find('\n') + 1).c_str());  // the counts
    }
    if (a.schedule) std::printf("\n%s", program.c_str());
  }
  if (!a.out.empty()) {
    plan::save_plan_file(chosen.plan, graph, a.out);
    std::printf("plan written to %s\n", a.out.c_str());
  }
  if (budget != Allocator::kUnlimited) {
    std::printf("fits in the budget of %s (%zu bytes)\n", format_bytes(budget).c_str(), budget);
  }
  return 0;
}

}  // namespace

// What may escape is CLI11's error while the app is built (a programming error, before any
// input is read) or bad_alloc; std::terminate reporting it is the right outcome.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  adacc::cli::StopSignals stop;    // first: before any thread starts
  CLI::App app{"adacc: train GPT-2 language models under a hard memory budget"};
  app.require_subcommand(1);
  // A flag given twice takes its last value, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  TrainArgs train_args;
  adacc::train::SampleOptions sample_options;
  add_train_command(app, train_args);
  add_sample_command(app, sample_options);
  PlanArgs plan_args;
  add_plan_command(app, plan_args);
  adacc::cli::CodecsArgs codecs_args;
  adacc::cli::add_codecs_command(app, codecs_args);
  adacc::cli::BenchArgs bench_args;
  adacc::cli::add_bench_command(app, bench_args);
  adacc::cli::ProfileArgs profile_args;
  adacc::cli::add_profile_command(app, profile_args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "adacc: %s; see adacc %s--help\n", e.what(),
                 app.get_subcommands().empty()
                     ? ""
                     : (app.get_subcommands().front()->get_name() + " ").c_str());
    return 2;
  }
  try {
    if (app.got_subcommand("train")) return run_train(train_args, stop);
    if (app.got_subcommand("sample")) return run_sample(sample_options, stop);
    if (app.got_subcommand("plan")) return run_plan(plan_args);
    if (app.got_subcommand("codecs")) return adacc::cli::run_codecs(codecs_args);
    if (app.got_subcommand("bench")) return adacc::cli::run_bench(bench_args);
    if (app.got_subcommand("profile")) return adacc::cli::run_profile(profile_args);
  } catch (const adacc::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "adacc: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "adacc: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
