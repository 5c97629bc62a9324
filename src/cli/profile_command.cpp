// `adacc profile` (see profile_command.h). Without --data the tokens are random; with it,
// the batch is the first B*T+1 tokens of its validation split (the last 5%), as for
// `adacc codecs`. The weights are GPT-2's random initialisation from --seed.
#include "profile_command.h"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "adacc/core/error.h"
#include "adacc/model/config.h"
#include "adacc/model/gpt2.h"
#include "adacc/plan/policy.h"
#include "adacc/plan/profile_cache.h"
#include "adacc/runtime/memory_model.h"
#include "adacc/runtime/step_profile.h"
#include "adacc/train/data.h"

namespace adacc::cli {

void add_profile_command(CLI::App& app, ProfileArgs& a) {
  CLI::App* c = app.add_subcommand(
      "profile",
      "Measure one training step's op times and codec costs on this machine (one block of "
      "the model), print them and write the profile file planners read");
  c->add_option("--model", a.model,
                "gpt2-tiny, gpt2, ..., or L=..,C=..,H=..,V=..,T=.. (L does not matter: one "
                "block is measured)")
      ->capture_default_str();
  c->add_option("--batch", a.batch, "Sequences per batch (B)")->capture_default_str();
  c->add_option("--seq", a.seq, "Tokens per sequence (T)")->capture_default_str();
  c->add_option("--threads", a.threads, "Threads (0: all cores)")->capture_default_str();
  c->add_option("--attention", a.attention, "flash or naive")->capture_default_str();
  c->add_option("--budget", a.budget,
                "Bytes profiling may use (\"2GiB\"), or a percentage of the full model's "
                "keep-everything peak (\"30%\", as adacc train's --budget)");
  c->add_option("--data", a.data,
                "Text file or llm.c shard: the batch is the start of its validation split "
                "(default: random tokens)");
  c->add_option("--codecs", a.codecs, "Comma-separated codec names (default: all)");
  c->add_option("--warmup", a.warmup, "Untimed steps first")->capture_default_str();
  c->add_option("--steps", a.steps, "Timed steps (median per op)")->capture_default_str();
  c->add_option("--codec-repeats", a.codec_repeats,
                "Encodes and decodes timed per codec and tensor (median)")
      ->capture_default_str();
  c->add_option("--seed", a.seed, "Seed of the random weights and tokens")->capture_default_str();
  c->add_option("--out", a.out, "Write the profile file here");
  c->add_option("--profile", a.profile, "Print this profile file instead of measuring");
  c->add_flag("--json", a.json, "Print the profile file's JSON instead of the table");
}

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double ms(double seconds) {
  return seconds * 1e3;
}

std::string percent(double x) {
  char b[32];
  if (x < 0) return "-";
  std::snprintf(b, sizeof b, x < 1e-3 ? "%.2e" : "%.3f", x * 100);
  return b;
}

void print_table(const plan::ProfileKey& key, const runtime::StepProfile& p) {
  std::printf("profile: one block of %s, batch %d x %d, %s attention, %d threads\n",
              p.config.spec().c_str(), p.batch, p.seq, key.attention.c_str(), p.threads);
  std::printf(
      "measured on %s, adacc %s, in %.2f s: median of %d step(s) after %d warm-up, %s "
      "tokens, random weights (seed %llu); peak %s%s%s\n",
      key.cpu_model.c_str(), key.adacc_version.c_str(), p.seconds, p.steps, p.warmup,
      p.real_data ? "data" : "random", static_cast<unsigned long long>(p.seed),
      format_bytes(p.peak_bytes).c_str(),
      p.budget == Allocator::kUnlimited ? "" : " of a budget of ",
      p.budget == Allocator::kUnlimited ? "" : format_bytes(p.budget).c_str());
  const plan::ProfileKey here = plan::profile_key(p);
  for (const std::string& d : plan::key_mismatches(key, here)) {
    std::printf("note: measured with %s; it does not apply here\n", d.c_str());
  }
  std::printf("\n| op | kind | forward ms | backward ms |\n|---|---|---:|---:|\n");
  double fwd = 0, bwd = 0, block = 0;
  for (const runtime::ProfiledOp& op : p.ops) {
    std::printf("| %s | %s | %.3f | %.3f |\n", op.name.c_str(), op.kind.c_str(),
                ms(op.forward_seconds), ms(op.backward_seconds));
    fwd += op.forward_seconds;
    bwd += op.backward_seconds;
    if (op.name.rfind("h0.", 0) == 0) block += op.forward_seconds + op.backward_seconds;
  }
  std::printf("| step (keep everything) | | %.3f | %.3f |\n", ms(fwd), ms(bwd));
  std::printf("\none block: %.3f ms a step; a model of L blocks: %.3f + L x %.3f ms\n", ms(block),
              ms(fwd + bwd - block), ms(block));
  std::printf(
      "\n| tensor | role | bytes | codec | ratio | encode ms | decode ms | tensor err %% | grad "
      "err %% |\n|---|---|---:|---|---:|---:|---:|---:|---:|\n");
  for (const runtime::ProfiledTensor& t : p.tensors) {
    for (const runtime::ProfiledCodec& c : t.codecs) {
      std::printf("| %s | %s | %zu | %s | %.2f | %.3f | %.3f | %s | %s |\n", t.name.c_str(),
                  std::string(model::tensor_role_name(t.role)).c_str(), t.bytes, c.codec.c_str(),
                  static_cast<double>(t.bytes) / static_cast<double>(c.encoded_bytes),
                  ms(c.encode_seconds), ms(c.decode_seconds), percent(c.tensor_error).c_str(),
                  percent(c.grad_error).c_str());
    }
    if (t.codecs.empty()) {
      std::printf("| %s | %s | %zu | (no codec) | | | | | |\n", t.name.c_str(),
                  std::string(model::tensor_role_name(t.role)).c_str(), t.bytes);
    }
  }
}

void print(const plan::ProfileKey& key, const runtime::StepProfile& p, bool json) {
  if (json) {
    std::fputs(plan::profile_to_json(key, p).c_str(), stdout);
  } else {
    print_table(key, p);
  }
}

}  // namespace

int run_profile(const ProfileArgs& a) {
  if (!a.profile.empty()) {
    const plan::StoredProfile s = plan::read_profile(a.profile);
    print(s.key, s.profile, a.json);
    return 0;
  }
  runtime::ProfileRequest r;
  r.config = model::parse_config(a.model);
  r.config.attention = ops::attention_kind_from_name(a.attention, "[profile] --attention");
  if (a.batch < 1 || a.seq < 1 || a.seq > r.config.max_seq) {
    throw InvalidArgument("[profile] need --batch >= 1 and 1 <= --seq <= " +
                          std::to_string(r.config.max_seq));
  }
  r.batch = a.batch;
  r.seq = a.seq;
  r.threads = Context::resolve_threads(a.threads);
  r.seed = a.seed;
  r.warmup = a.warmup;
  r.steps = a.steps;
  r.codec_repeats = a.codec_repeats;
  r.codecs = split_commas(a.codecs);
  if (!a.budget.empty()) {
    const plan::Budget b = plan::parse_budget(a.budget);
    if (b.percent) {
      // As adacc train: a share of the full model's keep-everything step.
      const model::StepGraph full = model::build_gpt2_graph(r.config, r.batch, r.seq);
      const runtime::MemoryPrediction none =
          runtime::predict_step_memory(full, runtime::keep_all_plan(full), r.threads,
                                       runtime::training_fixed_bytes(r.config, r.batch, r.seq));
      r.budget = plan::resolve_budget(b, none);
    } else {
      r.budget = b.bytes;
    }
  }
  if (!a.data.empty()) {
    const train::TokenStream stream = train::load_tokens(a.data);
    const std::size_t need =
        static_cast<std::size_t>(a.batch) * static_cast<std::size_t>(a.seq) + 1;
    const train::TrainValSplit split = train::split_train_val(stream.tokens, 0.05, need);
    r.data.assign(split.val.begin(), split.val.begin() + static_cast<std::ptrdiff_t>(need));
  }
  r.progress = [](std::string_view line) {
    std::fprintf(stderr, "[profile] %.*s\n", static_cast<int>(line.size()), line.data());
  };
  const runtime::StepProfile p = runtime::profile_step(r);
  const plan::ProfileKey key = plan::profile_key(p);
  if (!a.out.empty()) {
    plan::save_profile(a.out, key, p);
    std::fprintf(stderr, "[profile] wrote %s\n", a.out.c_str());
  }
  print(key, p, a.json);
  return 0;
}

}  // namespace adacc::cli
