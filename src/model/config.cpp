// Named and custom model configurations (see config.h).
#include "adacc/model/config.h"

#include <charconv>

#include "adacc/core/error.h"

namespace adacc::model {

int padded_vocab(int vocab) {
  return (vocab + 127) / 128 * 128;
}

void ModelConfig::validate() const {
  auto positive = [&](int v, const char* what) {
    if (v <= 0) {
      throw InvalidArgument("[model] " + std::string(what) + " must be positive, got " +
                            std::to_string(v) + " in " + name);
    }
  };
  positive(n_layer, "L (layers)");
  positive(n_embd, "C (channels)");
  positive(n_head, "H (heads)");
  positive(vocab, "V (vocabulary)");
  positive(max_seq, "T (maximum sequence length)");
  if (n_embd % n_head != 0) {
    throw InvalidArgument("[model] C=" + std::to_string(n_embd) +
                          " is not divisible by H=" + std::to_string(n_head) + " in " + name);
  }
  if (padded_vocab < vocab) {
    throw InvalidArgument("[model] Vp=" + std::to_string(padded_vocab) +
                          " is below V=" + std::to_string(vocab));
  }
}

std::int64_t ModelConfig::num_parameters() const {
  const std::int64_t C = n_embd, L = n_layer;
  const std::int64_t per_layer = 2 * C                // ln1
                                 + 3 * C * C + 3 * C  // qkv
                                 + C * C + C          // attn proj
                                 + 2 * C              // ln2
                                 + 4 * C * C + 4 * C  // fc
                                 + 4 * C * C + C;     // fc proj
  return static_cast<std::int64_t>(padded_vocab) * C + static_cast<std::int64_t>(max_seq) * C +
         L * per_layer + 2 * C;
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
  throw InvalidArgument("[model] unknown model '" + std::string(name) +
                        "'; known: gpt2-tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a "
                        "custom spec like L=6,C=384,H=6,V=256,T=512");
}

ModelConfig parse_config(std::string_view spec) {
  if (spec.find('=') == std::string_view::npos) return named_config(spec);
  ModelConfig c = named_config("gpt2");
  c.name = std::string(spec);
  std::string_view rest = spec;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    int value = 0;
    const std::string_view text = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (eq == std::string_view::npos || ec != std::errc() || end != text.data() + text.size()) {
      throw InvalidArgument("[model] cannot read '" + std::string(item) + "' in model spec '" +
                            std::string(spec) + "'; write KEY=NUMBER with KEY in L,C,H,V,T");
    }
    if (key == "L")
      c.n_layer = value;
    else if (key == "C")
      c.n_embd = value;
    else if (key == "H")
      c.n_head = value;
    else if (key == "V")
      c.vocab = value;
    else if (key == "T")
      c.max_seq = value;
    else {
      throw InvalidArgument("[model] unknown key '" + std::string(key) + "' in model spec '" +
                            std::string(spec) + "'; keys are L, C, H, V, T");
    }
  }
  c.padded_vocab = padded_vocab(c.vocab);
  c.validate();
  return c;
}

}  // namespace adacc::model
