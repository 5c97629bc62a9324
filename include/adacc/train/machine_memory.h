// What memory this machine gives a process: the default budget of `adacc train` when
// --budget is not given, so that a model that cannot fit is refused before anything is
// allocated instead of being killed by the kernel or swapping.
#pragma once

#include <cstddef>
#include <string>

namespace adacc::train {

struct MachineMemory {
  std::size_t bytes = 0;
  std::string source;  // how it was found, for messages, e.g. "physical memory (/proc/meminfo)"
};

// The physical memory (sysconf: _SC_PHYS_PAGES × _SC_PAGE_SIZE), lowered to the cgroup's
// limit when the process runs in one (cgroup v2 memory.max, or v1
// memory.limit_in_bytes).
MachineMemory machine_memory();

}  // namespace adacc::train
