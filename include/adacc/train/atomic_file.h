// Files that appear whole or not at all.
//
// An AtomicFile writes to "<path>.tmp-<pid>"; commit() flushes and fsyncs it, renames it
// over `path` and fsyncs the directory, so that after a crash `path` holds either its
// old content or the new one, never a mix. An AtomicFile destroyed without commit()
// (an error on the way) removes its temporary file: a failed write leaves nothing
// behind. Failures of the OS throw BackendError naming the file and the reason.
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>

namespace adacc::train {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(const void* data, std::size_t bytes);
  // Makes the written bytes the content of `path`; nothing may be written afterwards.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path path_, temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Flushes a directory's entries (a rename or unlink in it) to disk.
void fsync_directory(const std::filesystem::path& dir);

}  // namespace adacc::train
