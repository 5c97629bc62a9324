// Execution context (see context.h).
#include "adacc/core/context.h"

#include <omp.h>

#include <string>

#include "adacc/core/error.h"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace adacc {

int Context::resolve_threads(int threads) {
  if (threads > kMaxThreads) {
    throw InvalidArgument("[context] --threads must be 0 (all cores) or 1.." +
                          std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
  }
  return threads > 0 ? threads : omp_get_num_procs();
}

namespace {
// Subnormal floats (below 2^-126) cost a microcode assist of ~100 cycles per operation on
// x86 and carry no precision training needs; small attention probabilities and their
// gradients drift into that range as a model trains, and a step then runs several times
// slower (seen: 0.3 s -> 2 s per step of gpt2-tiny with naive attention after ~200 steps).
// So every compute thread flushes them: FTZ (results) and DAZ (inputs) in MXCSR, which is
// per-thread state; set on the calling thread and on each OpenMP thread of the pool.
void flush_denormals() {
#if defined(__SSE__)
  _mm_setcsr(_mm_getcsr() | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#endif
}
}  // namespace

Context::Context(Allocator& allocator, int threads, std::uint64_t seed)
    : allocator_(&allocator), threads_(resolve_threads(threads)), rng_(seed) {
  omp_set_num_threads(threads_);
  flush_denormals();
#pragma omp parallel num_threads(threads_)
  flush_denormals();
}

}  // namespace adacc
