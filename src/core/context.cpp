// Execution context (see context.h).
#include "adacc/core/context.h"

#include <omp.h>

namespace adacc {

Context::Context(Allocator& allocator, int threads, std::uint64_t seed)
    : allocator_(&allocator), threads_(threads > 0 ? threads : omp_get_num_procs()), rng_(seed) {
  omp_set_num_threads(threads_);
}

}  // namespace adacc
