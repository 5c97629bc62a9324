// Model configurations: the named GPT-2 sizes and custom ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "adacc/ops/attention.h"

namespace adacc::model {

struct ModelConfig {
  std::string name = "custom";
  int n_layer = 12;          // L
  int n_embd = 768;          // C
  int n_head = 12;           // H
  int vocab = 50257;         // V
  int padded_vocab = 50304;  // Vp: V rounded up to a multiple of 128 (llm.c)
  int max_seq = 1024;        // maxT
  ops::AttentionKind attention = ops::AttentionKind::flash;

  // Throws InvalidArgument naming the offending field (C % H != 0, non-positive sizes...).
  void validate() const;
  std::int64_t num_parameters() const;
  // "gpt2 (L12 C768 H12 V50257 Vp50304 T1024, 124.5M parameters)"
  std::string describe() const;
  // "L=12,C=768,H=12,V=50257,T=1024": the shape in the form parse_config reads.
  std::string spec() const;
  // Whether `other` has the same L, C, H, V and maxT (name and attention kind aside).
  bool same_shape(const ModelConfig& other) const;
};

// V rounded up to a multiple of 128.
int padded_vocab(int vocab);

// gpt2-tiny (L6 C384 H6), gpt2 (124M), gpt2-medium, gpt2-large, gpt2-xl; all V=50257,
// maxT=1024. Throws InvalidArgument listing the known names.
ModelConfig named_config(std::string_view name);

// A named config, or a custom one written "L=6,C=384,H=6,V=256,T=512" (any subset of
// the keys; missing keys take gpt2's values).
ModelConfig parse_config(std::string_view spec);

}  // namespace adacc::model
