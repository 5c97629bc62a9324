// The run's options in its checkpoint (see run_options.h).
#include "adacc/train/run_options.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "adacc/core/error.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Entry {
  const char* flag;  // without the dashes
  bool defines_run;
  json (*get)(const TrainOptions&);
  void (*set)(TrainOptions&, const json&);
};

std::string absolute_path(const fs::path& p) {
  return p.empty() ? std::string() : fs::absolute(p).lexically_normal().string();
}

const char* schedule_name(ScheduleKind k) {
  return k == ScheduleKind::cosine ? "cosine" : "constant";
}

std::int64_t resolved_warmup(const TrainOptions& o) {
  return o.warmup >= 0 ? o.warmup : o.steps / 50;
}

// clang-format off
constexpr Entry kEntries[] = {
  {"data", true, [](const TrainOptions& o) { return json(absolute_path(o.data)); },
   [](TrainOptions& o, const json& j) { o.data = j.get<std::string>(); }},
  {"sentencepiece", true,
   [](const TrainOptions& o) { return json(absolute_path(o.sentencepiece_model)); },
   [](TrainOptions& o, const json& j) { o.sentencepiece_model = j.get<std::string>(); }},
  {"batch", true, [](const TrainOptions& o) { return json(o.batch); },
   [](TrainOptions& o, const json& j) { o.batch = j.get<int>(); }},
  {"seq", true, [](const TrainOptions& o) { return json(o.seq); },
   [](TrainOptions& o, const json& j) { o.seq = j.get<int>(); }},
  {"shuffle", true,
   [](const TrainOptions& o) { return json(o.shuffle == Shuffle::on ? "on" : "off"); },
   [](TrainOptions& o, const json& j) {
     o.shuffle = j.get<std::string>() == "off" ? Shuffle::off : Shuffle::on; }},
  {"seed", true, [](const TrainOptions& o) { return json(o.seed); },
   [](TrainOptions& o, const json& j) { o.seed = j.get<std::uint64_t>(); }},
  {"val-fraction", true, [](const TrainOptions& o) { return json(o.val_fraction); },
   [](TrainOptions& o, const json& j) { o.val_fraction = j.get<double>(); }},
  {"schedule", true, [](const TrainOptions& o) { return json(schedule_name(o.schedule)); },
   [](TrainOptions& o, const json& j) { o.schedule = parse_schedule(j.get<std::string>()); }},
  {"lr", true, [](const TrainOptions& o) { return json(o.lr); },
   [](TrainOptions& o, const json& j) { o.lr = j.get<float>(); }},
  {"min-lr-fraction", true, [](const TrainOptions& o) { return json(o.min_lr_fraction); },
   [](TrainOptions& o, const json& j) { o.min_lr_fraction = j.get<float>(); }},
  {"warmup", true, [](const TrainOptions& o) { return json(resolved_warmup(o)); },
   [](TrainOptions& o, const json& j) { o.warmup = j.get<std::int64_t>(); }},
  {"weight-decay", true, [](const TrainOptions& o) { return json(o.weight_decay); },
   [](TrainOptions& o, const json& j) { o.weight_decay = j.get<float>(); }},
  {"grad-clip", true, [](const TrainOptions& o) { return json(o.grad_clip); },
   [](TrainOptions& o, const json& j) { o.grad_clip = j.get<float>(); }},
  {"beta1", true, [](const TrainOptions& o) { return json(o.beta1); },
   [](TrainOptions& o, const json& j) { o.beta1 = j.get<float>(); }},
  {"beta2", true, [](const TrainOptions& o) { return json(o.beta2); },
   [](TrainOptions& o, const json& j) { o.beta2 = j.get<float>(); }},
  {"eps", true, [](const TrainOptions& o) { return json(o.eps); },
   [](TrainOptions& o, const json& j) { o.eps = j.get<float>(); }},
  {"steps", false, [](const TrainOptions& o) { return json(o.steps); },
   [](TrainOptions& o, const json& j) { o.steps = j.get<std::int64_t>(); }},
  {"attention", false,
   [](const TrainOptions& o) { return json(std::string(ops::attention_kind_name(o.attention))); },
   [](TrainOptions& o, const json& j) {
     o.attention = j.get<std::string>() == "naive" ? ops::AttentionKind::naive
                                                   : ops::AttentionKind::flash; }},
  {"policy", false, [](const TrainOptions& o) { return json(o.policy); },
   [](TrainOptions& o, const json& j) { o.policy = j.get<std::string>(); }},
  {"budget", false, [](const TrainOptions& o) { return json(o.budget); },
   [](TrainOptions& o, const json& j) { o.budget = j.get<std::string>(); }},
  {"val-every", false, [](const TrainOptions& o) { return json(o.val_every); },
   [](TrainOptions& o, const json& j) { o.val_every = j.get<std::int64_t>(); }},
  {"val-batches", false, [](const TrainOptions& o) { return json(o.val_batches); },
   [](TrainOptions& o, const json& j) { o.val_batches = j.get<int>(); }},
  {"save-every", false, [](const TrainOptions& o) { return json(o.save_every); },
   [](TrainOptions& o, const json& j) { o.save_every = j.get<std::int64_t>(); }},
  {"max-bad-steps", false, [](const TrainOptions& o) { return json(o.max_bad_steps); },
   [](TrainOptions& o, const json& j) { o.max_bad_steps = j.get<int>(); }},
  {"threads", false, [](const TrainOptions& o) { return json(o.threads); },
   [](TrainOptions& o, const json& j) { o.threads = j.get<int>(); }},
  {"metrics", false, [](const TrainOptions& o) { return json(absolute_path(o.metrics)); },
   [](TrainOptions& o, const json& j) { o.metrics = j.get<std::string>(); }},
  {"time-limit", false, [](const TrainOptions& o) { return json(o.time_limit); },
   [](TrainOptions& o, const json& j) { o.time_limit = j.get<double>(); }},
  {"evolve", false, [](const TrainOptions& o) { return json(o.evolve); },
   [](TrainOptions& o, const json& j) { o.evolve = j.get<std::string>(); }},
  {"monitor-every", false, [](const TrainOptions& o) { return json(o.monitor_every); },
   [](TrainOptions& o, const json& j) { o.monitor_every = j.get<std::int64_t>(); }},
  {"budget-file", false,
   [](const TrainOptions& o) { return json(absolute_path(o.budget_file)); },
   [](TrainOptions& o, const json& j) { o.budget_file = j.get<std::string>(); }},
};
// clang-format on

// The saved record as an object, or null when it is not one (older checkpoints).
json parse_record(std::string_view text, const fs::path& dir) {
  if (text.empty()) return nullptr;
  try {
    json j = json::parse(text.begin(), text.end());
    return j.is_object() ? j : json(nullptr);
  } catch (const json::exception&) {
    return nullptr;  // a free-form string from an older version: nothing to compare
  }
}

// A value as a user would type it after the flag.
std::string shown(const json& v) {
  std::string s;
  if (v.is_number_float()) {
    // Options are floats: their shortest form is what the user typed.
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.get<float>());
    s.assign(buf, ec == std::errc() ? end : buf);
  } else {
    s = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s.empty() ? "''" : s;
}

}  // namespace

std::string run_options_json(const TrainOptions& o, const model::ModelConfig& config) {
  json j = json::object();
  j["model"] = config.spec();
  for (const Entry& e : kEntries) j[e.flag] = e.get(o);
  return j.dump();
}

void inherit_run_options(TrainOptions& o, const std::set<std::string>& given,
                         std::string_view saved_json, const fs::path& dir) {
  const json record = parse_record(saved_json, dir);
  if (!record.is_object()) return;
  for (const Entry& e : kEntries) {
    if (given.count(e.flag) != 0) continue;
    const auto it = record.find(e.flag);
    if (it == record.end()) continue;
    try {
      e.set(o, *it);
    } catch (const std::exception&) {
      throw FormatError("[checkpoint] '" + (dir / "checkpoint.json").string() + "': option '" +
                        e.flag + "' has the malformed value " + shown(*it));
    }
  }
}

void check_resume_options(const TrainOptions& o, std::string_view saved_json, const fs::path& dir) {
  const json record = parse_record(saved_json, dir);
  if (!record.is_object()) return;
  for (const Entry& e : kEntries) {
    if (!e.defines_run) continue;
    const auto it = record.find(e.flag);
    if (it == record.end()) continue;
    const json now = e.get(o);
    if (now == *it) continue;
    throw InvalidArgument(std::string("[train] --") + e.flag + " " + shown(now) +
                          " contradicts the run in '" + dir.string() +
                          "', which was trained with --" + e.flag + " " + shown(*it) +
                          "; leave --" + e.flag + " out to continue with the checkpoint's value");
  }
}

}  // namespace adacc::train
