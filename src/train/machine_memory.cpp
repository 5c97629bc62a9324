// The machine's memory (see machine_memory.h).
#include "adacc/train/machine_memory.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <string>

namespace adacc::train {
namespace {

// The first line of a cgroup limit file as bytes; 0 when absent or "max".
std::size_t cgroup_limit(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
  return ec == std::errc() && end != line.data() ? v : 0;
}

}  // namespace

MachineMemory machine_memory() {
  MachineMemory m;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  m.bytes =
      pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  m.source = "the machine's physical memory";
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const std::size_t limit = cgroup_limit(path);
    if (limit > 0 && (m.bytes == 0 || limit < m.bytes)) {
      m.bytes = limit;
      m.source = std::string("the cgroup memory limit (") + path + ")";
    }
  }
  return m;
}

}  // namespace adacc::train
