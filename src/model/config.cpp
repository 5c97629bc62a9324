// Named and custom model configurations (see config.h).
#include "adacc/model/config.h"

#include <charconv>
#include <climits>

#include "adacc/core/error.h"
#include "adacc/core/excerpt.h"

namespace adacc::model {

namespace {

// The largest V whose padding to a multiple of 128 is still an int.
constexpr int kMaxVocab = INT_MAX / 128 * 128;
// Parameters, their gradients and AdamW's two moments: 16 bytes per parameter, all of
// which must be countable in std::int64_t bytes.
constexpr std::int64_t kMaxParameters = INT64_MAX / 16;

// A spec or name for a message: the user's own text, or a file's, so bounded.
std::string quoted_name(std::string_view name) {
  return "'" + excerpt(name, 80) + "'";
}

}  // namespace

int padded_vocab(int vocab) {
  if (vocab > kMaxVocab) {
    throw InvalidArgument("[model] V (vocabulary) = " + std::to_string(vocab) +
                          " is too large: padded to a multiple of 128 it is not an int; V is at "
                          "most " +
                          std::to_string(kMaxVocab));
  }
  return (vocab + 127) / 128 * 128;
}

void ModelConfig::validate() const {
  auto positive = [&](int v, const char* what) {
    if (v <= 0) {
      throw InvalidArgument("[model] " + std::string(what) + " must be positive, got " +
                            std::to_string(v) + " in " + quoted_name(name));
    }
  };
  positive(n_layer, "L (layers)");
  positive(n_embd, "C (channels)");
  positive(n_head, "H (heads)");
  positive(vocab, "V (vocabulary)");
  positive(max_seq, "T (maximum sequence length)");
  if (n_embd % n_head != 0) {
    throw InvalidArgument("[model] C=" + std::to_string(n_embd) + " is not divisible by H=" +
                          std::to_string(n_head) + " in " + quoted_name(name));
  }
  if (padded_vocab < vocab) {
    throw InvalidArgument("[model] Vp=" + std::to_string(padded_vocab) +
                          " is below V=" + std::to_string(vocab));
  }
  const std::int64_t n = num_parameters();  // throws if it does not fit in 64 bits
  if (n > kMaxParameters) {
    throw InvalidArgument("[model] " + quoted_name(name) + " has " + std::to_string(n) +
                          " parameters; with gradients and optimizer state that is more bytes "
                          "than 64 bits count (at most " +
                          std::to_string(kMaxParameters) + " parameters); lower L, C, V or T");
  }
}

std::int64_t ModelConfig::num_parameters() const {
  // 12*C*C + 13*C per layer (ln1 2C, qkv 3C*C+3C, attn proj C*C+C, ln2 2C, fc 4C*C+4C,
  // fc proj 4C*C+C), plus wte Vp*C, wpe T*C and the final layernorm 2C; checked, since
  // the sizes come from users and files.
  const std::int64_t C = n_embd, L = n_layer;
  std::int64_t cc = 0, per_layer = 0, layers = 0, wte = 0, wpe = 0, total = 0;
  const bool overflow = __builtin_mul_overflow(C, C, &cc) ||
                        __builtin_mul_overflow(cc, std::int64_t{12}, &per_layer) ||
                        __builtin_add_overflow(per_layer, 13 * C, &per_layer) ||
                        __builtin_mul_overflow(L, per_layer, &layers) ||
                        __builtin_mul_overflow(std::int64_t{padded_vocab}, C, &wte) ||
                        __builtin_mul_overflow(std::int64_t{max_seq}, C, &wpe) ||
                        __builtin_add_overflow(wte, wpe, &total) ||
                        __builtin_add_overflow(total, layers, &total) ||
                        __builtin_add_overflow(total, 2 * C, &total);
  if (overflow) {
    throw InvalidArgument("[model] " + quoted_name(name) + " (L=" + std::to_string(n_layer) +
                          " C=" + std::to_string(n_embd) + " Vp=" + std::to_string(padded_vocab) +
                          " T=" + std::to_string(max_seq) +
                          ") has more parameters than 64 bits count; lower L, C, V or T");
  }
  return total;
}

std::string ModelConfig::spec() const {
  return "L=" + std::to_string(n_layer) + ",C=" + std::to_string(n_embd) +
         ",H=" + std::to_string(n_head) + ",V=" + std::to_string(vocab) +
         ",T=" + std::to_string(max_seq);
}

bool ModelConfig::same_shape(const ModelConfig& o) const {
  return n_layer == o.n_layer && n_embd == o.n_embd && n_head == o.n_head && vocab == o.vocab &&
         max_seq == o.max_seq;
}

std::string ModelConfig::describe() const {
  char params[32];
  std::snprintf(params, sizeof params, "%.1fM", static_cast<double>(num_parameters()) / 1e6);
  return name + " (L" + std::to_string(n_layer) + " C" + std::to_string(n_embd) + " H" +
         std::to_string(n_head) + " V" + std::to_string(vocab) + " Vp" +
         std::to_string(padded_vocab) + " T" + std::to_string(max_seq) + ", " + params +
         " parameters)";
}

ModelConfig named_config(std::string_view name) {
  struct Named {
    const char* name;
    int L, C, H;
  };
  static constexpr Named kNamed[] = {
      {"gpt2-tiny", 6, 384, 6},     {"gpt2", 12, 768, 12},     {"gpt2-medium", 24, 1024, 16},
      {"gpt2-large", 36, 1280, 20}, {"gpt2-xl", 48, 1600, 25},
  };
  for (const Named& n : kNamed) {
    if (name == n.name) {
      ModelConfig c;
      c.name = n.name;
      c.n_layer = n.L;
      c.n_embd = n.C;
      c.n_head = n.H;
      c.vocab = 50257;
      c.padded_vocab = padded_vocab(c.vocab);
      c.max_seq = 1024;
      return c;
    }
  }
  throw InvalidArgument("[model] unknown model " + quoted_name(name) +
                        "; known: gpt2-tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a "
                        "custom spec like L=6,C=384,H=6,V=256,T=512");
}

ModelConfig parse_config(std::string_view spec) {
  if (spec.find('=') == std::string_view::npos) return named_config(spec);
  const std::string quoted_spec = quoted_name(spec);
  ModelConfig c = named_config("gpt2");
  c.name = std::string(spec);
  std::string_view rest = spec;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    std::int64_t wide = 0;
    const std::string_view text = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), wide);
    if (eq == std::string_view::npos ||
        (ec != std::errc() && ec != std::errc::result_out_of_range) ||
        end != text.data() + text.size()) {
      throw InvalidArgument("[model] cannot read '" + excerpt(item) + "' in model spec " +
                            quoted_spec + "; write KEY=NUMBER with KEY in L,C,H,V,T");
    }
    int* field = key == "L"   ? &c.n_layer
                 : key == "C" ? &c.n_embd
                 : key == "H" ? &c.n_head
                 : key == "V" ? &c.vocab
                 : key == "T" ? &c.max_seq
                              : nullptr;
    if (field == nullptr) {
      throw InvalidArgument("[model] unknown key '" + excerpt(key) + "' in model spec " +
                            quoted_spec + "; keys are L, C, H, V, T");
    }
    if (ec == std::errc::result_out_of_range || wide > INT_MAX || wide < INT_MIN) {
      throw InvalidArgument("[model] " + excerpt(key) + "=" + excerpt(text) + " in model spec " +
                            quoted_spec + " is out of range; each of L, C, H, V, T is at most " +
                            std::to_string(INT_MAX));
    }
    *field = static_cast<int>(wide);
  }
  c.padded_vocab = padded_vocab(c.vocab);
  c.validate();
  return c;
}

}  // namespace adacc::model
