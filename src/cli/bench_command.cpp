// `adacc bench` (see bench_command.h).
//
// Plans: every policy at every budget is asked for its plan (plan::PolicyPlanner); a policy
// with no plan within a budget is reported with its smallest feasible budget. Identical
// plans (a baseline is the same plan at every budget it fits) are measured once. Steps are
// interleaved: warm-up rounds, then `steps` rounds, each running one training step
// (forward and backward, no optimizer) of every distinct plan in turn; a plan's time is the
// median of its rounds and its peak the allocator's highest during its steps. The peaks of
// `adacc bench` hold the parameters, their gradients and the batch but no AdamW state
// (no optimizer step is taken), and predictions are made for the same.
#include "bench_command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adacc/core/byte_size.h"
#include "adacc/core/context.h"
#include "adacc/core/error.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/policy_planner.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/step_costs_source.h"

namespace adacc::cli {

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<double> parse_percents(const std::string& text) {
  std::vector<double> out;
  for (const std::string& item : split_list(text)) {
    std::string number = item;
    if (!number.empty() && number.back() == '%') number.pop_back();
    char* end = nullptr;
    const double v = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !(v > 0) || !std::isfinite(v)) {
      throw InvalidArgument("[bench] --budgets: cannot read '" + item +
                            "' as a percentage of none's peak; write e.g. 100,75,50");
    }
    out.push_back(v);
  }
  if (out.empty()) throw InvalidArgument("[bench] --budgets is empty; write e.g. 100,75,50");
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string plan_key(const runtime::Plan& plan) {
  std::string key;
  for (const runtime::Decision& d : plan.decisions) {
    key += static_cast<char>('0' + static_cast<int>(d.policy));
    key += d.codec;
    key += ';';
  }
  return key;
}

// One measured plan: the policies and budgets that chose it share it.
struct Measured {
  runtime::Plan plan;
  runtime::MemoryPrediction memory;
  double predicted_seconds = 0;
  std::vector<double> seconds;
  std::size_t peak = 0;
};

// One (budget, policy) cell of the table.
struct Cell {
  double percent = 0;
  std::size_t budget = 0;
  std::string policy;
  int measured = -1;         // index into the measured plans; -1: infeasible
  std::size_t smallest = 0;  // for infeasible cells: the policy's smallest budget
  double solve_seconds = 0;  // cost-based policies
  double gap = 0;
};

double percent_of_none(std::size_t bytes, const runtime::MemoryPrediction& none) {
  const double step = static_cast<double>(none.step_peak());
  return step > 0 ? 100.0 * (static_cast<double>(bytes) - static_cast<double>(none.fixed)) / step
                  : 0;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw BackendError("[bench] cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

// A gnuplot script: step time (ms) against peak memory (MiB), one series per policy.
void plot(const std::filesystem::path& dir, const std::vector<std::string>& policies,
          const std::string& title) {
  std::string script = "set terminal pngcairo size 1000,650\n";
  script += "set output '" + (dir / "bench.png").string() + "'\n";
  script += "set datafile separator ','\nset key outside right\nset grid\n";
  script += "set title '" + title + "' noenhanced\n";
  script += "set xlabel 'measured peak (MiB)'\nset ylabel 'measured step time (ms)'\n";
  script += "plot ";
  for (std::size_t i = 0; i < policies.size(); ++i) {
    if (i > 0) script += ", ";
    // Columns: 1 percent, 2 budget, 3 policy, 4 status, 5 predicted ms, 6 measured ms,
    // 7 predicted peak, 8 measured peak.
    script += "'" + (dir / "bench.csv").string() + "' using (strcol(3) eq '" + policies[i] +
              "' && strcol(4) eq 'ok' ? $8/1048576 : 1/0):6 with linespoints title '" +
              policies[i] + "'";
  }
  script += "\n";
  write_text(dir / "bench.gp", script);
  const std::string command = "gnuplot '" + (dir / "bench.gp").string() + "' 2>&1";
  if (std::system(command.c_str()) != 0) {  // NOLINT(cert-env33-c): a fixed command line
    throw BackendError("[bench] gnuplot failed on " + (dir / "bench.gp").string() +
                       "; install gnuplot (tools/setup.sh does) or plot bench.csv yourself");
  }
}

}  // namespace

void add_bench_command(CLI::App& app, BenchArgs& a) {
  CLI::App* c = app.add_subcommand(
      "bench",
      "Every policy at every budget on one model: predicted and measured step time and peak, "
      "interleaved in one process; a table, CSV, JSON and a PNG plot");
  c->add_option("--model", a.model, "A GPT-2 size or L=..,C=..,H=..,V=..,T=..")
      ->capture_default_str();
  c->add_option("--batch", a.batch, "Sequences per batch (B)")->capture_default_str();
  c->add_option("--seq", a.seq, "Tokens per sequence (T)")->capture_default_str();
  c->add_option("--attention", a.attention, "flash or naive")->capture_default_str();
  c->add_option("--threads", a.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--budgets", a.budgets,
                "Budgets in percent of none's activation peak (the step's bytes above the "
                "fixed part), comma-separated")
      ->capture_default_str();
  c->add_option("--policies", a.policies,
                "Policies, comma-separated (default: none, selective, llmc, full, every-2, "
                "compress, checkmate, adacc)");
  c->add_option("--steps", a.steps, "Measured steps per plan (the median is reported)")
      ->capture_default_str();
  c->add_option("--warmup", a.warmup, "Unmeasured steps per plan first")->capture_default_str();
  c->add_option("--out", a.out, "Directory for bench.csv, bench.json, bench.png")
      ->capture_default_str();
  c->add_option("--profile", a.profile,
                "Use this profile (adacc profile --out) instead of "
                "profiling now");
  c->add_option("--tolerance", a.tolerance,
                "Largest gradient error a codec may cause for adacc to use it (default " +
                    std::to_string(plan::kDefaultTolerance) + ")");
  c->add_option("--seed", a.seed, "Seed for the weights and the random batch")
      ->capture_default_str();
}

int run_bench(const BenchArgs& a) {
  if (a.steps < 1) throw InvalidArgument("[bench] --steps must be at least 1");
  if (a.warmup < 0) throw InvalidArgument("[bench] --warmup must be 0 or more");
  if (a.batch <= 0 || a.seq <= 0)
    throw InvalidArgument("[bench] --batch and --seq must be positive");
  const std::vector<double> percents = parse_percents(a.budgets);
  const std::vector<std::string> policies =
      a.policies.empty() ? plan::compared_policies() : split_list(a.policies);
  const double tolerance = a.tolerance < 0 ? plan::kDefaultTolerance : a.tolerance;

  model::ModelConfig cfg = model::parse_config(a.model);
  cfg.attention = ops::attention_kind_from_name(a.attention, "[bench] --attention");
  cfg.validate();
  if (a.seq > cfg.max_seq) {
    throw InvalidArgument("[bench] --seq " + std::to_string(a.seq) +
                          " is longer than the model's maximum T=" + std::to_string(cfg.max_seq));
  }
  const int threads = Context::resolve_threads(a.threads);
  const model::StepGraph graph = model::build_gpt2_graph(cfg, a.batch, a.seq);
  const auto fixed = runtime::training_fixed_bytes(cfg, a.batch, a.seq, /*with_optimizer=*/false);

  std::fprintf(stderr, "bench: %s, batch %d x %d, %d threads, %s attention\n",
               cfg.describe().c_str(), a.batch, a.seq, threads, a.attention.c_str());
  train::CostsRequest request;
  request.config = cfg;
  request.batch = a.batch;
  request.seq = a.seq;
  request.threads = threads;
  request.profile_file = a.profile;
  request.seed = a.seed;
  const plan::StepCosts costs = train::costs_for_run(graph, request, [](const std::string& line) {
    std::fprintf(stderr, "bench: %s\n", line.c_str());
  });
  const plan::PolicyPlanner planner(graph, threads, fixed, &costs, tolerance);

  // Plans for every cell; identical plans measured once.
  std::vector<Measured> measured;
  std::map<std::string, int> by_key;
  std::vector<Cell> cells;
  for (double pct : percents) {
    plan::Budget b;
    b.percent = true;
    b.share = pct / 100.0;
    const std::size_t budget = planner.resolve(b);
    for (const std::string& policy : policies) {
      Cell cell;
      cell.percent = pct;
      cell.budget = budget;
      cell.policy = policy;
      try {
        plan::ChosenPlan chosen = planner.choose(policy, budget);
        cell.solve_seconds = chosen.solve_seconds;
        cell.gap = chosen.gap;
        const std::string key = plan_key(chosen.plan);
        auto it = by_key.find(key);
        if (it == by_key.end()) {
          Measured m;
          m.plan = std::move(chosen.plan);
          m.memory = chosen.memory;
          m.predicted_seconds = chosen.predicted_seconds;
          it = by_key.emplace(key, static_cast<int>(measured.size())).first;
          measured.push_back(std::move(m));
        }
        cell.measured = it->second;
      } catch (const PlanInfeasible&) {
        cell.smallest = planner.smallest_budget(policy);
      }
      cells.push_back(std::move(cell));
    }
  }

  // The model, its gradients and a random batch; every plan runs on them.
  Allocator alloc;
  model::Gpt2 gpt(cfg, alloc);
  Context ctx(alloc, threads, a.seed);
  gpt.init_weights(ctx.rng());
  Tensor tokens =
      Tensor::empty(alloc, {a.batch, a.seq}, DType::int32, MemCategory::activations, "tokens");
  Tensor targets =
      Tensor::empty(alloc, {a.batch, a.seq}, DType::int32, MemCategory::activations, "targets");
  for (std::int64_t i = 0; i < tokens.numel(); ++i) {
    tokens.data<std::int32_t>()[i] =
        static_cast<std::int32_t>(ctx.rng().next_u64() % static_cast<std::uint64_t>(cfg.vocab));
    targets.data<std::int32_t>()[i] =
        static_cast<std::int32_t>(ctx.rng().next_u64() % static_cast<std::uint64_t>(cfg.vocab));
  }
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  std::fprintf(stderr, "bench: %zu distinct plans, %d warm-up and %d measured rounds\n",
               measured.size(), a.warmup, a.steps);
  for (int round = 0; round < a.warmup + a.steps; ++round) {
    for (Measured& m : measured) {
      exec.set_plan(m.plan);
      alloc.reset_peak();
      const auto t0 = std::chrono::steady_clock::now();
      const float loss = exec.forward_backward(tokens, targets);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!std::isfinite(loss)) throw NumericalError("[bench] the loss is not finite");
      m.peak = std::max(m.peak, alloc.stats().total_peak);
      if (round >= a.warmup) m.seconds.push_back(s);
    }
    std::fprintf(stderr, "bench: round %d of %d done\n", round + 1, a.warmup + a.steps);
  }

  // The table, CSV and JSON.
  const auto none_it = std::find_if(cells.begin(), cells.end(), [&](const Cell& c) {
    return c.policy == "none" && c.measured >= 0;
  });
  const double none_ms =
      none_it == cells.end() ? 0 : 1e3 * median(measured[none_it->measured].seconds);
  std::string csv =
      "percent,budget_bytes,policy,status,predicted_ms,measured_ms,predicted_peak,"
      "measured_peak,smallest_budget_percent,solve_seconds,gap\n";
  nlohmann::json json = nlohmann::json::array();
  std::printf("%7s %-10s %11s %11s %8s %12s %12s  %s\n", "budget", "policy", "pred ms", "meas ms",
              "vs none", "pred peak", "meas peak", "note");
  for (const Cell& c : cells) {
    nlohmann::json j = {{"percent", c.percent}, {"budget_bytes", c.budget}, {"policy", c.policy}};
    char line[512];
    if (c.measured < 0) {
      const double smallest = percent_of_none(c.smallest, planner.none());
      std::snprintf(line, sizeof line, "%6.0f%% %-10s %11s %11s %8s %12s %12s  needs %.1f%%\n",
                    c.percent, c.policy.c_str(), "-", "-", "-", "-", "-", smallest);
      std::printf("%s", line);
      csv += std::to_string(c.percent) + "," + std::to_string(c.budget) + "," + c.policy +
             ",infeasible,,,,," + std::to_string(smallest) + ",,\n";
      j["status"] = "infeasible";
      j["smallest_budget_bytes"] = c.smallest;
      j["smallest_budget_percent"] = smallest;
    } else {
      const Measured& m = measured[static_cast<std::size_t>(c.measured)];
      const double ms = 1e3 * median(m.seconds);
      const double pred_ms = 1e3 * m.predicted_seconds;
      char note[64] = "";
      if (c.policy == "adacc" || c.policy == "checkmate") {
        std::snprintf(note, sizeof note, "solved in %.3f s, gap %.2g", c.solve_seconds, c.gap);
      }
      std::snprintf(line, sizeof line, "%6.0f%% %-10s %11.1f %11.1f %7.3fx %12s %12s  %s\n",
                    c.percent, c.policy.c_str(), pred_ms, ms, none_ms > 0 ? ms / none_ms : 0.0,
                    format_bytes(m.memory.total_peak).c_str(), format_bytes(m.peak).c_str(), note);
      std::printf("%s", line);
      csv += std::to_string(c.percent) + "," + std::to_string(c.budget) + "," + c.policy + ",ok," +
             std::to_string(pred_ms) + "," + std::to_string(ms) + "," +
             std::to_string(m.memory.total_peak) + "," + std::to_string(m.peak) + ",," +
             std::to_string(c.solve_seconds) + "," + std::to_string(c.gap) + "\n";
      j["status"] = "ok";
      j["predicted_ms"] = pred_ms;
      j["measured_ms"] = ms;
      j["measured_ms_each"] = m.seconds;
      j["predicted_peak"] = m.memory.total_peak;
      j["measured_peak"] = m.peak;
      if (c.policy == "adacc" || c.policy == "checkmate") {
        j["solve_seconds"] = c.solve_seconds;
        j["gap"] = c.gap;
      }
    }
    json.push_back(j);
  }
  const std::filesystem::path dir(a.out);
  std::filesystem::create_directories(dir);
  write_text(dir / "bench.csv", csv);
  nlohmann::json doc = {{"model", cfg.describe()},
                        {"batch", a.batch},
                        {"seq", a.seq},
                        {"threads", threads},
                        {"attention", a.attention},
                        {"steps", a.steps},
                        {"none_peak", planner.none().total_peak},
                        {"fixed", planner.none().fixed},
                        {"cells", json}};
  write_text(dir / "bench.json", doc.dump(2) + "\n");
  plot(dir, policies,
       cfg.describe() + ", B=" + std::to_string(a.batch) + " T=" + std::to_string(a.seq) + ", " +
           a.attention + ", " + std::to_string(threads) + " threads");
  std::printf("wrote %s, %s, %s\n", (dir / "bench.csv").c_str(), (dir / "bench.json").c_str(),
              (dir / "bench.png").c_str());
  return 0;
}

}  // namespace adacc::cli
