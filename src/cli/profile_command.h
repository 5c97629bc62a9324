// `adacc profile`: measures what one training step of a model shape costs on this machine
// (runtime::profile_step: per-op forward and backward times of one block, and every
// codec on every saved activation), prints it as a table or JSON, and writes the profile
// file that planners read (plan/profile_cache.h). `--profile FILE` prints an existing one.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace adacc::cli {

struct ProfileArgs {
  std::string model = "gpt2-tiny";
  int batch = 4;
  int seq = 256;
  int threads = 0;
  std::string attention = "flash";
  std::string budget;  // bytes or a percentage of the full model's `none` peak; empty: none
  std::string data;    // tokens from its validation split; empty: random tokens
  std::string codecs;  // comma-separated; empty: all
  int warmup = 1;
  int steps = 5;
  int codec_repeats = 5;
  std::uint64_t seed = 1337;
  std::string out;      // write the profile file here
  std::string profile;  // print this profile file instead of measuring
  bool json = false;
};

void add_profile_command(CLI::App& app, ProfileArgs& args);
int run_profile(const ProfileArgs& args);

}  // namespace adacc::cli
