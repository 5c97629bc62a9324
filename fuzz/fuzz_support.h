// What the fuzz targets share: a per-process scratch directory for inputs that the
// readers take as files, and the tiny model the targets load into.
//
// A target's contract (libFuzzer's LLVMFuzzerTestOneInput): any input may be given; an
// adacc::Error is the reader's expected answer to a bad input; anything else (another
// exception, a crash, a sanitizer report, a failed invariant, which aborts) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "adacc/core/error.h"
#include "adacc/model/config.h"

namespace adacc::fuzz {

// A directory of this process's own under /dev/shm (memory) or the temp directory,
// removed when the process exits normally.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("adacc_fuzz_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

// Writes the input to `path` (replacing it) and returns the path.
inline const std::filesystem::path& write_file(const std::filesystem::path& path,
                                               const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the scratch directory is unusable: not the reader's fault
  return path;
}

// The model of the targets' seeds: small enough to load thousands of times a second.
inline model::ModelConfig tiny_config() {
  return model::parse_config("L=1,C=4,H=1,V=8,T=4");
}

// Aborts (a finding) when an invariant of a reader's result fails.
inline void require(bool ok) {
  if (!ok) std::abort();
}

// The errors' promise: one short line (issue 9), whatever the input.
inline void check_message(const Error& e) {
  const std::string_view what = e.what();
  require(!what.empty() && what.size() <= 512 && what.find('\n') == std::string_view::npos);
}

}  // namespace adacc::fuzz
