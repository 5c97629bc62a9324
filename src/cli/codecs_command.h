// `adacc codecs`: every codec on the real activations of one training step of a trained
// model (runtime::measure_codecs), summarised per tensor role and codec.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace adacc::cli {

struct CodecsArgs {
  std::string init;  // weights (safetensors with adacc.config, or llm.c)
  std::string data;
  std::string model;  // default: the checkpoint's shape
  int batch = 8;
  int seq = 128;
  std::string attention = "naive";
  std::string codecs;  // comma-separated; empty: all
  int threads = 0;
  bool per_tensor = false;
  bool list = false;
};

void add_codecs_command(CLI::App& app, CodecsArgs& args);
int run_codecs(const CodecsArgs& args);

}  // namespace adacc::cli
