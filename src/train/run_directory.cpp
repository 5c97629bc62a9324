// The locked run directory (see run_directory.h).
#include "adacc/train/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "adacc/core/error.h"

namespace adacc::train {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void unusable(const fs::path& dir, const std::string& why) {
  throw InvalidArgument("[train] cannot use --out '" + dir.string() + "': " + why +
                        "; choose another directory");
}

// The first ancestor of `dir` (or `dir` itself) that does not exist, or empty if all do.
fs::path first_missing(const fs::path& dir) {
  fs::path top;
  std::error_code ec;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    if (fs::exists(p, ec)) break;
    top = p;
    if (p == p.parent_path()) break;
  }
  return top;
}

// The holder recorded in a lock file, as one short line.
std::string read_holder(int fd) {
  char buf[200] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  for (char& c : s) {
    if (c == '\n' || static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return s.empty() ? "another process" : s;
}

std::string holder_description() {
  char host[128] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  const std::time_t now = std::time(nullptr);
  char when[32] = {};
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return "adacc train (pid " + std::to_string(::getpid()) + " on " + host + ", since " + when + ")";
}

}  // namespace

RunDirectory::RunDirectory(fs::path dir, Mode mode) : dir_(std::move(dir)) {
  std::error_code ec;
  if (dir_.empty()) unusable(dir_, "the path is empty");
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec)) {
    unusable(dir_, "it is a file, not a directory");
  }
  created_top_ = first_missing(dir_);
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) {
    unusable(dir_, ec ? ec.message() : std::string("a parent is not a directory"));
  }
  const fs::path lock_path = dir_ / kLockFile;
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    const std::string why = std::strerror(errno);
    release();
    unusable(dir_, "cannot create " + lock_path.filename().string() + " in it (" + why + ")");
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = read_holder(lock_fd_);
    ::close(lock_fd_);
    lock_fd_ = -1;
    released_ = true;  // the directory is the holder's: touch nothing
    throw InvalidArgument("[train] --out '" + dir_.string() + "' is in use by " + holder +
                          "; wait for it to finish or choose another directory");
  }
  const std::string me = holder_description() + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
    const std::string why = std::strerror(errno);
    release();
    unusable(dir_, "cannot write its lock file (" + why + ")");
  }
  if (mode == Mode::fresh) {
    for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
      if (e.path().filename() == kLockFile) continue;
      const std::string name = e.path().filename().string();
      release();
      throw InvalidArgument("[train] --out '" + dir_.string() + "' is not empty (it holds '" +
                            name +
                            "'); adacc does not delete what it did not write: resume that run "
                            "with --resume, pass --overwrite to replace its checkpoint, or "
                            "choose another directory");
    }
  }
}

RunDirectory::~RunDirectory() {
  release();
}

void RunDirectory::release() {
  if (released_) return;
  released_ = true;
  std::error_code ec;
  bool only_lock = !committed_ && !created_top_.empty();
  if (only_lock) {
    for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
      if (e.path().filename() != kLockFile) only_lock = false;
    }
  }
  if (only_lock) {
    // Nothing of this run is in the directory it created: take it away again.
    fs::remove(dir_ / kLockFile, ec);
    for (fs::path p = dir_;; p = p.parent_path()) {
      if (!fs::remove(p, ec) || p == created_top_ || p == p.parent_path()) break;
    }
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  lock_fd_ = -1;
}

}  // namespace adacc::train
