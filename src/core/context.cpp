// Execution context (see context.h).
#include "adacc/core/context.h"

#include <omp.h>

namespace adacc {

int Context::resolve_threads(int threads) {
  return threads > 0 ? threads : omp_get_num_procs();
}

Context::Context(Allocator& allocator, int threads, std::uint64_t seed)
    : allocator_(&allocator), threads_(resolve_threads(threads)), rng_(seed) {
  omp_set_num_threads(threads_);
}

}  // namespace adacc
