// Model files and training checkpoints (see checkpoint.h).
//
// Layouts: adacc keeps every matrix as (out,in) in one flat tensor in llm.c's order,
// with wte padded to Vp rows. A safetensors file holds Hugging Face's layout: the four
// Conv1D weights per layer as (in,out) and wte with V rows. Export and import convert
// tensor by tensor through a bounded staging buffer; an llm.c checkpoint's body is the
// flat tensor itself (up to its own Vp), so it is read straight into place.
// Every load checks all names and shapes before it overwrites anything.
#include "adacc/train/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"
#include "adacc/core/json_input.h"
#include "adacc/train/atomic_file.h"
#include "adacc/train/safetensors.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr std::int32_t kLlmcMagic = 20240326;
constexpr std::int32_t kLlmcVersion = 3;  // fp32 parameters
constexpr std::size_t kLlmcHeaderInts = 256;
constexpr std::size_t kLlmcHeaderBytes = kLlmcHeaderInts * 4;
// Rows of a transposed tensor per staging chunk are chosen to hold about this many floats.
constexpr std::int64_t kStagingElements = 1 << 18;

[[noreturn]] void format_error(const fs::path& path, const std::string& problem) {
  throw FormatError("[checkpoint] '" + path.string() + "': " + problem);
}

// A config from a file's spec; a custom one is named by its canonical spec, since the
// file's text may be any length (e.g. "L=1,L=1,...").
model::ModelConfig config_from_spec(const fs::path& path, const std::string& spec) {
  try {
    model::ModelConfig c = model::parse_config(spec);
    if (spec.find('=') != std::string::npos) c.name = c.spec();
    return c;
  } catch (const InvalidArgument& e) {
    format_error(path, "model config '" + excerpt(spec, 80) + "' is invalid: " + e.what());
  }
}

void require_params(const model::ModelConfig& config, const model::ParamSet& params,
                    const char* what) {
  config.validate();
  if (!params.flat.defined() || params.flat.numel() != config.num_parameters() ||
      params.layers.size() != static_cast<std::size_t>(config.n_layer) ||
      params.wte.dim(0) != config.padded_vocab) {
    throw InvalidArgument(std::string("[checkpoint] ") + what + " " +
                          (params.flat.defined() ? params.flat.describe() : "(undefined)") +
                          " is not a ParamSet of " + config.describe());
  }
}

// How a parameter is stored in a safetensors file.
enum class Stored : std::uint8_t { plain, transposed, vocab_rows };

struct Slot {
  const model::NamedParam* param;
  Stored how;
  Shape shape;           // in the file
  const char* symbolic;  // the file shape in letters, for messages
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<Slot> slots(const model::ModelConfig& config, const model::ParamSet& params) {
  struct Rule {
    std::string_view suffix;
    Stored how;
    const char* symbolic;
  };
  static constexpr Rule kRules[] = {
      {"wte.weight", Stored::vocab_rows, "(V,C)"},
      {"wpe.weight", Stored::plain, "(T,C)"},
      {"attn.c_attn.weight", Stored::transposed, "(C,3C)"},
      {"attn.c_attn.bias", Stored::plain, "(3C)"},
      {"attn.c_proj.weight", Stored::transposed, "(C,C)"},
      {"mlp.c_fc.weight", Stored::transposed, "(C,4C)"},
      {"mlp.c_fc.bias", Stored::plain, "(4C)"},
      {"mlp.c_proj.weight", Stored::transposed, "(4C,C)"},
  };
  std::vector<Slot> out;
  for (const model::NamedParam& p : params.named()) {
    Slot s{&p, Stored::plain, p.tensor.shape(), "(C)"};
    for (const Rule& r : kRules) {
      if (ends_with(p.name, r.suffix)) {
        s.how = r.how;
        s.symbolic = r.symbolic;
        break;
      }
    }
    if (s.how == Stored::transposed) s.shape = {s.shape[1], s.shape[0]};
    if (s.how == Stored::vocab_rows) s.shape = {config.vocab, s.shape[1]};
    out.push_back(s);
  }
  return out;
}

std::string mismatch(const std::string& name, const Shape& found, const Slot& slot,
                     const model::ModelConfig& config) {
  const std::string found_text =
      found.size() <= 8 ? shape_str(found) : std::to_string(found.size()) + "-dimensional";
  return "tensor '" + excerpt(name) + "' is " + found_text + " but the model needs " +
         slot.symbolic + " = " + shape_str(slot.shape) + " (model " + config.spec() + ")";
}

// ----------------------------------------------------------------------------------
// llm.c checkpoints

bool is_llmc(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw InvalidArgument("[checkpoint] no file '" + path.string() + "'");
    throw BackendError("[checkpoint] cannot open '" + path.string() + "'");
  }
  std::int32_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), 4);
  return in.gcount() == 4 && magic == kLlmcMagic;
}

struct LlmcFile {
  model::ModelConfig config;
  std::ifstream in;
};

LlmcFile open_llmc(const fs::path& path) {
  LlmcFile f;
  f.in.open(path, std::ios::binary);
  const std::uintmax_t size = fs::file_size(path);
  std::int32_t h[kLlmcHeaderInts] = {};
  f.in.read(reinterpret_cast<char*>(h), kLlmcHeaderBytes);
  if (static_cast<std::size_t>(f.in.gcount()) != kLlmcHeaderBytes) {
    format_error(path, "llm.c checkpoint header is 1024 bytes but the file has only " +
                           std::to_string(size));
  }
  if (h[0] != kLlmcMagic) format_error(path, "bad llm.c magic " + std::to_string(h[0]));
  if (h[1] != kLlmcVersion) {
    format_error(path, "llm.c checkpoint version " + std::to_string(h[1]) +
                           "; adacc reads version 3 (fp32 parameters)");
  }
  const int maxT = h[2], V = h[3], L = h[4], H = h[5], C = h[6], Vp = h[7];
  const std::string spec = "L=" + std::to_string(L) + ",C=" + std::to_string(C) +
                           ",H=" + std::to_string(H) + ",V=" + std::to_string(V) +
                           ",T=" + std::to_string(maxT);
  f.config = config_from_spec(path, spec);
  if (Vp < V) {
    format_error(path,
                 "llm.c header has Vp=" + std::to_string(Vp) + " below V=" + std::to_string(V));
  }
  f.config.padded_vocab = Vp;
  std::uintmax_t body = 0;
  try {
    f.config.validate();  // the parameter count with this Vp, checked
  } catch (const InvalidArgument& e) {
    format_error(
        path, "llm.c header (" + spec + ", Vp=" + std::to_string(Vp) + ") is invalid: " + e.what());
  }
  if (__builtin_mul_overflow(static_cast<std::uintmax_t>(f.config.num_parameters()), 4u, &body)) {
    format_error(path, "llm.c header (" + spec + ", Vp=" + std::to_string(Vp) +
                           ") describes more bytes than 64 bits count");
  }
  if (size - kLlmcHeaderBytes != body) {
    format_error(path, "llm.c checkpoint body is " + std::to_string(size - kLlmcHeaderBytes) +
                           " bytes but its header (" + spec + ", Vp=" + std::to_string(Vp) +
                           ") needs " + std::to_string(body) +
                           (size - kLlmcHeaderBytes < body ? " (truncated file?)" : ""));
  }
  return f;
}

void read_exact(std::ifstream& in, const fs::path& path, std::uintmax_t offset, float* dst,
                std::int64_t count) {
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(count) * 4);
  if (!in || in.gcount() != static_cast<std::streamsize>(count) * 4) {
    format_error(path, "cannot read " + std::to_string(count * 4) + " bytes at offset " +
                           std::to_string(offset));
  }
}

void load_llmc(const fs::path& path, const model::ModelConfig& config, model::ParamSet& params) {
  LlmcFile f = open_llmc(path);
  const model::ModelConfig& fc = f.config;
  const std::vector<Slot> want = slots(config, params);
  // The first tensor whose shape differs names the mismatch.
  if (fc.vocab != config.vocab || fc.n_embd != config.n_embd) {
    format_error(path, mismatch("transformer.wte.weight", {fc.vocab, fc.n_embd}, want[0], config));
  }
  if (fc.max_seq != config.max_seq) {
    format_error(path,
                 mismatch("transformer.wpe.weight", {fc.max_seq, fc.n_embd}, want[1], config));
  }
  if (fc.n_layer != config.n_layer) {
    const int l = std::min(fc.n_layer, config.n_layer);
    format_error(path, "has L=" + std::to_string(fc.n_layer) +
                           " layers but the model has L=" + std::to_string(config.n_layer) +
                           ": tensor 'transformer.h." + std::to_string(l) + ".ln_1.weight' is " +
                           (fc.n_layer > l ? "extra" : "missing") + " (model " + config.spec() +
                           ")");
  }
  if (fc.n_head != config.n_head) {
    format_error(path, "has H=" + std::to_string(fc.n_head) +
                           " heads but the model has H=" + std::to_string(config.n_head));
  }
  const std::int64_t C = config.n_embd, V = config.vocab, Vp = config.padded_vocab;
  float* flat = params.flat.data<float>();
  // wte: the V real rows, then the model's padding rows zeroed.
  read_exact(f.in, path, kLlmcHeaderBytes, flat, V * C);
  std::fill(flat + V * C, flat + Vp * C, 0.0f);
  // Everything after wte has the same layout in both.
  const std::int64_t rest = config.num_parameters() - Vp * C;
  read_exact(f.in, path, kLlmcHeaderBytes + static_cast<std::uintmax_t>(fc.padded_vocab * C) * 4,
             flat + Vp * C, rest);
}

// ----------------------------------------------------------------------------------
// safetensors

std::unique_ptr<SafetensorsReader> open_safetensors(const fs::path& path) {
  try {
    return std::make_unique<SafetensorsReader>(path);
  } catch (const FormatError& e) {
    throw FormatError(std::string(e.what()) +
                      " (and it is not an llm.c checkpoint: no magic 20240326)");
  }
}

// The tensor `name` ("transformer.x") or, as in some Hugging Face files, "x".
const SafetensorsTensor* find_hf(const SafetensorsReader& r, std::string_view name) {
  if (const SafetensorsTensor* t = r.find(name)) return t;
  constexpr std::string_view kPrefix = "transformer.";
  if (name.substr(0, kPrefix.size()) == kPrefix) return r.find(name.substr(kPrefix.size()));
  return nullptr;
}

// The layer index N of "h.N.*" or "transformer.h.N.*", or -1.
int layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "transformer.";
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name.substr(0, 2) != "h.") return -1;
  name.remove_prefix(2);
  int n = -1;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
  if (ec != std::errc() || end == name.data() + name.size() || *end != '.') return -1;
  return n;
}

model::ModelConfig safetensors_config(const SafetensorsReader& r) {
  if (const std::string* spec = r.metadata_value("adacc.config")) {
    return config_from_spec(r.path(), *spec);
  }
  // A file without our metadata (Hugging Face's): infer from the shapes.
  const SafetensorsTensor* wte = find_hf(r, "transformer.wte.weight");
  const SafetensorsTensor* wpe = find_hf(r, "transformer.wpe.weight");
  if (wte == nullptr || wpe == nullptr || wte->shape.size() != 2 || wpe->shape.size() != 2) {
    format_error(r.path(),
                 "no 'adacc.config' metadata, and no 2-D tensors "
                 "'transformer.wte.weight' and 'transformer.wpe.weight' to infer the "
                 "model config from");
  }
  std::int64_t layers = 0;  // h.2147483647.* is a name a file may hold: no int overflow
  for (const SafetensorsTensor& t : r.tensors()) {
    layers = std::max<std::int64_t>(layers, std::int64_t{layer_of(t.name)} + 1);
  }
  const std::int64_t C = wte->shape[1];
  const std::int64_t H = C % 64 == 0 ? C / 64 : 1;  // GPT-2's head size is 64
  const std::string spec = "L=" + std::to_string(layers) + ",C=" + std::to_string(C) +
                           ",H=" + std::to_string(H) + ",V=" + std::to_string(wte->shape[0]) +
                           ",T=" + std::to_string(wpe->shape[0]);
  return config_from_spec(r.path(), spec);
}

void load_safetensors(const SafetensorsReader& r, const model::ModelConfig& config,
                      model::ParamSet& params) {
  if (const std::string* spec = r.metadata_value("adacc.config")) {
    const model::ModelConfig fc = config_from_spec(r.path(), *spec);
    if (fc.n_head != config.n_head) {
      format_error(r.path(), "was saved with H=" + std::to_string(fc.n_head) +
                                 " heads but the model has H=" + std::to_string(config.n_head));
    }
  }
  for (const SafetensorsTensor& t : r.tensors()) {
    const int layer = layer_of(t.name);
    if (layer >= config.n_layer) {
      format_error(r.path(), "tensor '" + excerpt(t.name) + "' belongs to layer " +
                                 std::to_string(layer) + " but the model has L=" +
                                 std::to_string(config.n_layer) + " (model " + config.spec() + ")");
    }
  }
  // Check every tensor before anything is overwritten.
  const std::vector<Slot> want = slots(config, params);
  std::vector<const SafetensorsTensor*> found;
  for (const Slot& s : want) {
    const SafetensorsTensor* t = find_hf(r, s.param->name);
    if (t == nullptr) {
      format_error(r.path(), "has no tensor '" + s.param->name + "' (model " + config.spec() + ")");
    }
    if (t->shape != s.shape) format_error(r.path(), mismatch(t->name, t->shape, s, config));
    if (t->dtype != "F32") {
      format_error(r.path(), "tensor '" + excerpt(t->name) + "' has dtype " + excerpt(t->dtype) +
                                 "; adacc reads F32 only");
    }
    found.push_back(t);
  }
  std::vector<float> staging;  // bounded: a few rows of one transposed matrix
  for (std::size_t k = 0; k < want.size(); ++k) {
    const Slot& s = want[k];
    const SafetensorsTensor& t = *found[k];
    float* dst = s.param->tensor.data<float>();
    switch (s.how) {
      case Stored::plain:
        r.read_f32(t, 0, s.param->tensor.numel(), dst);
        break;
      case Stored::vocab_rows: {
        // file (V,C) -> wte (Vp,C), padding rows zero
        const std::int64_t n = s.shape[0] * s.shape[1];
        r.read_f32(t, 0, n, dst);
        std::fill(dst + n, dst + s.param->tensor.numel(), 0.0f);
        break;
      }
      case Stored::transposed: {
        // file (I,O) -> param (O,I)
        const std::int64_t I = s.shape[0], O = s.shape[1];
        const std::int64_t rows = std::max<std::int64_t>(kStagingElements / O, 1);
        staging.resize(static_cast<std::size_t>(std::min(rows, I) * O));
        for (std::int64_t i0 = 0; i0 < I; i0 += rows) {
          const std::int64_t n = std::min(rows, I - i0);
          r.read_f32(t, i0 * O, n * O, staging.data());
          for (std::int64_t o = 0; o < O; ++o) {
            for (std::int64_t i = 0; i < n; ++i) dst[o * I + i0 + i] = staging[i * O + o];
          }
        }
        break;
      }
    }
  }
}

// The safetensors tensors of a ParamSet in Hugging Face's layout.
std::vector<SafetensorsOutput> hf_outputs(const model::ModelConfig& config,
                                          const model::ParamSet& params) {
  std::vector<SafetensorsOutput> out;
  for (const Slot& s : slots(config, params)) {
    SafetensorsOutput o{s.param->name, s.shape, s.param->tensor.data<float>(), {}};
    if (s.how == Stored::transposed) {
      // param (O,I) -> file (I,O), whole file rows [i0, i0+count/O)
      const float* src = o.data;
      const std::int64_t I = s.shape[0], O = s.shape[1];
      o.data = nullptr;
      o.fill = [src, I, O](std::int64_t first, std::int64_t count, float* buf) {
        const std::int64_t i0 = first / O, n = count / O;
        for (std::int64_t oo = 0; oo < O; ++oo) {
          for (std::int64_t i = 0; i < n; ++i) buf[i * O + oo] = src[oo * I + i0 + i];
        }
      };
    }
    out.push_back(std::move(o));
  }
  return out;
}

// ----------------------------------------------------------------------------------
// Training checkpoints

constexpr const char* kStateFile = "checkpoint.json";
constexpr const char* kFinalModelFile = "model.safetensors";  // what a finished run writes
// The save journal: the names of the files a save is about to create and of the previous
// checkpoint's files it will delete, written (and synced) before anything else and
// removed when the save is complete. A journal found by the next save is what a killed
// save left: the files it names that the current checkpoint.json does not name are that
// save's partial output, or the checkpoint it replaced, and are deleted.
constexpr const char* kSaveJournal = ".adacc-save-journal";
// checkpoint.json is read only up to this size (it holds a few hundred bytes).
constexpr std::size_t kMaxStateFileBytes = std::size_t{16} << 20;
constexpr const char* kStateFileLimit = "checkpoint.json is limited to 16 MiB";

struct CheckpointJson {
  std::int64_t step = 0;
  std::string model, optim, config;
  TrainingState state;
};

CheckpointJson read_checkpoint_json(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InvalidArgument("[checkpoint] no checkpoint directory '" + dir.string() + "'");
  }
  const fs::path path = dir / kStateFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InvalidArgument("[checkpoint] no '" + std::string(kStateFile) + "' in '" + dir.string() +
                          "' (not a checkpoint directory, or no save finished)");
  }
  if (!fs::is_regular_file(path, ec)) format_error(path, "is not a regular file");
  // Refused unread when absurdly large; a checkpoint.json is a few hundred bytes.
  if (const std::uintmax_t size = fs::file_size(path, ec); !ec && size > kMaxStateFileBytes) {
    format_error(path, "is " + std::to_string(size) + " bytes; " + kStateFileLimit);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) format_error(path, "cannot be read");
  ordered_json j;
  try {
    j = parse_json_input(text.view(), kMaxStateFileBytes, kStateFileLimit);
  } catch (const FormatError& e) {
    format_error(path, e.what());
  }
  auto field = [&](const char* key) -> const ordered_json& {
    if (!j.is_object() || !j.contains(key))
      format_error(path, std::string("no field '") + key + "'");
    return j.at(key);
  };
  auto bad = [&](const std::string& what) { format_error(path, "field " + what); };
  auto u64 = [&](const ordered_json& v, const std::string& what) -> std::uint64_t {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
      return static_cast<std::uint64_t>(v.get<std::int64_t>());
    }
    bad(what + " must be a non-negative integer, got " + describe_json(v));
    return 0;
  };
  // A count that is also an std::int64_t (steps).
  auto i64 = [&](const ordered_json& v, const std::string& what) -> std::int64_t {
    const std::uint64_t n = u64(v, what);
    if (n > static_cast<std::uint64_t>(INT64_MAX)) {
      bad(what + " is " + std::to_string(n) + ", beyond 2^63 - 1");
    }
    return static_cast<std::int64_t>(n);
  };
  auto file_name = [&](const char* key) {
    const ordered_json& v = field(key);
    if (!v.is_string()) bad(std::string("'") + key + "' must be a string");
    std::string name = v.get<std::string>();  // not const: returned by move
    // A plain file name inside the directory, nothing else.
    if (name.empty() || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos || name == "." || name == "..") {
      bad(std::string("'") + key + "' must name a file in the directory, got '" + excerpt(name) +
          "'");
    }
    return name;
  };

  CheckpointJson c;
  c.step = i64(field("step"), "'step'");
  c.state.step = c.step;
  c.model = file_name("model");
  c.optim = file_name("optim");
  const ordered_json& config = field("config");
  if (!config.is_string()) bad("'config' must be a string");
  c.config = config.get<std::string>();
  const ordered_json& rng = field("rng");
  if (!rng.is_array() || rng.size() != 4) bad("'rng' must be an array of 4 strings");
  for (std::size_t i = 0; i < 4; ++i) {
    const std::string s = rng[i].is_string() ? rng[i].get<std::string>() : "";
    std::uint64_t v = 0;
    const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || err != std::errc() || end != s.data() + s.size()) {
      bad("'rng' entry " + std::to_string(i) + " must be a decimal u64 string, got " +
          describe_json(rng[i]));
    }
    c.state.rng[i] = v;
  }
  const ordered_json& loader = field("loader");
  if (!loader.is_object() || !loader.contains("position") || !loader.contains("epoch")) {
    bad("'loader' must be an object with 'position' and 'epoch'");
  }
  c.state.loader.position = u64(loader["position"], "'loader.position'");
  c.state.loader.epoch = u64(loader["epoch"], "'loader.epoch'");
  c.state.optimizer_steps =
      j.contains("optimizer_steps") ? i64(j["optimizer_steps"], "'optimizer_steps'") : c.step;
  if (j.contains("options")) {
    const ordered_json& o = j["options"];
    c.state.options_json = o.is_string() ? o.get<std::string>() : o.dump();
  }
  for (const auto& [key, into] :
       {std::pair{"plan", &c.state.plan_json}, std::pair{"evolve", &c.state.evolve_json}}) {
    if (!j.contains(key)) continue;
    const ordered_json& v = j[key];
    *into = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return c;
}

// Whether `name` is a file a save writes ((model|optim)-<digits>.safetensors or
// checkpoint.json), followed by .tmp-<digits> (AtomicFile's temporary) when `temp`.
bool is_checkpoint_file(std::string_view name, bool temp) {
  auto digits = [](std::string_view& s) {
    std::size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    s.remove_prefix(n);
    return n > 0;
  };
  auto take = [](std::string_view& s, std::string_view prefix) {
    if (s.substr(0, prefix.size()) != prefix) return false;
    s.remove_prefix(prefix.size());
    return true;
  };
  const bool state = take(name, kStateFile);
  if (!state && !((take(name, "model-") || take(name, "optim-")) && digits(name) &&
                  take(name, ".safetensors"))) {
    return false;
  }
  if (!temp) return name.empty() && !state;
  return take(name, ".tmp-") && digits(name) && name.empty();
}

bool is_checkpoint_temp_file(std::string_view name) {
  return is_checkpoint_file(name, true);
}
bool is_checkpoint_file_name(std::string_view name) {
  return is_checkpoint_file(name, false);
}

// The model and optimizer files the checkpoint.json in `dir` names; none if there is
// none or it cannot be read.
std::vector<std::string> current_checkpoint_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / kStateFile, ec)) return {};
  try {
    const CheckpointJson c = read_checkpoint_json(dir);
    return {c.model, c.optim};
  } catch (const Error&) {
    return {};
  }
}

// Stored options: as JSON when that reproduces the string exactly, else as a string.
ordered_json options_value(const std::string& options) {
  if (options.empty()) return options;
  try {
    ordered_json j = parse_json_input(options, kMaxStateFileBytes, kStateFileLimit);
    if (j.dump() == options) return j;
  } catch (const FormatError&) {
  }
  return options;
}

}  // namespace

void save_safetensors(const fs::path& path, const model::ModelConfig& config,
                      const model::ParamSet& params) {
  require_params(config, params, "params");
  write_safetensors(path, hf_outputs(config, params),
                    {{"format", "pt"}, {"adacc.config", config.spec()}});
}

model::ModelConfig read_model_config(const fs::path& path) {
  if (is_llmc(path)) return open_llmc(path).config;
  return safetensors_config(*open_safetensors(path));
}

void load_parameters(const fs::path& path, const model::ModelConfig& config,
                     model::ParamSet& params) {
  require_params(config, params, "params");
  if (is_llmc(path)) {
    load_llmc(path, config, params);
  } else {
    load_safetensors(*open_safetensors(path), config, params);
  }
}

void save_checkpoint(const fs::path& dir, const model::ModelConfig& config,
                     const model::ParamSet& params, const model::ParamSet& adam_m,
                     const model::ParamSet& adam_v, const TrainingState& state) {
  require_params(config, params, "params");
  require_params(config, adam_m, "adam_m");
  require_params(config, adam_v, "adam_v");
  if (state.step < 0) {
    throw InvalidArgument("[checkpoint] step must be non-negative, got " +
                          std::to_string(state.step));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw BackendError("[checkpoint] cannot create directory '" + dir.string() +
                       "': " + (ec ? ec.message() : "a file of that name exists"));
  }
  const std::string step = std::to_string(state.step);
  const std::string model_name = "model-" + step + ".safetensors";
  const std::string optim_name = "optim-" + step + ".safetensors";
  const std::string spec = config.spec();

  // First finish what a killed save left (its journal), then note the files of the
  // checkpoint this save replaces (none if there is none, or if its checkpoint.json
  // cannot be read: then nothing of it is deleted).
  remove_interrupted_writes(dir);
  const std::vector<std::string> previous = current_checkpoint_files(dir);
  // Files this save creates, removed again if it fails. Files of the same name that
  // existed before (a save at the same step again) are replaced in place: a crash then
  // leaves checkpoint.json naming files of the new save, which is the same state when
  // the run resumed exactly.
  std::vector<fs::path> created;
  std::string journal;
  for (const std::string& name : {model_name, optim_name}) {
    if (!fs::exists(dir / name, ec)) {
      created.push_back(dir / name);
      journal += name + "\n";
    }
  }
  for (const std::string& name : previous) {
    if (name != model_name && name != optim_name) journal += name + "\n";  // to be deleted
  }
  {
    AtomicFile file(dir / kSaveJournal);
    file.write(journal.data(), journal.size());
    file.commit();
  }
  try {
    save_safetensors(dir / model_name, config, params);
    const std::int64_t n = config.num_parameters();
    write_safetensors(
        dir / optim_name,
        {{"m", {n}, adam_m.flat.data<float>(), {}}, {"v", {n}, adam_v.flat.data<float>(), {}}},
        {{"format", "pt"}, {"adacc.config", spec}, {"adacc.step", step}});
    ordered_json j;
    j["step"] = state.step;
    j["model"] = model_name;
    j["optim"] = optim_name;
    j["config"] = spec;
    j["rng"] = ordered_json::array();
    for (std::uint64_t s : state.rng) j["rng"].push_back(std::to_string(s));
    j["loader"] = {{"position", state.loader.position}, {"epoch", state.loader.epoch}};
    j["optimizer_steps"] = state.optimizer_steps < 0 ? state.step : state.optimizer_steps;
    j["options"] = options_value(state.options_json);
    if (!state.plan_json.empty()) j["plan"] = options_value(state.plan_json);
    if (!state.evolve_json.empty()) j["evolve"] = options_value(state.evolve_json);
    const std::string text = j.dump(2) + "\n";
    AtomicFile file(dir / kStateFile);
    file.write(text.data(), text.size());
    file.commit();
  } catch (...) {
    for (const fs::path& p : created) fs::remove(p, ec);
    fs::remove(dir / kSaveJournal, ec);
    throw;
  }

  // The new checkpoint is in place: what the journal names that it does not (the
  // previous checkpoint's files) goes, and so do temporaries; nothing else.
  remove_interrupted_writes(dir);
}

void remove_interrupted_writes(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / kSaveJournal, ec)) {
    // A checkpoint.json that exists but cannot be read names nothing we can trust: then
    // keep every file and the journal.
    const bool readable = !fs::exists(dir / kStateFile, ec) || [&] {
      try {
        read_checkpoint_json(dir);
        return true;
      } catch (const Error&) {
        return false;
      }
    }();
    if (!readable) return;
    const std::vector<std::string> current = current_checkpoint_files(dir);
    std::ifstream in(dir / kSaveJournal);
    for (std::string name; std::getline(in, name);) {
      const bool keep = std::find(current.begin(), current.end(), name) != current.end();
      if (!keep && is_checkpoint_file_name(name)) fs::remove(dir / name, ec);
    }
    in.close();
    fs::remove(dir / kSaveJournal, ec);
  }
  const std::string journal_temp = std::string(kSaveJournal) + ".tmp-";
  const std::string final_temp = std::string(kFinalModelFile) + ".tmp-";
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    auto temp_of = [&](const std::string& prefix) {
      return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
             name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
    };
    if (is_checkpoint_temp_file(name) || temp_of(journal_temp) || temp_of(final_temp)) {
      fs::remove(e.path(), ec);
    }
  }
}

model::ModelConfig read_checkpoint_config(const fs::path& dir) {
  const CheckpointJson c = read_checkpoint_json(dir);
  return config_from_spec(dir / kStateFile, c.config);
}

TrainingState read_checkpoint_state(const fs::path& dir) {
  return read_checkpoint_json(dir).state;
}

TrainingState load_checkpoint(const fs::path& dir, const model::ModelConfig& config,
                              model::ParamSet& params, model::ParamSet& adam_m,
                              model::ParamSet& adam_v) {
  require_params(config, params, "params");
  require_params(config, adam_m, "adam_m");
  require_params(config, adam_v, "adam_v");
  const CheckpointJson c = read_checkpoint_json(dir);
  const model::ModelConfig saved = config_from_spec(dir / kStateFile, c.config);
  if (!saved.same_shape(config)) {
    format_error(dir / kStateFile, "the checkpoint is of model " + saved.spec() +
                                       " but the model is " + config.spec());
  }
  for (const std::string& name : {c.model, c.optim}) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) {
      format_error(dir / kStateFile,
                   "names '" + excerpt(name) + "', which is not in '" + dir.string() + "'");
    }
  }
  // Open (and so validate) the optimizer file before the parameters are overwritten.
  const fs::path optim_path = dir / c.optim;
  const SafetensorsReader optim(optim_path);
  const std::int64_t n = config.num_parameters();
  const SafetensorsTensor* moments[2] = {optim.find("m"), optim.find("v")};
  for (int k = 0; k < 2; ++k) {
    const char* name = k == 0 ? "m" : "v";
    const SafetensorsTensor* t = moments[k];
    if (t == nullptr) format_error(optim_path, std::string("has no tensor '") + name + "'");
    if (t->shape != Shape{n} || t->dtype != "F32") {
      format_error(optim_path, std::string("tensor '") + name + "' is " + t->dtype + " " +
                                   shape_str(t->shape) + " but the model needs F32 " +
                                   shape_str({n}) + " (model " + config.spec() + ")");
    }
  }
  load_parameters(dir / c.model, config, params);
  optim.read_f32(*moments[0], 0, n, adam_m.flat.data<float>());
  optim.read_f32(*moments[1], 0, n, adam_v.flat.data<float>());
  return c.state;
}

}  // namespace adacc::train
