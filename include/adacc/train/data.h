// Training data: token streams from text files (byte-level, or BPE through
// sentencepiece) and from llm.c token shards, a train/validation split, and a batch
// loader with deterministic shuffling.
//
// Formats are detected by content, not by file name: a file that starts with the
// llm.c shard header (256 int32, magic 20240520, version 1, then uint16 tokens) is a
// shard; anything else is text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "adacc/core/rng.h"

namespace adacc::train {

enum class TokenFormat : std::uint8_t { bytes, llmc_shard, sentencepiece };

struct TokenStream {
  std::vector<std::int32_t> tokens;
  int vocab = 0;  // tokens are in [0, vocab): 256 for bytes, 50257 for GPT-2 shards
  TokenFormat format = TokenFormat::bytes;
  std::string source;  // the file it came from
};

struct LoadOptions {
  // A sentencepiece model file; when set, text is encoded with it instead of bytes.
  std::filesystem::path sentencepiece_model;
};

// Reads `path`. Errors (FormatError/InvalidArgument naming the file): missing or empty
// file, a shard with a wrong magic or version, a shard whose body is shorter than its
// header says, or a shard token >= 50257... (every token id is checked).
TokenStream load_tokens(const std::filesystem::path& path, const LoadOptions& options = {});

// The first (1 - val_fraction) of the stream for training, the rest for validation.
// Throws InvalidArgument if either part is shorter than `min_tokens`.
struct TrainValSplit {
  std::vector<std::int32_t> train, val;
};
TrainValSplit split_train_val(const std::vector<std::int32_t>& tokens, double val_fraction,
                              std::size_t min_tokens);

enum class Shuffle : std::uint8_t { off, on };

// Produces batches of inputs (B,T) and targets (B,T) = inputs shifted by one token.
//   Shuffle::off — llm.c's sequential batching: inputs = tokens[p : p+B*T] as (B,T),
//     targets = tokens[p+1 : p+B*T+1], then p += B*T; when fewer than B*T+1 tokens are
//     left after p, p goes back to 0.
//   Shuffle::on — the stream is cut into windows of T+1 tokens starting at multiples
//     of T; each epoch visits all windows in an order drawn from the seed; a batch is
//     B consecutive windows of that order.
// The state (position, epoch, order seed) can be saved and restored exactly.
class BatchLoader {
 public:
  struct State {
    std::uint64_t position = 0;  // token offset (off) or window index in the epoch (on)
    std::uint64_t epoch = 0;
  };

  // Throws InvalidArgument if the stream holds fewer than B*T+1 tokens.
  BatchLoader(const std::vector<std::int32_t>& tokens, int B, int T, Shuffle shuffle,
              std::uint64_t seed);

  // Writes the next batch; inputs and targets each hold B*T values.
  void next(std::int32_t* inputs, std::int32_t* targets);
  // Batches in one pass over the stream.
  std::uint64_t batches_per_epoch() const;

  State state() const { return state_; }
  void set_state(const State& state);

 private:
  // ... implementation-defined members
  State state_;
};

}  // namespace adacc::train
