// Fuzz target: training data (load_tokens): llm.c token shards (header, count, size,
// every token id) and text files, then the train/validation split and a few batches.
#include <cstdint>
#include <vector>

#include "adacc/train/data.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace adacc;
  static const std::filesystem::path path = fuzz::scratch_dir() / "tokens.bin";
  fuzz::write_file(path, data, size);
  try {
    train::TokenStream s = train::load_tokens(path);
    fuzz::require(!s.tokens.empty() && s.vocab > 0);
    for (const std::int32_t t : s.tokens) fuzz::require(t >= 0 && t < s.vocab);
    const int T = 1 + static_cast<int>(data[size - 1] % 4);
    const train::TrainValSplit split = train::split_train_val(s.tokens, 0.25, 0);
    fuzz::require(split.train.size() + split.val.size() == s.tokens.size());
    if (split.train.size() < static_cast<std::size_t>(T) + 1) return 0;
    const auto shuffle = data[0] % 2 ? train::Shuffle::on : train::Shuffle::off;
    train::BatchLoader loader(split.train, 1, T, shuffle, size);
    std::vector<std::int32_t> inputs(static_cast<std::size_t>(T)), targets(inputs.size());
    for (int i = 0; i < 3; ++i) loader.next(inputs.data(), targets.data());
  } catch (const Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
