// Training data: token streams from text files (byte-level, or BPE through
// sentencepiece) and from llm.c token shards, a train/validation split, and a batch
// loader with deterministic shuffling.
//
// Formats are detected by content, not by file name: a file that starts with the
// llm.c shard header (256 int32, magic 20240520, version 1, then uint16 tokens) is a
// shard; anything else is text.
//
// Token streams are host input data held in std::vector, not engine memory: they are
// not drawn from the budgeted Allocator (the budget covers the training step's
// parameters, gradients, optimizer state, activations and workspace). A loader's B*T
// batch is copied into engine tensors by the trainer.
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

// Reads `path` (the whole file, in one pass). Text becomes one token per byte (vocab
// 256), or, with options.sentencepiece_model, the sentencepiece ids of the whole text
// (vocab = the model's piece count). A shard ignores sentencepiece_model.
// Errors name the file, on one line starting with "[data] ":
//   InvalidArgument — the file (or the sentencepiece model) is missing, empty, a
//     directory, or the model cannot be loaded; a text file over 16 GiB (it would take
//     64 GiB as tokens; shards are limited by their int32 token count to 4 GiB);
//   FormatError — a shard with a truncated header, a version other than 1, a token
//     count <= 0, a file size other than 1024 + 2 * tokens bytes, or a token >= 50257
//     (every token id is checked);
//   BackendError — the OS fails to open or read an existing file.
// As llm.c does, a file that does not start with the magic is not a shard: it is text.
TokenStream load_tokens(const std::filesystem::path& path, const LoadOptions& options = {});

// The first (1 - val_fraction) of the stream for training, the rest for validation:
// val holds floor(n * val_fraction) tokens, train the n - |val| before them.
// Throws InvalidArgument if val_fraction is not in [0, 1) or either part is shorter
// than `min_tokens`.
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
//   Shuffle::on — the stream is cut into W = (n-1)/T windows of T+1 tokens, window k
//     covering tokens [k*T, k*T+T+1) (inputs the first T, targets the last T); epoch e
//     visits all windows in a Fisher-Yates order drawn from an adacc::Rng seeded with a
//     mix of (seed, e); a batch is B consecutive windows of that order, and when fewer
//     than B windows of the epoch remain the next epoch starts.
// In both modes an epoch has (n-1)/(B*T) batches and `epoch` counts the wraps. The
// state (position, epoch) — with the same tokens, B, T, mode and seed — restores the
// loader exactly: set_state(s) then next() gives what the loader that saved s gave.
// The loader owns its copy of the tokens (pass an rvalue to move them in).
class BatchLoader {
 public:
  struct State {
    std::uint64_t position = 0;  // token offset (off) or window index in the epoch (on)
    std::uint64_t epoch = 0;
  };

  // Throws InvalidArgument if B or T is not positive or the stream holds fewer than
  // B*T+1 tokens.
  BatchLoader(std::vector<std::int32_t> tokens, int B, int T, Shuffle shuffle, std::uint64_t seed);

  // Writes the next batch; inputs and targets each hold B*T values.
  void next(std::int32_t* inputs, std::int32_t* targets);
  // Batches in one pass over the stream.
  std::uint64_t batches_per_epoch() const;

  State state() const { return state_; }
  // Throws InvalidArgument if `state` cannot come from this loader (a position from
  // which a whole batch does not fit in the epoch).
  void set_state(const State& state);

 private:
  // The window order of state_.epoch (Shuffle::on), rebuilt when the epoch changes.
  void ensure_order();

  std::vector<std::int32_t> tokens_;  // (n)
  std::int64_t B_ = 0, T_ = 0;
  Shuffle shuffle_ = Shuffle::off;
  std::uint64_t seed_ = 0;
  std::uint64_t windows_ = 0;  // W = (n-1)/T
  State state_;
  std::vector<std::uint64_t> order_;  // (W) window indices; valid for order_epoch_
  std::uint64_t order_epoch_ = 0;
  bool order_valid_ = false;
};

}  // namespace adacc::train
