// Atomic file replacement: temporary file, fsync, rename, fsync of the directory (see
// atomic_file.h).
#include "adacc/train/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "adacc/core/error.h"

namespace adacc::train {
namespace {

[[noreturn]] void throw_os(const std::string& what, const std::filesystem::path& path, int err) {
  throw BackendError("[file] cannot " + what + " '" + path.string() + "': " + std::strerror(err));
}

}  // namespace

void fsync_directory(const std::filesystem::path& dir) {
  const std::filesystem::path d = dir.empty() ? std::filesystem::path(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_os("open directory", d, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot sync a directory (EINVAL); the rename itself stands.
  if (rc != 0 && err != EINVAL) throw_os("fsync directory", d, err);
}

AtomicFile::AtomicFile(std::filesystem::path path)
    : path_(std::move(path)),
      temp_(path_.string() + ".tmp-" + std::to_string(static_cast<long>(::getpid()))) {
  file_ = std::fopen(temp_.c_str(), "wb");
  if (file_ == nullptr) throw_os("create", temp_, errno);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (file_ != nullptr) std::fclose(file_);
  std::error_code ignored;
  std::filesystem::remove(temp_, ignored);
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (file_ == nullptr) throw_os("write (already committed)", path_, EBADF);
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) throw_os("write", temp_, errno);
}

void AtomicFile::commit() {
  if (file_ == nullptr) throw_os("commit (already committed)", path_, EBADF);
  if (std::fflush(file_) != 0) throw_os("write", temp_, errno);
  if (::fsync(::fileno(file_)) != 0) throw_os("fsync", temp_, errno);
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fclose(f) != 0) throw_os("close", temp_, errno);
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    throw BackendError("[file] cannot rename '" + temp_.string() + "' to '" + path_.string() +
                       "': " + std::strerror(err));
  }
  committed_ = true;
  fsync_directory(path_.parent_path());
}

}  // namespace adacc::train
