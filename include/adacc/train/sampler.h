// Text generation from a trained model: repeated forward passes over the growing
// sequence (the last maxT tokens), sampling each next token from the softmax of the
// last position's logits at a temperature.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace adacc::train {

struct SampleOptions {
  // A checkpoint directory, a safetensors file or an llm.c checkpoint.
  std::filesystem::path model;
  std::filesystem::path sentencepiece_model;  // for BPE models; byte models need none
  std::string prompt;
  int tokens = 200;          // how many to generate
  float temperature = 0.8f;  // > 0
  int top_k = 0;             // 0: all tokens
  std::uint64_t seed = 1337;
  int threads = 0;
  // When set and true (e.g. from a SIGINT handler), generation stops before the next token.
  const std::atomic<bool>* interrupt = nullptr;
};

// Generates text; `on_text` receives each new piece as soon as it is decoded.
// Returns the prompt followed by the generated text.
std::string sample(const SampleOptions& options,
                   const std::function<void(std::string_view)>& on_text = {});

}  // namespace adacc::train
