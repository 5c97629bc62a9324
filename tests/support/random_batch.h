// A random batch for a training step: tokens and targets (B,T) int32 in [0, vocab), drawn
// alternately from one Rng, so that a seed gives the same batch in every test.
#pragma once

#include <cstdint>
#include <vector>

#include "adacc/core/rng.h"
#include "adacc/core/tensor.h"

namespace adacc::test {

// The token ids of a batch as plain vectors (B*T each, row-major).
struct TokenIds {
  std::vector<int> tokens, targets;
};

inline TokenIds random_token_ids(Rng& rng, int B, int T, int vocab) {
  TokenIds ids;
  for (int i = 0; i < B * T; ++i) {
    ids.tokens.push_back(static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(vocab)));
    ids.targets.push_back(static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(vocab)));
  }
  return ids;
}

// A (B,T) int32 tensor of `ids` (B*T values), in the activations category.
inline Tensor int_tensor(Allocator& alloc, const std::vector<int>& ids, int B, int T,
                         std::string_view name) {
  Tensor t = Tensor::empty(alloc, {B, T}, DType::int32, MemCategory::activations, name);
  std::int32_t* p = t.data<std::int32_t>();
  for (std::size_t i = 0; i < ids.size(); ++i) p[i] = ids[i];
  return t;
}

struct TokenBatch {
  Tensor tokens, targets;
};

inline TokenBatch random_batch(Allocator& alloc, Rng& rng, int B, int T, int vocab) {
  const TokenIds ids = random_token_ids(rng, B, T, vocab);
  return {int_tensor(alloc, ids.tokens, B, T, "tokens"),
          int_tensor(alloc, ids.targets, B, T, "targets")};
}

}  // namespace adacc::test
