// Profile files (see profile_cache.h).
#include "adacc/plan/profile_cache.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "adacc/core/byte_size.h"
#include "adacc/core/context.h"
#include "adacc/core/error.h"
#include "adacc/core/json_input.h"

#ifndef ADACC_VERSION
#define ADACC_VERSION "unknown"
#endif

namespace adacc::plan {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kFormat = "adacc-profile";
constexpr int kFormatVersion = 1;
constexpr std::size_t kMaxProfileBytes = std::size_t{64} << 20;

// ---- writing ----

Json number(double x) {
  if (std::isfinite(x)) return x;
  if (std::isnan(x)) return "nan";
  return x > 0 ? "inf" : "-inf";
}

Json key_json(const ProfileKey& k) {
  Json j;
  j["n_embd"] = k.n_embd;
  j["n_head"] = k.n_head;
  j["vocab"] = k.vocab;
  j["max_seq"] = k.max_seq;
  j["batch"] = k.batch;
  j["seq"] = k.seq;
  j["threads"] = k.threads;
  j["attention"] = k.attention;
  j["cpu_model"] = k.cpu_model;
  j["adacc_version"] = k.adacc_version;
  return j;
}

// ---- reading: every field checked, errors name the file and the field ----

class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw FormatError("[profile] " + source_ + ": '" + path + "' " + what +
                      "; re-run adacc profile to write a new one");
  }
  const Json& field(const Json& obj, const std::string& path, const char* name) const {
    if (!obj.is_object()) fail(path, "must be an object, got " + describe_json(obj));
    const auto it = obj.find(name);
    if (it == obj.end()) fail(path + "." + name, "is missing");
    return *it;
  }
  const Json& object(const Json& obj, const std::string& path, const char* name) const {
    const Json& v = field(obj, path, name);
    if (!v.is_object()) fail(path + "." + name, "must be an object, got " + describe_json(v));
    return v;
  }
  const Json& array(const Json& obj, const std::string& path, const char* name) const {
    const Json& v = field(obj, path, name);
    if (!v.is_array()) fail(path + "." + name, "must be an array, got " + describe_json(v));
    return v;
  }
  std::string string(const Json& obj, const std::string& path, const char* name) const {
    const Json& v = field(obj, path, name);
    if (!v.is_string()) fail(path + "." + name, "must be a string, got " + describe_json(v));
    return v.get<std::string>();
  }
  std::uint64_t unsigned_int(const Json& obj, const std::string& path, const char* name,
                             std::uint64_t max) const {
    const Json& v = field(obj, path, name);
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > max) {
      fail(path + "." + name,
           "must be a whole number in [0, " + std::to_string(max) + "], got " + describe_json(v));
    }
    return v.get<std::uint64_t>();
  }
  int positive_int(const Json& obj, const std::string& path, const char* name) const {
    const auto v = unsigned_int(obj, path, name, std::numeric_limits<int>::max());
    if (v == 0) fail(path + "." + name, "must be positive, got 0");
    return static_cast<int>(v);
  }
  double real(const Json& obj, const std::string& path, const char* name) const {
    const Json& v = field(obj, path, name);
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    }
    fail(path + "." + name, "must be a number, got " + describe_json(v));
  }
  bool boolean(const Json& obj, const std::string& path, const char* name) const {
    const Json& v = field(obj, path, name);
    if (!v.is_boolean()) fail(path + "." + name, "must be true or false, got " + describe_json(v));
    return v.get<bool>();
  }

 private:
  std::string source_;
};

std::string at(const std::string& path, std::size_t i) {
  std::string s = path;
  s += '[';
  s += std::to_string(i);
  s += ']';
  return s;
}

model::TensorRole role_by_name(const Reader& r, const std::string& path, const std::string& name) {
  for (int i = 0; i < model::kNumTensorRoles; ++i) {
    const auto role = static_cast<model::TensorRole>(i);
    if (model::tensor_role_name(role) == name) return role;
  }
  r.fail(path, "names no tensor role: \"" + name + "\"");
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

ProfileKey profile_key(const model::ModelConfig& config, int batch, int seq, int threads) {
  ProfileKey k;
  k.n_embd = config.n_embd;
  k.n_head = config.n_head;
  k.vocab = config.vocab;
  k.max_seq = config.max_seq;
  k.batch = batch;
  k.seq = seq;
  k.threads = Context::resolve_threads(threads);
  k.attention = std::string(ops::attention_kind_name(config.attention));
  k.cpu_model = this_cpu_model();
  k.adacc_version = adacc_version();
  return k;
}

ProfileKey profile_key(const runtime::StepProfile& profile) {
  return profile_key(profile.config, profile.batch, profile.seq, profile.threads);
}

std::vector<std::string> key_mismatches(const ProfileKey& measured, const ProfileKey& wanted) {
  std::vector<std::string> out;
  const Json m = key_json(measured), w = key_json(wanted);
  for (const auto& [name, value] : m.items()) {
    const Json& other = w.at(name);
    if (value == other) continue;
    std::string line = name;
    line += '=';
    line += value.dump();
    line += ", this run uses ";
    line += name;
    line += '=';
    line += other.dump();
    out.push_back(line);
  }
  return out;
}

std::string cpu_model_from_cpuinfo(std::string_view cpuinfo) {
  std::size_t pos = 0;
  while (pos < cpuinfo.size()) {
    std::size_t end = cpuinfo.find('\n', pos);
    if (end == std::string_view::npos) end = cpuinfo.size();
    const std::string_view line = cpuinfo.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, 10) != "model name") continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) {
      v.remove_suffix(1);
    }
    if (!v.empty()) return std::string(v);
  }
  return "unknown";
}

std::string this_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return cpu_model_from_cpuinfo(ss.str());
}

std::string adacc_version() {
  return ADACC_VERSION;
}

std::string profile_to_json(const ProfileKey& key, const runtime::StepProfile& p) {
  Json j;
  j["format"] = kFormat;
  j["format_version"] = kFormatVersion;
  j["key"] = key_json(key);
  Json m;
  m["warmup"] = p.warmup;
  m["steps"] = p.steps;
  m["codec_repeats"] = p.codec_repeats;
  m["error_batch"] = p.error_batch;
  m["seed"] = p.seed;
  m["tokens"] = p.real_data ? "data" : "random";
  m["budget"] = p.budget == Allocator::kUnlimited ? Json(nullptr) : Json(p.budget);
  m["peak_bytes"] = p.peak_bytes;
  m["seconds"] = number(p.seconds);
  j["measured"] = std::move(m);
  Json ops = Json::array();
  for (const runtime::ProfiledOp& op : p.ops) {
    Json o;
    o["name"] = op.name;
    o["kind"] = op.kind;
    o["forward_seconds"] = number(op.forward_seconds);
    o["backward_seconds"] = number(op.backward_seconds);
    ops.push_back(std::move(o));
  }
  j["ops"] = std::move(ops);
  Json tensors = Json::array();
  for (const runtime::ProfiledTensor& t : p.tensors) {
    Json o;
    o["name"] = t.name;
    o["role"] = std::string(model::tensor_role_name(t.role));
    o["bytes"] = t.bytes;
    Json codecs = Json::array();
    for (const runtime::ProfiledCodec& c : t.codecs) {
      Json k;
      k["codec"] = c.codec;
      k["encoded_bytes"] = c.encoded_bytes;
      k["encode_seconds"] = number(c.encode_seconds);
      k["decode_seconds"] = number(c.decode_seconds);
      k["tensor_error"] = number(c.tensor_error);
      k["grad_error"] = number(c.grad_error);
      k["weight_grad_error"] = number(c.weight_grad_error);
      codecs.push_back(std::move(k));
    }
    o["codecs"] = std::move(codecs);
    tensors.push_back(std::move(o));
  }
  j["tensors"] = std::move(tensors);
  std::string out = j.dump(1);
  out += '\n';
  return out;
}

StoredProfile profile_from_json(std::string_view text, std::string_view source) {
  Json j;
  try {
    j = parse_json_input(text, kMaxProfileBytes, "profile files are limited to 64 MiB");
  } catch (const FormatError& e) {
    throw FormatError("[profile] " + std::string(source) + " is not a profile: " + e.what() +
                      "; re-run adacc profile to write a new one");
  }
  const Reader r(source);
  if (!j.is_object() || j.value("format", Json()) != kFormat) {
    r.fail("format", "must be \"adacc-profile\" (is this a profile file?)");
  }
  if (r.unsigned_int(j, "", "format_version", 1000) != kFormatVersion) {
    r.fail("format_version", "must be " + std::to_string(kFormatVersion));
  }
  StoredProfile s;
  const Json& k = r.object(j, "", "key");
  s.key.n_embd = r.positive_int(k, "key", "n_embd");
  s.key.n_head = r.positive_int(k, "key", "n_head");
  s.key.vocab = r.positive_int(k, "key", "vocab");
  s.key.max_seq = r.positive_int(k, "key", "max_seq");
  s.key.batch = r.positive_int(k, "key", "batch");
  s.key.seq = r.positive_int(k, "key", "seq");
  s.key.threads = r.positive_int(k, "key", "threads");
  s.key.attention = r.string(k, "key", "attention");
  s.key.cpu_model = r.string(k, "key", "cpu_model");
  s.key.adacc_version = r.string(k, "key", "adacc_version");

  runtime::StepProfile& p = s.profile;
  p.config.n_layer = 1;
  p.config.n_embd = s.key.n_embd;
  p.config.n_head = s.key.n_head;
  p.config.vocab = s.key.vocab;
  p.config.padded_vocab = model::padded_vocab(s.key.vocab);
  p.config.max_seq = s.key.max_seq;
  if (s.key.attention == "flash") {
    p.config.attention = ops::AttentionKind::flash;
  } else if (s.key.attention == "naive") {
    p.config.attention = ops::AttentionKind::naive;
  } else {
    r.fail("key.attention", "must be \"flash\" or \"naive\", got \"" + s.key.attention + "\"");
  }
  try {
    p.config.validate();
  } catch (const InvalidArgument& e) {
    r.fail("key", std::string("is not a valid model shape: ") + e.what());
  }
  if (s.key.seq > s.key.max_seq) r.fail("key.seq", "is above key.max_seq");
  p.batch = s.key.batch;
  p.seq = s.key.seq;
  p.threads = s.key.threads;

  const Json& m = r.object(j, "", "measured");
  p.warmup = static_cast<int>(r.unsigned_int(m, "measured", "warmup", 1000000));
  p.steps = r.positive_int(m, "measured", "steps");
  p.codec_repeats = r.positive_int(m, "measured", "codec_repeats");
  p.error_batch = r.positive_int(m, "measured", "error_batch");
  if (p.error_batch > p.batch) r.fail("measured.error_batch", "is above key.batch");
  p.seed = r.unsigned_int(m, "measured", "seed", std::numeric_limits<std::uint64_t>::max());
  const std::string tokens = r.string(m, "measured", "tokens");
  if (tokens != "data" && tokens != "random") {
    r.fail("measured.tokens", "must be \"data\" or \"random\", got \"" + tokens + "\"");
  }
  p.real_data = tokens == "data";
  p.budget = r.field(m, "measured", "budget").is_null()
                 ? Allocator::kUnlimited
                 : r.unsigned_int(m, "measured", "budget", kMaxByteSize);
  p.peak_bytes = r.unsigned_int(m, "measured", "peak_bytes", kMaxByteSize);
  p.seconds = r.real(m, "measured", "seconds");

  const Json& ops = r.array(j, "", "ops");
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string path = at("ops", i);
    runtime::ProfiledOp op;
    op.name = r.string(ops[i], path, "name");
    op.kind = r.string(ops[i], path, "kind");
    op.forward_seconds = r.real(ops[i], path, "forward_seconds");
    op.backward_seconds = r.real(ops[i], path, "backward_seconds");
    if (p.find_op(op.name) != nullptr) r.fail(path + ".name", "repeats op \"" + op.name + "\"");
    p.ops.push_back(std::move(op));
  }
  const Json& tensors = r.array(j, "", "tensors");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::string path = at("tensors", i);
    runtime::ProfiledTensor t;
    t.name = r.string(tensors[i], path, "name");
    t.role = role_by_name(r, path + ".role", r.string(tensors[i], path, "role"));
    t.bytes = r.unsigned_int(tensors[i], path, "bytes", kMaxByteSize);
    if (p.find_tensor(t.name) != nullptr) {
      r.fail(path + ".name", "repeats tensor \"" + t.name + "\"");
    }
    const Json& codecs = r.array(tensors[i], path, "codecs");
    for (std::size_t c = 0; c < codecs.size(); ++c) {
      const std::string cp = at(path + ".codecs", c);
      runtime::ProfiledCodec pc;
      pc.codec = r.string(codecs[c], cp, "codec");
      pc.encoded_bytes = r.unsigned_int(codecs[c], cp, "encoded_bytes", kMaxByteSize);
      pc.encode_seconds = r.real(codecs[c], cp, "encode_seconds");
      pc.decode_seconds = r.real(codecs[c], cp, "decode_seconds");
      pc.tensor_error = r.real(codecs[c], cp, "tensor_error");
      pc.grad_error = r.real(codecs[c], cp, "grad_error");
      pc.weight_grad_error = r.real(codecs[c], cp, "weight_grad_error");
      t.codecs.push_back(std::move(pc));
    }
    p.tensors.push_back(std::move(t));
  }
  return s;
}

void save_profile(const std::filesystem::path& path, const ProfileKey& key,
                  const runtime::StepProfile& profile) {
  const std::string text = profile_to_json(key, profile);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    throw BackendError("[profile] cannot create the directory of " + path.string() + ": " +
                       ec.message());
  }
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      throw BackendError("[profile] cannot write " + tmp.string() +
                         " (is the directory writable and the disk not full?)");
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw BackendError("[profile] cannot rename " + tmp.string() + " to " + path.string() + ": " +
                       ec.message());
  }
}

StoredProfile read_profile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InvalidArgument("[profile] cannot read profile " + path.string() +
                          " (no such file, or not readable); write one with adacc profile --out");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return profile_from_json(ss.str(), path.string());
}

runtime::StepProfile load_profile(const std::filesystem::path& path, const ProfileKey& wanted) {
  StoredProfile s = read_profile(path);
  const std::vector<std::string> diff = key_mismatches(s.key, wanted);
  if (!diff.empty()) {
    std::string m = "[profile] profile " + path.string() + " was measured with ";
    for (std::size_t i = 0; i < diff.size(); ++i) {
      if (i > 0) m += "; ";
      m += diff[i];
    }
    m += "; re-run adacc profile";
    throw InvalidArgument(m);
  }
  return std::move(s.profile);
}

std::filesystem::path default_profile_path(const ProfileKey& key) {
  std::filesystem::path dir;
  const char* xdg = std::getenv("XDG_CACHE_HOME");  // NOLINT(concurrency-mt-unsafe)
  const char* home = std::getenv("HOME");           // NOLINT(concurrency-mt-unsafe)
  if (xdg != nullptr && *xdg != '\0') {
    dir = xdg;
  } else if (home != nullptr && *home != '\0') {
    dir = std::filesystem::path(home) / ".cache";
  } else {
    dir = std::filesystem::temp_directory_path();
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(fnv1a(key_json(key).dump())));
  return dir / "adacc" / ("profile-" + std::string(hex) + ".json");
}

}  // namespace adacc::plan
