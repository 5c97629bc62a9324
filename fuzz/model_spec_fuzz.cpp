// Fuzz target: --model (model::parse_config: named sizes and L=..,C=..,H=..,V=..,T=..).
// A config it returns is valid, its sizes are consistent, and its spec reads back.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  model::ModelConfig c;
  try {
    c = model::parse_config(text);
  } catch (const Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  // Accepted: everything below must succeed (an exception here is a finding).
  c.validate();
  fuzz::require(c.padded_vocab >= c.vocab && c.padded_vocab % 128 == 0);
  fuzz::require(c.num_parameters() > 0 && !c.describe().empty());
  const model::ModelConfig again =
      model::parse_config("L=" + std::to_string(c.n_layer) + ",C=" + std::to_string(c.n_embd) +
                          ",H=" + std::to_string(c.n_head) + ",V=" + std::to_string(c.vocab) +
                          ",T=" + std::to_string(c.max_seq));
  fuzz::require(again.num_parameters() == c.num_parameters());
  return 0;
}
