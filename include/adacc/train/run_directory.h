// The run directory of `adacc train --out DIR`: checked, created and locked before any
// training, so that an unusable path is an error at once and two trainers never share
// one directory.
//
//  - The directory (and missing parents) is created if needed; a path that is a file,
//    lies under a file, or cannot be written is an InvalidArgument naming the reason.
//  - A lock: DIR/.adacc.lock, held with flock() for the RunDirectory's lifetime (the
//    kernel releases it when the process dies, even by SIGKILL). Its content names the
//    holder (pid, host, start time); a second trainer is refused at once, naming it.
//  - A new run (not a resume) refuses a directory that holds anything besides the lock
//    file, unless `overwrite` is set: adacc never deletes what it did not write.
//  - If the run fails before it commits anything (commit() was not called) and the
//    directory was created by this RunDirectory and holds nothing but the lock, it is
//    removed again with the parents it created: a failed start leaves no trace.
#pragma once

#include <filesystem>
#include <string>

namespace adacc::train {

class RunDirectory {
 public:
  enum class Mode {
    fresh,      // a new run: the directory must be empty (or absent)
    overwrite,  // a new run that may replace another run's checkpoint (--overwrite)
    resume,     // continuing the checkpoint that is in this directory
  };
  static constexpr const char* kLockFile = ".adacc.lock";

  RunDirectory(std::filesystem::path dir, Mode mode);
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;
  ~RunDirectory();

  const std::filesystem::path& path() const { return dir_; }
  // Something of the run is about to be written here: keep the directory on failure.
  void commit() { committed_ = true; }

 private:
  // Unlocks, and removes what this object created if nothing was committed to it.
  void release();

  std::filesystem::path dir_;
  std::filesystem::path created_top_;  // the highest directory this object created, or empty
  int lock_fd_ = -1;
  bool committed_ = false;
  bool released_ = false;
};

}  // namespace adacc::train
