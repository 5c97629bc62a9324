// The execution context: what every op needs beside its tensors — the allocator that
// accounts its workspace, the number of threads, and the random number generator.
// There are no globals: a Context is created by the caller and passed down. Creating one
// sets the calling thread and the OpenMP threads to flush subnormal floats to zero
// (FTZ/DAZ; see context.cpp for why): adacc computes without denormals.
#pragma once

#include <cstdint>

#include "adacc/core/allocator.h"
#include "adacc/core/rng.h"

namespace adacc {

// The most threads a Context accepts (beyond it, thread creation fails inside the OpenMP
// runtime with its own message).
inline constexpr int kMaxThreads = 1024;

class Context {
 public:
  // threads <= 0 means every core the process may use. Sets the OpenMP team size used
  // by the kernels (and by the matmul library, which shares the OpenMP runtime).
  explicit Context(Allocator& allocator, int threads = 0, std::uint64_t seed = 1337);

  // The thread count a Context made with `threads` uses (<= 0: every core). More than
  // kMaxThreads is an InvalidArgument naming --threads.
  static int resolve_threads(int threads);

  Allocator& allocator() const { return *allocator_; }
  Device device() const { return allocator_->device(); }
  int threads() const { return threads_; }
  Rng& rng() { return rng_; }

 private:
  Allocator* allocator_;
  int threads_;
  Rng rng_;
};

}  // namespace adacc
