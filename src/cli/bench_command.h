// `adacc bench`: every policy at every budget on one model and batch, in one process —
// predicted and measured step time and peak, side by side, steps interleaved across
// plans so that the machine's noise falls on all of them alike; a table on stdout and
// CSV, JSON and a PNG plot (step time against peak memory, one series per policy).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace adacc::cli {

struct BenchArgs {
  std::string model = "gpt2-tiny";
  int batch = 8;
  int seq = 512;
  std::string attention = "flash";
  int threads = 0;
  std::string budgets = "100,75,50,35,25,15";  // percent of none's activation peak
  std::string policies;                        // comma-separated; empty: every compared one
  int steps = 5;                               // measured steps per plan (median)
  int warmup = 1;
  std::string out = "bench-out";
  std::string profile;    // a profile file to use instead of profiling
  double tolerance = -1;  // -1: plan::kDefaultTolerance
  std::uint64_t seed = 1337;
};

void add_bench_command(CLI::App& app, BenchArgs& args);
int run_bench(const BenchArgs& args);

}  // namespace adacc::cli
